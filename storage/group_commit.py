"""Group commit: concurrent callers share one transaction, and so one fsync.

A durable commit costs a disk flush (about a millisecond on SQLite with `synchronous=FULL`,
a WAL flush on a server), whatever it writes. When many webhooks arrive at once, the first
caller to find no commit under way becomes the leader: it takes every unit of work waiting
at that moment, runs them all in one transaction, and hands each caller its own result.
Units that arrive meanwhile go together into the next transaction. One caller alone commits
at once (no timer, no added latency); under load a commit carries as many units as arrived
during the previous one.

Nothing is weakened: a caller returns only after the transaction holding its work has
committed, and when that transaction fails every caller in it gets the error (nothing of
theirs was stored). A failure that is not the database's (a bug in one unit) must not sink
the others' work, so the leader then runs each unit alone.

Waits are bounded (`wait_seconds`), so a database that stops answering costs each caller that
long, not its thread for ever. A caller who gives up before its unit was taken leaves the
queue, and its unit never runs. One who gives up later cannot take its unit back: the
transaction may still commit it, so the caller must treat "gave up" as "outcome unknown" and
its unit must be safe to run again (the webhook's inserts ignore rows already stored, and
Meta redelivers what got a 503). Its result is never reported to anyone.

The caller who finds no commit under way leads in its own thread: one caller alone pays no
hand-over. Callers who queued meanwhile are committed by a committer thread instead of by one
of them, so no caller ever starts a transaction on a clock that has already partly run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar, cast

R = TypeVar("R")

Unit = Callable[[], R]
"""Work that runs inside the transaction and returns the caller's result."""
RunInTransaction = Callable[[Callable[[], list[Any]]], list[Any]]
"""Runs its argument in one committed transaction and returns its result, or raises."""


IDLE_SECONDS = 60.0
"""How long the committer thread waits for work before it ends (it starts again when needed)."""


Done = Callable[[Any, "BaseException | None"], None]
"""Told a unit's outcome, from the thread that committed it: (result, None) or (None, error)."""


@dataclass(eq=False)
class _Waiting(Generic[R]):
    unit: Unit[R]
    on_done: Done | None = None
    done: bool = False
    abandoned: bool = False
    result: R | None = None
    error: BaseException | None = field(default=None)
    wake: threading.Event = field(default_factory=threading.Event)


