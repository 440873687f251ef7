"""The database a storage URL names, and the one place database errors become ours.

`open_database` builds a peewee database without connecting (peewee connects lazily, per
thread, on first use), so nothing here touches a server at import or construction time.
Every storage method runs its statements inside `guarded`, which turns "the database is not
answering" into `StorageUnavailable`: the webhook answers 503 and Meta delivers again later.

"Not answering" includes a database that never answers: every round trip (connecting, one
statement, a lock wait) is bounded by `timeout_seconds` (`[storage]` in config.toml), so a
hung server or a network that silently drops packets costs a request that long, not a
thread for ever.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee

from storage import pg_wait
from storage.models import database_proxy

try:  # Raw driver errors can escape peewee's wrapper while rows are fetched.
    import psycopg2
except ImportError:  # pragma: no cover - psycopg2-binary is a pinned dependency
    psycopg2 = None
try:
    import pymysql
except ImportError:  # pragma: no cover - PyMySQL is a pinned dependency
    pymysql = None

T = TypeVar("T")

LOCK_WAIT_SECONDS = 10
"""The longest one statement may wait for a lock (SQLite busy timeout, PostgreSQL lock_timeout,
InnoDB lock wait), and less when `timeout_seconds` is shorter. Meta gives the webhook a few
seconds; past this a 503 and Meta's retry is better than a request that hangs."""

DEFAULT_TIMEOUT_SECONDS = 5.0
"""`[storage] timeout_seconds`: the longest one database round trip may take."""

_MYSQL_QUERY_PARAMS = {
    "unix_socket",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
}


class StorageUnavailable(Exception):
    """The database did not answer: refused, down, dropped connection, lock timeout, no
    answer within `timeout_seconds`."""


class _ConnectionPerThread:
    """peewee opens and closes connections under one lock for all threads, though each thread
    has its own. One attempt hanging on a silent server would then hold up every other
    thread's (the health check's, each webhook's) in turn, far past the bound."""

    round_trip_seconds: float | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = nullcontext()  # the connection state is thread-local (thread_safe=True)


class _Sqlite(_ConnectionPerThread, peewee.SqliteDatabase):
    pass


class _Postgres(_ConnectionPerThread, peewee.PostgresqlDatabase):
    url_settings: frozenset[str] = frozenset()
    """Server settings the URL's libpq `options` names (`-c name=value`): the operator's."""

    def _connect(self):
        pg_wait.install()
        conn = super()._connect()
        # The connection's class bounded the handshake; statements get this thread's bound.
        conn.round_trip_seconds = _bound(self)
        return conn

    def _initialize_connection(self, conn):
        seconds = conn.round_trip_seconds
        settings = {
            # A session left idle in a transaction by a crashed peer must not hang the webhook.
            "lock_timeout": _ms(_lock_wait(seconds)),
            # The server stops work nobody waits for any more (the client gave up, see _wait).
            "statement_timeout": 0 if seconds is None else _ms(seconds),
        }
        sql = "; ".join(
            f"SET {name} = {value}" for name, value in settings.items() if name not in self.url_settings
        )
        if sql:
            with conn.cursor() as cursor:
                cursor.execute(sql)


class _MySQL(_ConnectionPerThread, peewee.MySQLDatabase):
    url_settings: frozenset[str] = frozenset()

    def _connect(self):
        if pymysql is None:  # pragma: no cover - PyMySQL is a pinned dependency
            raise peewee.ImproperlyConfigured("MySQL driver not installed!")
        params = dict(self.connect_params)
        seconds = _bound(self)
        if seconds != self.round_trip_seconds:  # in `patient`: this connection may wait longer
            params.update(
                {key: seconds for key in ("read_timeout", "write_timeout") if key not in self.url_settings}
            )
            params["init_command"] = _mysql_init_command(seconds)
        return pymysql.connect(database=self.database, autocommit=True, **params)


