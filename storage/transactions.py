"""Write transactions, and running one again when the engine picked it as a deadlock victim.

Storage methods that write more than one statement go through `transact`: it joins the
caller's transaction when there is one, and otherwise opens its own, retried on a conflict.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import peewee

from storage.db import guarded
from storage.engines import dialect, lock_wait
from storage.sqlite_writer import writer_lock

try:
    import pymysql
except ImportError:  # pragma: no cover - PyMySQL is a pinned dependency
    pymysql = None

T = TypeVar("T")

_MYSQL_DEADLOCK = 1213
_PG_CONFLICTS = ("40P01", "40001")  # deadlock detected, serialization failure


def write_transaction(db: peewee.Database) -> AbstractContextManager[object]:
    """A transaction that takes SQLite's write lock at BEGIN (see `storage.db._open_sqlite`),
    queued for in the kernel first (`storage.sqlite_writer`)."""
    if dialect(db) == "sqlite" and not db.in_transaction():
        return _sqlite_write(db)
    return db.atomic()


@contextmanager
def _sqlite_write(db: peewee.Database) -> Iterator[None]:
    lock = writer_lock(db.database)
    if lock is None:
        with db.atomic(lock_type="IMMEDIATE"):
            yield
        return
    with lock.held(lock_wait(getattr(db, "round_trip_seconds", None))), db.atomic(lock_type="IMMEDIATE"):
        yield


def is_conflict(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction was rolled back; retry it."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "pgcode", None) in _PG_CONFLICTS:
        return True
    args = getattr(orig, "args", ())
    return bool(
        pymysql is not None and isinstance(orig, pymysql.err.Error) and args and args[0] == _MYSQL_DEADLOCK
    )


def in_transaction_retrying(db: peewee.Database, work: Callable[[], T], attempts: int = 5) -> T:
    """Run `work` in one write transaction, again if the engine picked it as a deadlock victim.

    Concurrent deliveries of overlapping batches can lock the same unique keys in different
    orders; the engine aborts one of them, and running it again is the documented remedy.
    """
    for attempt in range(attempts):
        try:
            with write_transaction(db):
                return work()
        except peewee.OperationalError as exc:
            if not is_conflict(exc) or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")


def transact(db: peewee.Database, work: Callable[[], T]) -> T:
    """Run `work` atomically: inside the caller's transaction when there is one (it then owns
    commit and deadlock retries), else in a retried write transaction of its own.

    Raises:
        StorageUnavailable: the database did not answer; nothing was written.
    """
    with guarded(db):
        if db.in_transaction():
            with db.atomic():  # a savepoint: a failure here leaves the caller's work intact
                return work()
        return in_transaction_retrying(db, work)
