"""Nudges: never lost in the instant a run ends, and a burst of them reschedules the job once."""

from __future__ import annotations

import threading

from jobs.scheduler import NudgeableJob


class _LockNudgedOnRelease:
    """A lock whose release is preceded by a nudge: the instant after the run's last look."""

    def __init__(self, job: NudgeableJob, times: int) -> None:
        self._lock = threading.Lock()
        self._job = job
        self._times = times

    def acquire(self, blocking: bool = True) -> bool:
        return self._lock.acquire(blocking)

    def locked(self) -> bool:
        return self._lock.locked()

    def release(self) -> None:
        if self._times:
            self._times -= 1
            self._job.nudge()  # sees the job running: leaves the work to it
        self._lock.release()


def test_a_nudge_between_the_last_look_and_the_release_runs_the_job_again():
    runs = []
    job = NudgeableJob("inbox", lambda: runs.append(1))
    job._running = _LockNudgedOnRelease(job, times=1)
    job()
    assert len(runs) == 2


def test_without_such_a_nudge_the_job_runs_once():
    runs = []
    job = NudgeableJob("inbox", lambda: runs.append(1))
    job()
    assert len(runs) == 1


class _Scheduler:
    def __init__(self) -> None:
        self.modified = 0

    def modify_job(self, name, next_run_time):
        self.modified += 1


def test_a_burst_of_nudges_reschedules_the_job_once_until_it_runs():
    job = NudgeableJob("inbox", lambda: None)
    job._scheduler = scheduler = _Scheduler()
    for _ in range(500):
        job.nudge()
    assert scheduler.modified == 1
    job()  # the run it asked for starts: the next nudge asks again
    job.nudge()
    assert scheduler.modified == 2


def test_a_nudge_while_running_asks_the_run_to_loop_instead_of_the_scheduler():
    scheduler = _Scheduler()
    runs = []

    def body():
        runs.append(1)
        if len(runs) == 1:
            job.nudge()

    job = NudgeableJob("inbox", body)
    job._scheduler = scheduler
    job()
    assert len(runs) == 2 and scheduler.modified == 0


def test_stopping_while_a_running_job_nudges_another_does_not_deadlock():
    # APScheduler's shutdown(wait=True) holds its job-store lock while it waits for running
    # jobs; a nudge from such a job (modify_job) needs that lock. Seen as a hung SIGTERM.
    import time

    from jobs.scheduler import Scheduler

    scheduler = Scheduler(max_workers=2)
    started, release = threading.Event(), threading.Event()
    holder: dict = {}

    def busy() -> None:
        started.set()
        release.wait(5)
        holder["other"].nudge()  # lands after shutdown has begun

    scheduler.add("busy", busy, 3600)
    holder["other"] = scheduler.add("other", lambda: None, 3600, run_now=False)
    scheduler.start()
    assert started.wait(5)
    stopper = threading.Thread(target=scheduler.stop)
    stopper.start()
    time.sleep(0.2)  # shutdown is now waiting for `busy`
    release.set()
    stopper.join(5)
    assert not stopper.is_alive(), "scheduler.stop() deadlocked on a nudge from a running job"
