"""Group commit: concurrent callers share one transaction, and so one fsync.

A durable commit costs a disk flush (about a millisecond on SQLite with `synchronous=FULL`,
a WAL flush on a server), whatever it writes. When many webhooks arrive at once, the first
caller to find no commit under way becomes the leader: it takes every unit of work waiting
at that moment, runs them all in one transaction, and hands each caller its own result.
Callers that arrive meanwhile wait for the next leader. One caller alone commits at once (no
timer, no added latency); under load a commit carries as many units as arrived during the
previous one.

Nothing is weakened: a caller returns only after the transaction holding its work has
committed, and when that transaction fails every caller in it gets the error (nothing of
theirs was stored). A failure that is not the database's (a bug in one unit) must not sink
the others' work, so the leader then runs each unit alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

R = TypeVar("R")

Unit = Callable[[], R]
"""Work that runs inside the transaction and returns the caller's result."""
RunInTransaction = Callable[[Callable[[], list]], list]
"""Runs its argument in one committed transaction and returns its result, or raises."""


@dataclass(eq=False)
class _Waiting(Generic[R]):
    unit: Unit
    done: bool = False
    result: R | None = None
    error: BaseException | None = field(default=None)
    leads: bool = False
    wake: threading.Event = field(default_factory=threading.Event)


class GroupCommit:
    """Runs units of work from many threads, as few transactions as the load allows."""

    def __init__(self, run_in_transaction: RunInTransaction, *, passthrough: tuple[type[BaseException], ...],
                 max_group: int = 256) -> None:
        """
        Args:
            run_in_transaction: commits what it is given, in one transaction (and retries
                deadlocks); raises when nothing was committed.
            passthrough: errors that mean the database failed (every unit of the group gets
                them); any other error is taken as one unit's fault.
            max_group: the most units in one transaction (bounds its size and lock time).
        """
        self._run = run_in_transaction
        self._passthrough = passthrough
        self._max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._leading = False
        self.groups = 0
        self.units = 0

    def submit(self, unit: Unit[R]) -> R:
        """Run `unit` in a committed transaction (shared with others) and return its result."""
        me = _Waiting(unit)
        with self._lock:
            self._queue.append(me)
            if not self._leading:
                self._leading = me.leads = True
        while not me.done:
            if not me.leads:
                # Each waiter has its own event: a commit wakes exactly the callers it
                # finished, and leadership passes to one of those still waiting.
                me.wake.wait()
                me.wake.clear()
                continue
            with self._lock:  # the oldest waiting units go first, ours among them sooner or later
                group, self._queue = self._queue[:self._max_group], self._queue[self._max_group:]
            try:
                self._commit(group)
            finally:
                for w in group:  # only if _commit itself broke: nobody may wait for ever
                    if not w.done:
                        w.error, w.done = RuntimeError("group commit did not finish"), True
                with self._lock:
                    me.leads = False
                    if self._queue:
                        heir = self._queue[0]
                        heir.leads = True
                        heir.wake.set()
                    else:
                        self._leading = False
                for w in group:
                    if w is not me:
                        w.wake.set()
        if me.error is not None:
            raise me.error
        return me.result  # type: ignore[return-value]

    def _commit(self, group: list[_Waiting]) -> None:
        self.groups += 1
        self.units += len(group)
        try:
            results = self._run(lambda: [w.unit() for w in group])
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
                    [w.result] = self._run(lambda w=w: [w.unit()])
                except BaseException as alone:
                    w.error = alone
                w.done = True
            return
        for w, result in zip(group, results, strict=True):
            w.result, w.done = result, True