def open_database(url: str, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> peewee.Database:
    """Build (not connect) the database a storage URL names.

    Args:
        url: `sqlite:///relative.db`, `sqlite:////absolute.db`, `sqlite:///:memory:`,
            `postgresql://user:pw@host:port/db?options=...` (also `postgres://`),
            `mysql://user:pw@host:port/db`.
        timeout_seconds: the longest one round trip may take: connecting, a statement, a lock
            wait. Driver settings the URL names itself (`?connect_timeout=...`) win over the
            ones derived from this; the client-side bound on PostgreSQL always applies.

    Returns:
        A peewee database; call `bind` to point the models at it.

    Raises:
        ValueError: the scheme (named in the message) or a query parameter is not supported.
    """
    if not timeout_seconds > 0:
        raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("storage URL has no scheme; use sqlite://, postgresql:// or mysql://")
    if scheme == "sqlite":
        return _open_sqlite(rest, timeout_seconds)
    if scheme in ("postgresql", "postgres"):
        return _open_postgres("postgresql://" + rest, timeout_seconds)
    if scheme == "mysql":
        return _open_mysql(url, timeout_seconds)
    raise ValueError(f"unsupported storage URL scheme {scheme!r}; use sqlite, postgresql or mysql")


def round_trip_seconds(db: peewee.Database) -> float | None:
    """The bound `open_database` was given (None for a database it did not build)."""
    return getattr(_real(db), "round_trip_seconds", None)


def _real(db: peewee.Database) -> peewee.Database:
    return db.obj if isinstance(db, peewee.DatabaseProxy) else db


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _lock_wait(seconds: float | None) -> float:
    return LOCK_WAIT_SECONDS if seconds is None else min(LOCK_WAIT_SECONDS, seconds)


def _open_sqlite(rest: str, timeout_seconds: float) -> peewee.SqliteDatabase:
    # SQLAlchemy's convention: sqlite:///rel/path.db is relative, sqlite:////abs/path.db absolute.
    path = rest[1:] if rest.startswith("/") else rest
    path = path.partition("?")[0]
    if not path:
        raise ValueError("sqlite URL has no path; use sqlite:///path/to/file.db")
    # A file has no network to hang on: the only wait is for another writer's lock.
    busy = _lock_wait(timeout_seconds)
    pragmas = [
        ("busy_timeout", _ms(busy)),
        ("journal_mode", "wal"),
        # WAL with NORMAL may lose the last commits on power loss; we answer Meta 200 only
        # after the commit, so the commit has to be on disk.
        ("synchronous", "FULL"),
        ("foreign_keys", 1),
    ]
    common = dict(
        pragmas=pragmas,
        timeout=busy,
        # Writers take the lock at BEGIN: a deferred transaction that reads first
        # and then writes fails at once (no busy wait) if another writer got in.
        lock_type="IMMEDIATE",
    )
    if path == ":memory:":
        # peewee keeps one connection per thread, and a plain :memory: database per
        # connection: every thread would see its own empty database. A named shared-cache
        # memory database is one database for the whole process, kept alive by an anchor.
        # Concurrent writers there fail fast instead of waiting: use a file for that.
        name = f"file:wajira-{uuid.uuid4().hex}?mode=memory&cache=shared"
        db = _Sqlite(name, uri=True, **common)
        db._wajira_anchor = sqlite3.connect(name, uri=True, check_same_thread=False)
    else:
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError:
            pass  # Reported where it matters: the first statement raises StorageUnavailable.
        db = _Sqlite(path, **common)
    db.round_trip_seconds = timeout_seconds
    return db


def _open_postgres(url: str, timeout_seconds: float) -> peewee.PostgresqlDatabase:
    # libpq understands the URL itself (host, port, sslmode, options=-csearch_path=...),
    # so it is passed through whole; only absent settings get our defaults.
    query = dict(parse_qsl(urlsplit(url).query))
    seconds = math.ceil(timeout_seconds)
    defaults: dict[str, object] = {
        "application_name": "wajira",
        "connect_timeout": max(2, seconds),  # whole seconds; libpq takes 1 as 2 anyway
        # An idle connection whose server vanished (failover, a dropped NAT entry) is found
        # and closed by the kernel instead of failing the next statement late.
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": max(1, math.ceil(timeout_seconds / 3)),
        "keepalives_count": 3,
        # Bytes sent and never acknowledged (a network that drops packets) end the connection.
        "tcp_user_timeout": _ms(timeout_seconds),
    }
    params = {key: value for key, value in defaults.items() if key not in query}
    # The class carries the bound into the handshake, before peewee sees the connection.
    params["connection_factory"] = pg_wait.connection_class(timeout_seconds)
    db = _Postgres(url, **params)
    db.round_trip_seconds = timeout_seconds
    db.url_settings = _server_settings_named(query.get("options", ""))
    return db


def _server_settings_named(options: str) -> frozenset[str]:
    # libpq's `options` holds server command-line switches: "-c name=value", "-cname=value"
    # or "--name=value"; a dash in a name stands for an underscore.
    names = set()
    for token in options.split():
        if token != "-c":
            setting = token[2:] if token.startswith(("-c", "--")) else token
            names.add(setting.partition("=")[0].replace("-", "_").lower())
    return frozenset(names)


def _open_mysql(url: str, timeout_seconds: float) -> peewee.MySQLDatabase:
    parts = urlsplit(url)
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ValueError("mysql URL has no database name; use mysql://user@host:3306/dbname")
    params: dict[str, object] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        # Emoji and other 4-byte characters need utf8mb4 on the wire as well as in tables.
        "charset": "utf8mb4",
        # PyMySQL applies these to every socket operation (connecting, the handshake, each
        # read and write) and drops the connection when one passes. Equal, so it need not
        # switch the socket's timeout (a call that releases the GIL) between writes and reads.
        "connect_timeout": timeout_seconds,
        "read_timeout": timeout_seconds,
        "write_timeout": timeout_seconds,
        # UPDATE reports matched rows, not changed rows: renewing a lease or marking a row
        # with the values it already has must still count as success.
        "client_flag": pymysql.constants.CLIENT.FOUND_ROWS if pymysql else 2,
        "init_command": _mysql_init_command(timeout_seconds),
    }
    url_settings = set()
    for key, value in parse_qsl(parts.query):
        if key not in _MYSQL_QUERY_PARAMS:
            raise ValueError(f"unsupported mysql URL parameter {key!r}")
        params[key] = _positive_seconds(key, value) if key.endswith("timeout") else value
        url_settings.add(key)
    db = _MySQL(database, **params)
    db.round_trip_seconds = timeout_seconds
    db.url_settings = frozenset(url_settings)
    return db


