"""The database a storage URL names, and the one place database errors become ours.

`open_database` builds a peewee database without connecting (peewee connects lazily, per
thread, on first use), so nothing here touches a server at import or construction time.
Every storage method runs its statements inside `guarded`, which turns "the database is not
answering" into `StorageUnavailable`: the webhook answers 503 and Meta delivers again later.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee

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
"""How long one statement may wait for a lock (SQLite busy timeout, PostgreSQL lock_timeout,
InnoDB lock wait). Meta gives the webhook a few seconds; past this a 503 and Meta's retry is
better than a request that hangs."""

_CONNECT_TIMEOUT_SECONDS = 10
_MYSQL_QUERY_PARAMS = {"unix_socket", "connect_timeout", "read_timeout", "write_timeout",
                       "ssl_ca", "ssl_cert", "ssl_key"}


class StorageUnavailable(Exception):
    """The database did not answer: refused, down, dropped connection, lock timeout."""


class _Postgres(peewee.PostgresqlDatabase):
    def _initialize_connection(self, conn):
        # A session left idle in a transaction by a crashed peer must not hang the webhook.
        with conn.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{LOCK_WAIT_SECONDS}s'")


def open_database(url: str) -> peewee.Database:
    """Build (not connect) the database a storage URL names.

    Args:
        url: `sqlite:///relative.db`, `sqlite:////absolute.db`, `sqlite:///:memory:`,
            `postgresql://user:pw@host:port/db?options=...` (also `postgres://`),
            `mysql://user:pw@host:port/db`.

    Returns:
        A peewee database; call `bind` to point the models at it.

    Raises:
        ValueError: the scheme (named in the message) or a query parameter is not supported.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("storage URL has no scheme; use sqlite://, postgresql:// or mysql://")
    if scheme == "sqlite":
        return _open_sqlite(rest)
    if scheme in ("postgresql", "postgres"):
        return _open_postgres("postgresql://" + rest)
    if scheme == "mysql":
        return _open_mysql(url)
    raise ValueError(f"unsupported storage URL scheme {scheme!r}; use sqlite, postgresql or mysql")


def _open_sqlite(rest: str) -> peewee.SqliteDatabase:
    # SQLAlchemy's convention: sqlite:///rel/path.db is relative, sqlite:////abs/path.db absolute.
    path = rest[1:] if rest.startswith("/") else rest
    path = path.partition("?")[0]
    if not path:
        raise ValueError("sqlite URL has no path; use sqlite:///path/to/file.db")
    pragmas = [
        ("busy_timeout", LOCK_WAIT_SECONDS * 1000),
        ("journal_mode", "wal"),
        # WAL with NORMAL may lose the last commits on power loss; we answer Meta 200 only
        # after the commit, so the commit has to be on disk.
        ("synchronous", "FULL"),
        ("foreign_keys", 1),
    ]
    common = dict(pragmas=pragmas, timeout=LOCK_WAIT_SECONDS,
                  # Writers take the lock at BEGIN: a deferred transaction that reads first
                  # and then writes fails at once (no busy wait) if another writer got in.
                  lock_type="IMMEDIATE")
    if path == ":memory:":
        # peewee keeps one connection per thread, and a plain :memory: database per
        # connection: every thread would see its own empty database. A named shared-cache
        # memory database is one database for the whole process, kept alive by an anchor.
        # Concurrent writers there fail fast instead of waiting: use a file for that.
        name = f"file:wajira-{uuid.uuid4().hex}?mode=memory&cache=shared"
        db = peewee.SqliteDatabase(name, uri=True, **common)
        db._wajira_anchor = sqlite3.connect(name, uri=True, check_same_thread=False)
        return db
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError:
        pass  # Reported where it matters: the first statement raises StorageUnavailable.
    return peewee.SqliteDatabase(path, **common)


def _open_postgres(url: str) -> peewee.PostgresqlDatabase:
    # libpq understands the URL itself (host, port, sslmode, options=-csearch_path=...),
    # so it is passed through whole; only absent settings get our defaults.
    query = dict(parse_qsl(urlsplit(url).query))
    params: dict[str, object] = {}
    if "connect_timeout" not in query:
        params["connect_timeout"] = _CONNECT_TIMEOUT_SECONDS
    if "application_name" not in query:
        params["application_name"] = "wajira"
    return _Postgres(url, **params)


def _open_mysql(url: str) -> peewee.MySQLDatabase:
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
        "connect_timeout": _CONNECT_TIMEOUT_SECONDS,
        "read_timeout": 60,
        "write_timeout": 60,
        # UPDATE reports matched rows, not changed rows: renewing a lease or marking a row
        # with the values it already has must still count as success.
        "client_flag": pymysql.constants.CLIENT.FOUND_ROWS if pymysql else 2,
        # A known sql_mode so behaviour does not depend on the server's my.cnf.
        "init_command": (f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}, "
                         "SESSION sql_mode = 'TRADITIONAL,NO_ENGINE_SUBSTITUTION'"),
    }
    for key, value in parse_qsl(parts.query):
        if key not in _MYSQL_QUERY_PARAMS:
            raise ValueError(f"unsupported mysql URL parameter {key!r}")
        params[key] = int(value) if key.endswith("timeout") else value
    return peewee.MySQLDatabase(database, **params)


def bind(db: peewee.Database) -> None:
    """Point every model at `db` (the models use a DatabaseProxy)."""
    database_proxy.initialize(db)


def dialect(db: peewee.Database) -> str:
    """`sqlite`, `postgres` or `mysql` for a database (or an initialized proxy)."""
    real = db.obj if isinstance(db, peewee.DatabaseProxy) else db
    if isinstance(real, peewee.SqliteDatabase):
        return "sqlite"
    if isinstance(real, peewee.PostgresqlDatabase):
        return "postgres"
    if isinstance(real, peewee.MySQLDatabase):
        return "mysql"
    raise ValueError(f"unsupported database type {type(real).__name__}")


def _unavailable_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [peewee.OperationalError, peewee.InterfaceError,
                                        peewee.DatabaseError, sqlite3.Error]
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
    return bool(pymysql is not None and isinstance(orig, pymysql.err.Error)
                and args and args[0] == 1213)


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
