"""The database a storage URL names, and the one place database errors become ours.

`open_database` builds a peewee database without connecting (peewee connects lazily, per
thread, on first use), so nothing here touches a server at import or construction time.
Every storage method runs its statements inside `guarded`, which turns "the database is not
answering" into `StorageUnavailable`: the webhook answers 503 and Meta delivers again later.

"Not answering" includes a database that never answers: every round trip (connecting, one
statement, a lock wait) is bounded by `timeout_seconds` (`[storage]` in config.toml), so a
hung server or a network that silently drops packets costs a request that long, not a
thread for ever (see `storage.engines`). Transactions and their retries live in
`storage.transactions`.
"""

from __future__ import annotations

import math
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee

from storage import pg_wait
from storage.engines import (
    BoundedMySQL,
    BoundedPostgres,
    BoundedSqlite,
    discard_connection,
    lock_wait,
    ms,
    mysql_init_command,
    run_sql,
)
from storage.models import database_proxy

try:  # Raw driver errors can escape peewee's wrapper while rows are fetched.
    import psycopg2
except ImportError:  # pragma: no cover - psycopg2-binary is a pinned dependency
    psycopg2 = None
try:
    import pymysql
except ImportError:  # pragma: no cover - PyMySQL is a pinned dependency
    pymysql = None

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


def _open_sqlite(rest: str, timeout_seconds: float) -> peewee.SqliteDatabase:
    # SQLAlchemy's convention: sqlite:///rel/path.db is relative, sqlite:////abs/path.db absolute.
    path = rest[1:] if rest.startswith("/") else rest
    path = path.partition("?")[0]
    if not path:
        raise ValueError("sqlite URL has no path; use sqlite:///path/to/file.db")
    # A file has no network to hang on: the only wait is for another writer's lock.
    busy = lock_wait(timeout_seconds)
    pragmas = [
        ("busy_timeout", ms(busy)),
        ("journal_mode", "wal"),
        # WAL with NORMAL may lose the last commits on power loss; we answer Meta 200 only
        # after the commit, so the commit has to be on disk.
        ("synchronous", "FULL"),
        ("foreign_keys", 1),
    ]
    common = {
        "pragmas": pragmas,
        "timeout": busy,
        # Writers take the lock at BEGIN: a deferred transaction that reads first
        # and then writes fails at once (no busy wait) if another writer got in.
        "lock_type": "IMMEDIATE",
    }
    if path == ":memory:":
        # peewee keeps one connection per thread, and a plain :memory: database per
        # connection: every thread would see its own empty database. A named shared-cache
        # memory database is one database for the whole process, kept alive by an anchor.
        # Concurrent writers there fail fast instead of waiting: use a file for that.
        name = f"file:wajira-{uuid.uuid4().hex}?mode=memory&cache=shared"
        db = BoundedSqlite(name, uri=True, **common)
        db.anchor = sqlite3.connect(name, uri=True, check_same_thread=False)
    else:
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError:
            pass  # Reported where it matters: the first statement raises StorageUnavailable.
        db = BoundedSqlite(path, **common)
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
        "tcp_user_timeout": ms(timeout_seconds),
    }
    params = {key: value for key, value in defaults.items() if key not in query}
    # The class carries the bound into the handshake, before peewee sees the connection.
    params["connection_factory"] = pg_wait.connection_class(timeout_seconds)
    db = BoundedPostgres(url, **params)
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
        "init_command": mysql_init_command(timeout_seconds),
    }
    url_settings = set()
    for key, value in parse_qsl(parts.query):
        if key not in _MYSQL_QUERY_PARAMS:
            raise ValueError(f"unsupported mysql URL parameter {key!r}")
        params[key] = _positive_seconds(key, value) if key.endswith("timeout") else value
        url_settings.add(key)
    db = BoundedMySQL(database, **params)
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


def bind(db: peewee.Database) -> None:
    """Point every model at `db` (the models use a DatabaseProxy)."""
    database_proxy.initialize(db)


# -- database trouble ------------------------------------------------------------------------


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
        discard_connection(db)
        raise StorageUnavailable(f"{type(exc).__name__}: {exc}".strip()) from exc


def ping(db: peewee.Database) -> None:
    """Raises StorageUnavailable unless the database answers `SELECT 1`."""
    with guarded(db):
        run_sql(db, "SELECT 1").fetchone()