class GroupCommit:
    """Runs units of work from many threads, as few transactions as the load allows."""

    def __init__(
        self,
        run_in_transaction: RunInTransaction,
        *,
        passthrough: tuple[type[BaseException], ...],
        max_group: int = 256,
        wait_seconds: float | None = None,
        timed_out: Callable[[str], BaseException] = TimeoutError,
    ) -> None:
        """
        Args:
            run_in_transaction: commits what it is given, in one transaction (and retries
                deadlocks); raises when nothing was committed.
            passthrough: errors that mean the database failed (every unit of the group gets
                them); any other error is taken as one unit's fault.
            max_group: the most units in one transaction (bounds its size and lock time).
            wait_seconds: the longest a caller waits for a transaction someone else runs;
                None waits as long as it takes. The caller who runs one is bounded by the
                database's own timeouts instead.
            timed_out: builds the error a caller who gave up gets, from a message.
        """
        self._run = run_in_transaction
        self._passthrough = passthrough
        self._max_group = max_group
        self._wait_seconds = wait_seconds
        self._timed_out = timed_out
        self._lock = threading.Lock()
        self._queue: list[_Waiting[Any]] = []
        self._leading = False  # a commit is under way, by a caller or by the committer
        self._handed_over = threading.Condition(self._lock)
        self._committer_has_work = False
        self._committer: threading.Thread | None = None
        self.groups = 0
        self.units = 0
        self.gave_up = 0

    def submit(self, unit: Unit[R]) -> R:
        """Run `unit` in a committed transaction (shared with others) and return its result.

        Raises:
            what `timed_out` builds: no commit took the unit within `wait_seconds`; it may
                still be committed (see the module's docstring).
            the transaction's error, or the unit's own.
        """
        me: _Waiting[R] = _Waiting(unit)
        with self._lock:
            self._queue.append(me)
            leads = not self._leading
            self._leading = True
        if leads:
            self._lead()
        elif not me.wake.wait(self._wait_seconds):
            self._give_up(me)
        if me.error is not None:
            raise me.error
        return cast(R, me.result)  # done without an error: the unit's own result

    def submit_async(self, unit: Unit[R], done: Done) -> None:
        """Queue `unit` for the committer thread and return at once; `done` hears the outcome.

        For a caller that must not hold a thread per unit (the relay of several webhook
        processes, `bot.store_channel`). `done` runs in the thread that committed the unit
        (the committer, or a blocking caller leading at that moment): it must be quick and
        must not raise (what it raises is dropped, so the other units still hear).
        """
        me: _Waiting[R] = _Waiting(unit, on_done=done)
        with self._lock:
            self._queue.append(me)
            if not self._leading:
                self._leading = True
                self._hand_over()

    def _lead(self) -> None:
        with self._lock:  # our unit among them: nobody else takes from the queue meanwhile
            group = self._take()
        try:
            self._finish(group)
        finally:
            with self._lock:
                if self._queue:  # these waited while we committed: the committer takes them on
                    self._hand_over()
                else:
                    self._leading = False

    def _give_up(self, me: _Waiting[Any]) -> None:
        with self._lock:
            if me.done:  # the answer came as the wait ended: it is the real one
                return
            if me in self._queue:
                self._queue.remove(me)  # not taken: it will never run
            me.abandoned = True  # taken: skipped if its transaction has not reached it yet
            self.gave_up += 1
        raise self._timed_out(f"no commit within {self._wait_seconds:g}s: the database is not answering")

    def _take(self) -> list[_Waiting[Any]]:
        # The oldest waiting units go first; the caller holds the lock.
        group, self._queue = self._queue[: self._max_group], self._queue[self._max_group :]
        return group

    def _hand_over(self) -> None:
        # The caller holds the lock, and leadership passes to the committer with it.
        self._committer_has_work = True
        if self._committer is None:
            self._committer = threading.Thread(target=self._commit_loop, name="group-commit", daemon=True)
            self._committer.start()
        else:
            self._handed_over.notify()

    def _commit_loop(self) -> None:
        while True:
            with self._lock:
                if not self._committer_has_work:
                    self._handed_over.wait(IDLE_SECONDS)
                    if not self._committer_has_work:
                        self._committer = None
                        return
                group = self._take()
                if not group:  # drained: the next caller leads in its own thread again
                    self._committer_has_work = self._leading = False
                    continue
            try:
                self._finish(group)
            except Exception:  # its units were told (see _finish); the thread must live on
                pass

    def _finish(self, group: list[_Waiting[Any]]) -> None:
        try:
            self._commit(group)
        finally:
            for w in group:  # only if _commit itself broke: nobody may wait for ever
                if not w.done:
                    w.error, w.done = RuntimeError("group commit did not finish"), True
            for w in group:
                w.wake.set()
                if w.on_done is not None:
                    _tell(w)

    def _commit(self, group: list[_Waiting[Any]]) -> None:
        self.groups += 1
        self.units += len(group)
        try:
            results = self._run(lambda: [_run_unless_abandoned(w) for w in group])
        except self._passthrough as exc:
            for w in group:
                w.error, w.done = exc, True
            return
        except BaseException as exc:
            if len(group) == 1:
                group[0].error, group[0].done = exc, True
                return
            for w in group:  # find the unit at fault: each alone in its own transaction
                try:
                    [w.result] = self._run(partial(_alone, w))
                except BaseException as alone:
                    w.error = alone
                w.done = True
            return
        for w, result in zip(group, results, strict=True):
            w.result, w.done = result, True


def _tell(w: _Waiting[Any]) -> None:
    assert w.on_done is not None
    try:
        w.on_done(None if w.error is not None else w.result, w.error)
    except Exception:  # documented: one callback's failure must not silence the rest
        pass


def _alone(w: _Waiting[Any]) -> list[Any]:
    return [_run_unless_abandoned(w)]


def _run_unless_abandoned(w: _Waiting[Any]) -> object:
    # Nobody waits for this unit any more: writing it would only make its retry a duplicate.
    return None if w.abandoned else w.unit()
