"""Webhook worker processes (`[server] workers` > 1): started, watched, restarted, stopped.

Why processes: the webhook's work (HMAC, JSON parsing, the insert) is CPU in one interpreter,
and one interpreter runs one thread at a time. N processes each bind host:port with
SO_REUSEPORT, so the kernel spreads connections across their accept queues, and each runs the
same intake and app (`bot.webhook_worker`); they commit through the main process, whose one
group commit serves them all (`bot.store_channel` says why).

What stays in the main process: the jobs (once per instance, as with one process), the admin
listener (/metrics sums every process's counters), and systemd's notifications (the unit's
`NotifyAccess=main` is still right). The main process does not accept webhooks itself: its
threads run the jobs, and a slow job must never hold a webhook behind the GIL. It holds the
port with a bound, non-listening SO_REUSEPORT socket, so the port (chosen by the kernel with
`port = 0`) names the instance and stays ours while a worker restarts.

Workers are started with the "spawn" method: the main process has scheduler threads and
database connections by then, and a fork would copy their locks in whatever state they are.

Supervision: a worker that exits unexpectedly is logged (`webhook_worker_exited`, with pid
and exit code) and started again, at once the first time, then with a growing pause while it
keeps dying young (`restart_plan`), so a fault that persists does not spin the CPU.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from bot.config import Settings
from bot.logs import get_logger
from bot.metrics import mark_process_dead

log = get_logger(__name__)

STABLE_SECONDS = 60.0
"""A worker that lived this long had no persistent fault: its next exit restarts at once."""
MAX_BACKOFF_SECONDS = 30.0
HEARTBEAT_SECONDS = 1.0
"""How often the main process's scheduler proves to the workers that the jobs run."""
HEARTBEAT_MAX_AGE = 15.0
"""A worker's /healthz says "unavailable" once the heartbeat is older than this."""
START_TIMEOUT_SECONDS = 60.0

_SPAWN = multiprocessing.get_context("spawn")


# -- the restart policy (pure) -------------------------------------------------------------


@dataclass(frozen=True)
class RestartPlan:
    streak: int
    """Exits in a row of workers that died young (before STABLE_SECONDS) in this slot."""
    delay: float
    """Seconds to wait before starting the slot's next worker."""


def restart_plan(streak: int, lived_seconds: float) -> RestartPlan:
    """What to do after a worker of a slot exited.

    Args:
        streak: the slot's streak before this exit.
        lived_seconds: how long the worker that exited had run.

    Returns:
        The new streak and the pause: 0 s for the first young death (or any death after a
        stable run), then 1, 2, 4 ... seconds up to MAX_BACKOFF_SECONDS.
    """
    streak = 1 if lived_seconds >= STABLE_SECONDS else streak + 1
    delay = 0.0 if streak <= 1 else min(MAX_BACKOFF_SECONDS, 2.0 ** (streak - 2))
    return RestartPlan(streak=streak, delay=delay)


# -- the heartbeat -------------------------------------------------------------------------


class Heartbeat:
    """The main process's scheduler, as a webhook worker's health check sees it.

    A double in shared memory: a scheduler job in the main process writes the monotonic clock
    (system-wide on Linux) every HEARTBEAT_SECONDS; `running` in a worker says whether that
    happened lately. It is what `Health` asks of a scheduler (`bot.health.SchedulerState`).
    """

    def __init__(self, max_age: float = HEARTBEAT_MAX_AGE) -> None:
        # No lock: one writer, and an aligned 8-byte store is never read half-written.
        self._at: Any = _SPAWN.Value("d", 0.0, lock=False)
        self._max_age = max_age

    def beat(self) -> None:
        self._at.value = time.monotonic()

    def flatline(self) -> None:
        """As if the jobs had stopped long ago (tests: a worker's /healthz must then say so)."""
        self._at.value = 0.0

    @property
    def running(self) -> bool:
        return time.monotonic() - self._at.value <= self._max_age


# -- the supervisor ------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process is given (pickled to it by "spawn"; the socket as a descriptor)."""

    settings: Settings
    """With the port the main process holds (never 0)."""
    index: int
    parent_pid: int
    metrics_dir: str
    heartbeat: Heartbeat
    store_channel: socket.socket | None = None
    """The worker's end of its own channel to the main process (`bot.store_channel`): its
    commits, and its "ready". A new one for every process a slot starts; the spec the
    supervisor is given holds none (None)."""


class WorkersNotReady(OSError):
    """The workers did not all serve in time: like a port that is taken, the daemon cannot start."""


@dataclass
class _Slot:
    index: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    streak: int = 0
    restart_at: float | None = None
    exits: list[int | None] = field(default_factory=list)


