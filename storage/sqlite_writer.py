"""SQLite's write lock, waited for in the kernel instead of in SQLite's busy handler.

SQLite has one writer at a time. A connection that finds the lock taken calls its busy
handler, which sleeps 1, 2, 5, 10, 15 … ms between tries: the lock is often free long before
the sleeper looks again. With several webhook processes on one file (`[server] workers`), or
the jobs and the webhook in one process, those idle gaps, not the disk, bound the commit rate.

So every write transaction on a SQLite file first takes this lock: a thread lock within the
process, then an exclusive `flock` on a file beside the database that every process shares.
A waiter sleeps in the kernel and runs the moment the holder commits. The kernel drops a
dead process's `flock`, so `kill -9` leaves nothing held.

It is a queue, not a guarantee: SQLite's own lock still decides. A writer that does not take
this lock (another program on the same file) is met by the busy handler as before, and a
waiter that has not had the lock within the busy bound goes on without it, so a stopped
holder (SIGSTOP, a hung disk) costs the same bounded wait it always did.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

SUFFIX = "-writer"
"""The lock file: `<database>-writer`, as SQLite names its `-wal` and `-shm` beside it."""
_FIRST_PAUSE, _LONGEST_PAUSE = 0.00005, 0.001
"""Between tries while another process holds the lock: short, since commits take a millisecond."""


class WriterLock:
    """One per database file and process (see `writer_lock`)."""

    def __init__(self, path: str) -> None:
        self.path = path + SUFFIX
        # Never through a symlink planted in its place: the lock is ours, beside the database.
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        self._local = threading.Lock()

    @contextmanager
    def held(self, wait_seconds: float) -> Iterator[bool]:
        """Hold the lock for the block; yields whether it was had within `wait_seconds`."""
        deadline = time.monotonic() + wait_seconds
        if not self._local.acquire(timeout=wait_seconds):
            yield False
            return
        try:
            locked = self._lock_file(deadline)
            try:
                yield locked
            finally:
                if locked:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._local.release()

    def _lock_file(self, deadline: float) -> bool:
        pause = _FIRST_PAUSE
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)


_locks: dict[str, WriterLock | None] = {}
_registry_lock = threading.Lock()


def writer_lock(database: str) -> WriterLock | None:
    """The process's lock for a SQLite database path; None for an in-memory database, or
    where the lock file cannot be had (SQLite's own lock then queues the writers, as before)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = os.path.realpath(database)
    with _registry_lock:
        if path not in _locks:
            try:
                _locks[path] = WriterLock(path)
            except OSError:
                _locks[path] = None
        return _locks[path]
