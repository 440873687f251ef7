"""APScheduler wiring: each job runs on its interval and can be nudged to run at once.

A nudge that lands while the job is running is not lost: the run loops once more when it
finishes (APScheduler itself would skip a second concurrent instance).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bot.jira_api.errors import JiraUnavailable
from bot.logs import get_logger

log = get_logger(__name__)

NUDGE_COALESCE_SECONDS = 0.05


class _Gate:
    """Keeps nudges away from APScheduler once it begins to shut down.

    `shutdown(wait=True)` holds the scheduler's job-store lock while it waits for running
    jobs, and a running job that nudges another calls `modify_job`, which needs that lock: a
    deadlock on every stop that lands mid-run. Nudges go through this gate, and `stop` closes
    it (waiting for a nudge inside it) before calling `shutdown`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = True

    def call(self, action: Callable[[], object]) -> None:
        with self._lock:
            if self.open:
                action()

    def close(self) -> None:
        with self._lock:
            self.open = False


class NudgeableJob:
    def __init__(self, name: str, fn: Callable[[], object], gate: _Gate | None = None) -> None:
        self.name = name
        self._fn = fn
        self._gate = gate or _Gate()
        self._again = threading.Event()
        self._running = threading.Lock()
        # When a run was last asked for: a burst of webhooks would otherwise reschedule the
        # job once per delivery. Nudges within NUDGE_COALESCE_SECONDS of that ask add nothing
        # (the run it asked for has not started, or has just started and sees their rows).
        self._requested_at = float("-inf")
        self._scheduler: BackgroundScheduler | None = None
        self.last_run_started: float | None = None
        self.last_run_finished: float | None = None
        self.last_error: str | None = None

    def __call__(self) -> None:
        for _ in range(2):
            if not self._running.acquire(blocking=False):
                self._again.set()
                return
            try:
                self._run_while_nudged()
            finally:
                self._running.release()
            # A nudge that landed after the last look at _again but before the release found
            # the job running and left its work to this run: look once more, lock now free.
            if not self._again.is_set():
                return

    def _run_while_nudged(self) -> None:
        self._requested_at = float("-inf")
        # Every log line of this run carries the job's name and a run id (pool threads are
        # reused, so the previous run's bindings are cleared first).
        structlog.contextvars.clear_contextvars()
        for _ in range(1000):
            structlog.contextvars.bind_contextvars(job=self.name, run_id=uuid.uuid4().hex[:12])
            self._again.clear()
            self.last_run_started = time.time()
            try:
                self._fn()
                self.last_error = None
            except JiraUnavailable as exc:
                # Jira down, busy or holding us off (5xx, 429, no answer): the next run tries
                # again, and the traceback would only bury the one line that matters.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("job_failed", job=self.name, error=str(exc))
            except Exception as exc:  # the schedule must survive any single bad run
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("job_failed", job=self.name)
            self.last_run_finished = time.time()
            if not self._again.is_set():
                break

    def nudge(self) -> None:
        """Run as soon as possible (now, or right after the current run)."""
        self._again.set()
        now = time.monotonic()
        if (
            self._scheduler is not None
            and not self._running.locked()
            and now - self._requested_at > NUDGE_COALESCE_SECONDS
        ):
            self._requested_at = now
            scheduler = self._scheduler
            try:
                self._gate.call(
                    lambda: scheduler.modify_job(self.name, next_run_time=datetime.now(timezone.utc))
                )
            except Exception:  # scheduler shutting down: the pending flag still covers it
                pass

    def nudge_at(self, when: float) -> None:
        """Run at epoch `when` (a debounce ending); now if that has passed."""
        delay = when - time.time()
        if delay <= 0.05 or self._scheduler is None:
            self.nudge()
            return
        scheduler = self._scheduler
        try:
            self._gate.call(
                lambda: scheduler.add_job(
                    self.nudge,
                    "date",
                    run_date=datetime.fromtimestamp(when, timezone.utc),
                    misfire_grace_time=None,
                )
            )
        except Exception:  # shutting down: the interval sweep still covers it
            pass


class Scheduler:
    def __init__(self, max_workers: int = 8) -> None:
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
            timezone=timezone.utc,
        )
        self.jobs: dict[str, NudgeableJob] = {}
        self._gate = _Gate()

    def add(
        self, name: str, fn: Callable[[], object], interval_seconds: float, *, run_now: bool = True
    ) -> NudgeableJob:
        job = NudgeableJob(name, fn, self._gate)
        job._scheduler = self._scheduler
        self._scheduler.add_job(
            job,
            "interval",
            seconds=interval_seconds,
            id=name,
            name=name,
            next_run_time=datetime.now(timezone.utc) if run_now else None,
        )
        self.jobs[name] = job
        return job

    @property
    def running(self) -> bool:
        return self._scheduler.running

    def start(self) -> None:
        self._scheduler.start()

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling; with wait, let running jobs finish their current work."""
        self._gate.close()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
