"""Is this instance healthy? Storage answers, the scheduler runs, the poll job is not late.

`/healthz` (public, cached), the admin listener's detailed health and systemd's `STATUS=` line
all ask the one `Health` the composition root builds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import peewee

from bot.config import Settings
from storage.db import StorageUnavailable, ping
from storage.polling import PollState

Verdict = tuple[bool, dict[str, Any]]
"""(healthy, detail): the shape `bot.http.app.Health` serves."""


class SchedulerState(Protocol):
    """Whether the jobs run: the scheduler itself, or in a webhook worker the main process's
    heartbeat (`bot.workers.Heartbeat`)."""

    @property
    def running(self) -> bool: ...


class Health:
    def __init__(
        self,
        *,
        settings: Settings,
        db: peewee.Database,
        poll_state: PollState,
        scheduler: SchedulerState,
        clock: Callable[[], float],
        started_at: float,
    ) -> None:
        self._settings = settings
        self._db = db
        self._poll_state = poll_state
        self._scheduler = scheduler
        self._clock = clock
        self._started_at = started_at
        self._cache: tuple[float, Verdict] | None = None
        self._lock = threading.Lock()

    def cached(self, max_age: float = 1.0) -> Verdict:
        """`check()`, computed at most once a second: the public /healthz is anyone's to call,
        and each computation costs database queries."""
        with self._lock:
            now = time.monotonic()
            if self._cache is None or now - self._cache[0] > max_age:
                self._cache = (now, self.check())
            return self._cache[1]

    def check(self) -> Verdict:
        """Storage answers and the poll job ran within 3 intervals (by any instance: the
        poll state is shared through storage, and only the lease holder polls)."""
        problems: list[str] = []
        detail: dict[str, Any] = {}
        try:
            ping(self._db)
            record = self._poll_state.get("jira")
        except StorageUnavailable as exc:
            problems.append(f"storage: {exc}")
            record = None
        if not self._scheduler.running:
            problems.append("scheduler is not running")
        limit = 3 * self._settings.poller.interval_seconds
        now = self._clock()
        if record is not None:
            last = record.last_run_at
            detail.update(
                last_poll=last, last_poll_success=record.last_success_at, last_poll_error=record.last_error
            )
            if (last is None and now - self._started_at > limit) or (last is not None and now - last > limit):
                problems.append(f"the poll job has not run for over {limit:.0f}s")
        detail = {"status": "ok" if not problems else "unhealthy", "problems": problems, **detail}
        return (not problems, detail)