class WebhookWorkers:
    """N worker processes, kept at N until `stop()`.

    Args:
        spec: the spec of worker 0; each slot gets a copy with its own index.
        count: how many workers.
        target: the worker's main function (`bot.webhook_worker.serve_webhooks`); tests pass
            another importable one.
        attach: given the main process's end of each new worker's store channel, and the
            worker's index (`bot.store_channel.StoreService.attach`).
        stop_seconds: how long a stopping worker may take to answer what it received.
    """

    def __init__(
        self,
        spec: WorkerSpec,
        count: int,
        *,
        target: Callable[[WorkerSpec], None],
        attach: Callable[[socket.socket, int], None],
        stop_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = spec
        self._attach = attach
        self._target = target
        self._stop_seconds = stop_seconds
        self._clock = clock
        self._slots = [_Slot(n) for n in range(count)]
        self._lock = threading.Condition()
        self._ready: set[int] = set()
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._supervise, name="webhook-workers", daemon=True)

    @property
    def pids(self) -> list[int]:
        """The live workers' pids, by slot."""
        with self._lock:
            return [
                s.process.pid for s in self._slots if s.process and s.process.pid and s.process.is_alive()
            ]

    def start(self) -> None:
        with self._lock:
            for slot in self._slots:
                self._spawn(slot)
        self._thread.start()

    def ready(self, pid: int) -> None:
        """A worker serves (it said so over its store channel)."""
        with self._lock:
            self._ready.add(pid)
            self._lock.notify_all()

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Return once every worker serves.

        Raises:
            WorkersNotReady: a worker exited first, or `timeout` passed.
        """
        deadline = self._clock() + timeout
        with self._lock:
            while True:
                failed = [(s.index, code) for s in self._slots for code in s.exits]
                if failed:
                    raise WorkersNotReady(
                        f"webhook worker {failed[0][0]} exited with {failed[0][1]} while starting"
                    )
                pending = [s for s in self._slots if not s.process or s.process.pid not in self._ready]
                if not pending:
                    return
                left = deadline - self._clock()
                if left <= 0:
                    raise WorkersNotReady(
                        f"{len(pending)} webhook worker(s) not serving after {timeout:.0f}s"
                    )
                self._lock.wait(min(left, 0.2))

    def stop(self) -> None:
        """Ask every worker to stop (SIGTERM: it answers what it received), kill any that
        outlive `stop_seconds`, and return."""
        self._stopping.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        processes = [s.process for s in self._slots if s.process is not None]
        for process in processes:
            if process.is_alive() and process.pid:
                _signal(process.pid, signal.SIGTERM)
        deadline = self._clock() + self._stop_seconds
        for process in processes:
            process.join(timeout=max(0.0, deadline - self._clock()))
            if process.is_alive():
                log.warning("webhook_worker_killed", pid=process.pid, reason="did not stop in time")
                process.kill()
                process.join(timeout=5)
            if process.pid:
                mark_process_dead(process.pid, self._spec.metrics_dir)
        self._wake_r.close()
        self._wake_w.close()

    # -- the supervising thread ------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                sentinels = [s.process.sentinel for s in self._slots if s.process is not None]
                due = [s.restart_at for s in self._slots if s.restart_at is not None]
            timeout = max(0.0, min(due) - self._clock()) if due else None
            multiprocessing.connection.wait([*sentinels, self._wake_r], timeout)
            if self._stopping.is_set():
                return
            self._drain_wake()
            with self._lock:
                for slot in self._slots:
                    self._check(slot)

    def _check(self, slot: _Slot) -> None:
        process = slot.process
        now = self._clock()
        if process is not None and not process.is_alive():
            process.join()
            plan = restart_plan(slot.streak, now - slot.started_at)
            slot.streak, slot.process, slot.restart_at = plan.streak, None, now + plan.delay
            if process.pid not in self._ready:
                slot.exits.append(process.exitcode)  # died before serving: wait_ready reports it
            self._ready.discard(process.pid or 0)
            if process.pid:
                mark_process_dead(process.pid, self._spec.metrics_dir)
            log.error(
                "webhook_worker_exited",
                worker=slot.index,
                pid=process.pid,
                exit_code=process.exitcode,
                restart_in_seconds=plan.delay,
            )
        if slot.process is None and slot.restart_at is not None and now >= slot.restart_at:
            self._spawn(slot)
            log.info(
                "webhook_worker_restarted", worker=slot.index, pid=slot.process.pid if slot.process else None
            )

    def _spawn(self, slot: _Slot) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        spec = WorkerSpec(
            settings=self._spec.settings,
            index=slot.index,
            parent_pid=self._spec.parent_pid,
            metrics_dir=self._spec.metrics_dir,
            heartbeat=self._spec.heartbeat,
            store_channel=theirs,
        )
        process = _SPAWN.Process(
            target=self._target, args=(spec,), name=f"wajira-webhook-{slot.index}", daemon=True
        )
        try:
            process.start()  # pickling the spec duplicated their end for the child
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        # A worker that dies closes its end: the thread serving ours then ends too.
        self._attach(ours, slot.index)
        slot.process, slot.started_at, slot.restart_at = process, self._clock(), None

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _drain_wake(self) -> None:
        self._wake_r.setblocking(False)
        try:
            while self._wake_r.recv(64):
                pass
        except OSError:
            pass


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
