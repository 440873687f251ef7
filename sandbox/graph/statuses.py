"""Status webhooks (`sent` → `delivered` → `read`, or `failed`) for messages the sandbox accepted.

Meta reports a message's fate asynchronously, on the same signed webhook as inbound messages. One
worker thread drains a time-ordered queue so callbacks for one message always arrive in order, and
so `stop()` has exactly one thread to end. A message can be doomed after it was accepted
(`fail(wamid, code)`): its next non-`sent` status becomes `failed` with `errors[]`, and nothing
follows it, which is what Meta does when delivery fails.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from sandbox import whatsapp_payloads
from sandbox.meta import MetaSender

from .errors import status_error


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    wamid: str = field(compare=False)
    status: str = field(compare=False)
    recipient: str = field(compare=False)
    phone_number_id: str = field(compare=False)
    error_code: int | None = field(compare=False, default=None)


class StatusNotifier:
    """Deliver signed status callbacks in a background thread.

    Args:
        sender: signs and POSTs bodies (retrying like Meta, a few times, on a short clock).
        display_phone: phone_number_id → display number, for `metadata`.
        tries: delivery attempts per callback before it is recorded as undelivered.
    """

    def __init__(self, sender: MetaSender, display_phone: Callable[[str], str], *, tries: int = 3) -> None:
        self._sender = sender
        self._display_phone = display_phone
        self._tries = tries
        self._cond = threading.Condition()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._doomed: dict[str, int] = {}
        self._busy = 0
        self._stopping = False
        self._deliveries: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="graph-status-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Drop what is still queued and end the worker."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)

    def schedule(
        self,
        wamid: str,
        recipient: str,
        phone_number_id: str,
        statuses: Sequence[str],
        delay: float,
        error_code: int | None = None,
    ) -> None:
        """Queue `statuses` for one message, `delay` seconds apart (the first after `delay`)."""
        with self._cond:
            due = time.monotonic()
            for status in statuses:
                due += delay
                code = error_code if status == "failed" else None
                heapq.heappush(
                    self._heap, _Job(due, next(self._seq), wamid, status, recipient, phone_number_id, code)
                )
            self._cond.notify_all()

    def fail(self, wamid: str, code: int) -> None:
        """Turn the message's next pending non-`sent` status into `failed` with `code`."""
        with self._cond:
            self._doomed[wamid] = code

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued callback was delivered (or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def deliveries(self) -> list[dict[str, Any]]:
        """Every callback attempted: wamid, status, http_status (0: unreachable), body."""
        with self._cond:
            return [dict(d) for d in self._deliveries]

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()
            self._doomed.clear()
            self._deliveries.clear()

    def _next_job(self) -> _Job | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    job = heapq.heappop(self._heap)
                    code = self._doomed.get(job.wamid)
                    if code is not None and job.status != "sent":
                        job.status, job.error_code = "failed", code
                    if job.status == "failed":
                        # A failure ends the message's story: drop its later statuses now, so
                        # wait_idle() does not wait for callbacks that will never be sent.
                        self._heap = [j for j in self._heap if j.wamid != job.wamid]
                        heapq.heapify(self._heap)
                    self._busy += 1
                    return job
                self._cond.wait(self._heap[0].due - now if self._heap else None)
        return None

    def _run(self) -> None:
        while (job := self._next_job()) is not None:
            try:
                self._deliver(job)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _deliver(self, job: _Job) -> None:
        errors = [status_error(job.error_code)] if job.status == "failed" and job.error_code else None
        payload = whatsapp_payloads.status_payload(
            job.wamid,
            job.status,
            job.recipient,
            errors=errors,
            phone_number_id=job.phone_number_id,
            display_phone=self._display_phone(job.phone_number_id),
        )
        try:
            code = self._sender.deliver(payload, retries_until_200=True, max_tries=self._tries, delay=0.1)
        except requests.RequestException:
            code = 0  # the daemon was not listening; Meta would keep trying for days
        with self._cond:
            self._deliveries.append(
                {"wamid": job.wamid, "status": job.status, "http_status": code, "body": payload}
            )
