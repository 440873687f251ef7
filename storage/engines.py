"""The three engines' database classes, and the bound on each of their round trips.

`storage.db.open_database` builds one of these from a URL. Each carries `round_trip_seconds`
(`[storage] timeout_seconds`): connecting, one statement and one lock wait take that long at
most. PyMySQL bounds its own socket reads and writes; libpq does not, so a PostgreSQL
connection waits through `storage.pg_wait`. `patient` lets one thread's work wait longer.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, Protocol

import peewee

from storage import pg_wait

try:
    import pymysql
except ImportError:  # pragma: no cover - PyMySQL is a pinned dependency
    pymysql = None

# The drivers ship no types; these names only say which object a method hands back.
PgConnection = Any
MySQLConnection = Any

LOCK_WAIT_SECONDS = 10
"""The longest one statement may wait for a lock (SQLite busy timeout, PostgreSQL lock_timeout,
InnoDB lock wait), and less when `timeout_seconds` is shorter. Meta gives the webhook a few
seconds; past this a 503 and Meta's retry is better than a request that hangs."""


def ms(seconds: float) -> int:
    """Whole milliseconds, 1 at least (0 means "no limit" to the engines)."""
    return max(1, round(seconds * 1000))


def lock_wait(seconds: float | None) -> float:
    """The lock wait for a round-trip bound: LOCK_WAIT_SECONDS, or the bound if shorter."""
    return LOCK_WAIT_SECONDS if seconds is None else min(LOCK_WAIT_SECONDS, seconds)


def mysql_init_command(seconds: float | None) -> str:
    """The statement each MySQL connection runs first."""
    # InnoDB's lock wait is in whole seconds, 1 at least. A known sql_mode so behaviour does
    # not depend on the server's my.cnf.
    wait = max(1, math.floor(lock_wait(seconds)))
    return (
        f"SET SESSION innodb_lock_wait_timeout = {wait}, "
        "SESSION sql_mode = 'TRADITIONAL,NO_ENGINE_SUBSTITUTION'"
    )


class _ConnectionPerThread(peewee.Database):
    """peewee opens and closes connections under one lock for all threads, though each thread
    has its own. One attempt hanging on a silent server would then hold up every other
    thread's (the health check's, each webhook's) in turn, far past the bound."""

    round_trip_seconds: float | None = None

    # Any: the keywords are peewee's and the driver's connect parameters, of many types.
    def __init__(self, database: str, **kwargs: Any) -> None:
        super().__init__(database, **kwargs)
        self._lock = nullcontext()  # the connection state is thread-local (thread_safe=True)


class BoundedSqlite(_ConnectionPerThread, peewee.SqliteDatabase):
    anchor: sqlite3.Connection | None = None
    """For a shared in-memory database: a connection that keeps it alive (see storage.db)."""

    def _set_pragmas(self, conn: sqlite3.Connection) -> None:
        # Switching to WAL needs the database to itself, and SQLite answers "locked" without
        # calling the busy handler when several connections open a new file at once (start-up
        # with several workers, a migration from many threads). WAL is stored in the file: a
        # connection that finds it set skips the switch, the others retry within the busy bound.
        deadline = time.monotonic() + lock_wait(self.round_trip_seconds)
        pragmas: list[tuple[str, Any]] = list(getattr(self, "_pragmas", ()))  # peewee's, untyped
        for pragma, value in pragmas:
            while True:
                try:
                    if pragma == "journal_mode" and _journal_mode(conn) == str(value).lower():
                        break
                    conn.execute(f"PRAGMA {pragma} = {value};")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() >= deadline:
                        raise
                    time.sleep(0.02)


