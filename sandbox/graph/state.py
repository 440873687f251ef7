"""What the Graph sandbox remembers: sent messages, read marks, customer windows, queued failures.

Kept apart from the HTTP layer so tests (and the control routes) can seed and inspect it without
a request, in the spirit of a fake that remembers. Every method takes the one lock: the WSGI
server is threaded and the status worker reads it concurrently.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from typing import Any

from sandbox.web import CallCounter

WINDOW_SECONDS = 24 * 60 * 60


class GraphState:
    """Thread-safe memory of one Graph sandbox.

    Args:
        phone_numbers: phone_number_id → display number of the business numbers that exist.
    """

    def __init__(self, phone_numbers: dict[str, str]) -> None:
        self.phone_numbers = dict(phone_numbers)
        self.calls = CallCounter()
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], float] = {}
        self._sent: list[dict[str, Any]] = []
        self._reads: list[dict[str, Any]] = []
        self._send_errors: deque[tuple[int, int | None]] = deque()
        self._delivery_failures: deque[int] = deque()

    @property
    def default_phone_number_id(self) -> str:
        return next(iter(self.phone_numbers))

    # --- the customer service window ------------------------------------------------------

    def customer_wrote(self, wa_id: str, at: float | None = None, phone_number_id: str | None = None) -> None:
        """Record that `wa_id` last wrote to the business number at epoch `at` (default: now)."""
        key = (phone_number_id or self.default_phone_number_id, _digits(wa_id))
        with self._lock:
            self._windows[key] = time.time() if at is None else float(at)

    def window_open(self, phone_number_id: str, wa_id: str, now: float | None = None) -> bool:
        with self._lock:
            last = self._windows.get((phone_number_id, _digits(wa_id)))
        now = time.time() if now is None else now
        return last is not None and now - last < WINDOW_SECONDS

    # --- injected failures ----------------------------------------------------------------

    def fail_next_send(self, code: int, count: int = 1, http_status: int | None = None) -> None:
        with self._lock:
            self._send_errors.extend([(int(code), http_status)] * max(0, int(count)))

    def take_send_error(self) -> tuple[int, int | None] | None:
        with self._lock:
            return self._send_errors.popleft() if self._send_errors else None

    def fail_next_delivery(self, code: int) -> None:
        with self._lock:
            self._delivery_failures.append(int(code))

    def take_delivery_failure(self) -> int | None:
        with self._lock:
            return self._delivery_failures.popleft() if self._delivery_failures else None

    # --- records --------------------------------------------------------------------------

    def record_sent(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._sent.append(record)

    def record_read(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._reads.append(record)

    def sent(self) -> list[dict[str, Any]]:
        # Deep copies: a test that mutates what it got must not rewrite history.
        with self._lock:
            return copy.deepcopy(self._sent)

    def lists(self) -> list[dict[str, Any]]:
        """Accepted interactive lists alone, in order: their summary (`interactive.list_summary`)
        with the wamid and the addressee."""
        return [{**m["list"], "wamid": m["wamid"], "to": m["to"]} for m in self.sent() if m.get("list")]

    def reads(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._reads)

    def count(self, route: str) -> None:
        self.calls.count(route)

    def reset_calls(self) -> None:
        self.calls.clear()

    def reset(self) -> None:
        """Forget everything except the configured phone numbers."""
        self.calls.clear()
        with self._lock:
            self._windows.clear()
            self._sent.clear()
            self._reads.clear()
            self._send_errors.clear()
            self._delivery_failures.clear()


def _digits(number: str) -> str:
    return "".join(ch for ch in str(number) if ch.isdigit())