def _positive_seconds(key: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise ValueError(f"mysql URL parameter {key!r} must be a positive number of seconds")
    return seconds


def _mysql_init_command(seconds: float | None) -> str:
    # InnoDB's lock wait is in whole seconds, 1 at least. A known sql_mode so behaviour does
    # not depend on the server's my.cnf.
    lock_wait = max(1, math.floor(_lock_wait(seconds)))
    return (
        f"SET SESSION innodb_lock_wait_timeout = {lock_wait}, "
        "SESSION sql_mode = 'TRADITIONAL,NO_ENGINE_SUBSTITUTION'"
    )


# -- bounded round trips ---------------------------------------------------------------------
#
# PyMySQL bounds its own socket reads and writes; libpq does not (see storage/pg_wait.py).

_patience = threading.local()


def _bound(db: peewee.Database) -> float | None:
    """The bound for round trips on `db` from this thread: `patient`'s, else the database's."""
    overrides: dict[int, float | None] = getattr(_patience, "by_db", {})
    return overrides.get(id(db), db.round_trip_seconds)


@contextmanager
def patient(db: peewee.Database, *, at_least: float) -> Iterator[None]:
    """Let this thread's round trips on `db` take `at_least` seconds (if its bound is shorter).

    For the rare work one statement of which may legitimately take long: a schema migration
    builds indexes and waits for another instance's migration. The thread's connection is
    closed on the way in and out, so the bound (driver timeouts, statement_timeout) is set as
    the next connection opens. SQLite waits only for locks, and keeps its busy timeout.

    Raises:
        RuntimeError: called inside a transaction (its connection cannot be swapped).
    """
    real = _real(db)
    seconds = round_trip_seconds(real)
    if dialect(real) == "sqlite" or seconds is None or seconds >= at_least:
        yield
        return
    if real.in_transaction():
        raise RuntimeError("patient() needs to start outside a transaction")
    overrides = _patience.__dict__.setdefault("by_db", {})
    _discard_connection(real)
    overrides[id(real)] = at_least
    try:
        yield
    finally:
        del overrides[id(real)]
        _discard_connection(real)


def bind(db: peewee.Database) -> None:
    """Point every model at `db` (the models use a DatabaseProxy)."""
    database_proxy.initialize(db)


def dialect(db: peewee.Database) -> str:
    """`sqlite`, `postgres` or `mysql` for a database (or an initialized proxy)."""
    real = _real(db)
    if isinstance(real, peewee.SqliteDatabase):
        return "sqlite"
    if isinstance(real, peewee.PostgresqlDatabase):
        return "postgres"
    if isinstance(real, peewee.MySQLDatabase):
        return "mysql"
    raise ValueError(f"unsupported database type {type(real).__name__}")


def _unavailable_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [
        peewee.OperationalError,
        peewee.InterfaceError,
        peewee.DatabaseError,
        sqlite3.Error,
    ]
    if psycopg2 is not None:
        types.append(psycopg2.Error)
    if pymysql is not None:
        types.append(pymysql.err.Error)
    return tuple(types)


def _integrity_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [peewee.IntegrityError, sqlite3.IntegrityError]
    if psycopg2 is not None:
        types.append(psycopg2.IntegrityError)
    if pymysql is not None:
        types.append(pymysql.err.IntegrityError)
    return tuple(types)


_UNAVAILABLE = _unavailable_types()
_INTEGRITY = _integrity_types()


@contextmanager
def guarded(db: peewee.Database) -> Iterator[None]:
    """Translate database trouble into `StorageUnavailable`; integrity errors pass through.

    Use it outside any transaction block: the connection is closed on the way out so that
    the next call reconnects instead of reusing a dead socket.
    """
    try:
        yield
    except _INTEGRITY:
        raise
    except _UNAVAILABLE as exc:
        _discard_connection(db)
        raise StorageUnavailable(f"{type(exc).__name__}: {exc}".strip()) from exc


def _discard_connection(db: peewee.Database) -> None:
    if db.in_transaction():
        return  # The enclosing transaction block rolls back and owns the connection.
    try:
        db.close()
    except Exception:
        # The socket is already gone; forget it so autoconnect opens a new one.
        db.dispose()


def ping(db: peewee.Database) -> None:
    """Raises StorageUnavailable unless the database answers `SELECT 1`."""
    with guarded(db):
        db.execute_sql("SELECT 1").fetchone()


def write_transaction(db: peewee.Database):
    """A transaction that takes SQLite's write lock at BEGIN (see `_open_sqlite`)."""
    if dialect(db) == "sqlite" and not db.in_transaction():
        return db.atomic(lock_type="IMMEDIATE")
    return db.atomic()


def is_conflict(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction was rolled back; retry it."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "pgcode", None) in ("40P01", "40001"):
        return True
    args = getattr(orig, "args", ())
    return bool(pymysql is not None and isinstance(orig, pymysql.err.Error) and args and args[0] == 1213)


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


def utf8_safe(value: object) -> object:
    """A string the database can store: lone surrogates become U+FFFD (others pass untouched)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value