def _journal_mode(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA journal_mode;").fetchone()
    return str(row[0]).lower() if row else ""


class BoundedPostgres(_ConnectionPerThread, peewee.PostgresqlDatabase):
    url_settings: frozenset[str] = frozenset()
    """Server settings the URL's libpq `options` names (`-c name=value`): the operator's."""

    def _connect(self) -> PgConnection:
        pg_wait.install()
        conn = super()._connect()  # type: ignore[misc]  # peewee's stub omits _connect
        # The connection's class bounded the handshake; statements get this thread's bound.
        conn.round_trip_seconds = _bound(self)
        return conn

    def _initialize_connection(self, conn: PgConnection) -> None:
        seconds = conn.round_trip_seconds
        settings = {
            # A session left idle in a transaction by a crashed peer must not hang the webhook.
            "lock_timeout": ms(lock_wait(seconds)),
            # The server stops work nobody waits for any more (the client gave up, see pg_wait).
            "statement_timeout": 0 if seconds is None else ms(seconds),
        }
        sql = "; ".join(
            f"SET {name} = {value}" for name, value in settings.items() if name not in self.url_settings
        )
        if sql:
            with conn.cursor() as cursor:
                cursor.execute(sql)


class BoundedMySQL(_ConnectionPerThread, peewee.MySQLDatabase):
    url_settings: frozenset[str] = frozenset()
    """Driver parameters the URL names itself (`?read_timeout=...`): the operator's."""

    def _connect(self) -> MySQLConnection:
        if pymysql is None:  # pragma: no cover - PyMySQL is a pinned dependency
            raise peewee.ImproperlyConfigured("MySQL driver not installed!")
        params = dict(self.connect_params)
        seconds = _bound(self)
        if seconds != self.round_trip_seconds:  # in `patient`: this connection may wait longer
            params.update(
                {key: seconds for key in ("read_timeout", "write_timeout") if key not in self.url_settings}
            )
            params["init_command"] = mysql_init_command(seconds)
        return pymysql.connect(database=self.database, autocommit=True, **params)


class Cursor(Protocol):
    """The part of a DB-API cursor storage reads."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...  # Any: a row of whatever the statement selects

    def fetchall(self) -> list[Any]: ...


def run_sql(db: peewee.Database, sql: str, params: Sequence[object] | None = None) -> Cursor:
    """`db.execute_sql`, typed: peewee's stub leaves it unannotated."""
    cursor: Cursor = db.execute_sql(sql, params)  # type: ignore[no-untyped-call]  # see the docstring
    return cursor


def real(db: peewee.Database | peewee.DatabaseProxy) -> peewee.Database:
    """The database itself, for a database or an initialized proxy."""
    if isinstance(db, peewee.DatabaseProxy):
        database: peewee.Database = db.obj
        return database
    return db


def dialect(db: peewee.Database | peewee.DatabaseProxy) -> str:
    """`sqlite`, `postgres` or `mysql` for a database (or an initialized proxy)."""
    database = real(db)
    if isinstance(database, peewee.SqliteDatabase):
        return "sqlite"
    if isinstance(database, peewee.PostgresqlDatabase):
        return "postgres"
    if isinstance(database, peewee.MySQLDatabase):
        return "mysql"
    raise ValueError(f"unsupported database type {type(database).__name__}")


def round_trip_seconds(db: peewee.Database | peewee.DatabaseProxy) -> float | None:
    """The bound `open_database` was given (None for a database it did not build)."""
    seconds: float | None = getattr(real(db), "round_trip_seconds", None)
    return seconds


def discard_connection(db: peewee.Database) -> None:
    """Close this thread's connection so that the next statement opens a fresh one."""
    if db.in_transaction():
        return  # The enclosing transaction block rolls back and owns the connection.
    try:
        db.close()
    except Exception:
        # The socket is already gone; forget it so autoconnect opens a new one.
        db.dispose()


# -- longer bounds for one thread's work -----------------------------------------------------

_patience = threading.local()


def _bound(db: _ConnectionPerThread) -> float | None:
    """The bound for round trips on `db` from this thread: `patient`'s, else the database's."""
    overrides: dict[int, float | None] = getattr(_patience, "by_db", {})
    return overrides.get(id(db), db.round_trip_seconds)


@contextmanager
def patient(db: peewee.Database | peewee.DatabaseProxy, *, at_least: float) -> Iterator[None]:
    """Let this thread's round trips on `db` take `at_least` seconds (if its bound is shorter).

    For the rare work one statement of which may legitimately take long: a schema migration
    builds indexes and waits for another instance's migration. The thread's connection is
    closed on the way in and out, so the bound (driver timeouts, statement_timeout) is set as
    the next connection opens. SQLite waits only for locks, and keeps its busy timeout.

    Raises:
        RuntimeError: called inside a transaction (its connection cannot be swapped).
    """
    database = real(db)
    seconds = round_trip_seconds(database)
    if dialect(database) == "sqlite" or seconds is None or seconds >= at_least:
        yield
        return
    if database.in_transaction():
        raise RuntimeError("patient() needs to start outside a transaction")
    overrides: dict[int, float | None] = _patience.__dict__.setdefault("by_db", {})
    discard_connection(database)
    overrides[id(database)] = at_least
    try:
        yield
    finally:
        del overrides[id(database)]
        discard_connection(database)
