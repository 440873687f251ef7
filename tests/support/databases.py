"""Isolated databases for tests: a fresh SQLite file, PostgreSQL schema or MariaDB database.

Several engineers and CI runs share the same servers, so every isolated database gets a
random name and is dropped afterwards. The URL is a plain string a subprocess daemon can
take in its config: for PostgreSQL it carries `options=-csearch_path=<schema>`.

    url, cleanup = isolated_url("postgres")    # or "sqlite", "mysql"
    try: ...
    finally: cleanup()

Servers come from WAJIRA_TEST_POSTGRES_URL and WAJIRA_TEST_MYSQL_URL. Unset: the tests that
need them are skipped (`ServerNotConfigured`). Set but unreachable: they fail, so CI fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

ENGINES = ("sqlite", "postgres", "mysql")
ENV_VARS = {"postgres": "WAJIRA_TEST_POSTGRES_URL", "mysql": "WAJIRA_TEST_MYSQL_URL"}


class ServerNotConfigured(LookupError):
    """The environment variable naming the engine's test server is unset."""

    def __init__(self, engine: str):
        self.engine = engine
        self.variable = ENV_VARS[engine]
        super().__init__(f"{self.variable} is not set")


class ServerUnreachable(RuntimeError):
    """The variable is set but the server did not answer (a failure, not a skip)."""


def server_url(engine: str) -> str:
    """The server URL for a networked engine; raises ServerNotConfigured when unset."""
    value = os.environ.get(ENV_VARS[engine], "").strip()
    if not value:
        raise ServerNotConfigured(engine)
    return value


def _random_name() -> str:
    return "wajira_t_" + secrets.token_hex(6)


def isolated_url(engine: str) -> tuple[str, Callable[[], None]]:
    """Create an empty isolated database.

    Returns:
        (storage URL for `storage.db.open_database`, cleanup) — call cleanup once, after
        every connection to it is closed (PostgreSQL and MariaDB drop wait for them).

    Raises:
        ServerNotConfigured: postgres/mysql variable unset.
        ServerUnreachable: variable set, server not answering.
    """
    if engine == "sqlite":
        directory = tempfile.mkdtemp(prefix="wajira-test-")
        # Four slashes: an absolute path (three would make it relative to the cwd).
        return f"sqlite:///{directory}/wajira.db", lambda: shutil.rmtree(directory, True)
    if engine == "postgres":
        return _postgres(server_url("postgres"))
    if engine == "mysql":
        return _mysql(server_url("mysql"))
    raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")


@contextmanager
def isolated_database(engine: str) -> Iterator[str]:
    """`isolated_url` as a context manager."""
    url, cleanup = isolated_url(engine)
    try:
        yield url
    finally:
        cleanup()


def _postgres(base: str) -> tuple[str, Callable[[], None]]:
    import psycopg2

    schema = _random_name()
    dsn = "postgresql://" + base.partition("://")[2]

    def admin(sql: str) -> None:
        conn = psycopg2.connect(dsn, connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                # A test that leaked an open transaction must not hang the cleanup.
                cursor.execute("SET lock_timeout = '30s'")
                cursor.execute(sql)
        finally:
            conn.close()

    try:
        admin(f'CREATE SCHEMA "{schema}"')
    except psycopg2.OperationalError as exc:
        raise ServerUnreachable(
            f"{ENV_VARS['postgres']} is set but PostgreSQL did not answer: {exc}"
        ) from exc
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    # libpq applies `options` at connect time: every connection starts in our schema.
    query.append(("options", f"-csearch_path={schema}"))
    url = urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
    return url, lambda: admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _mysql(base: str) -> tuple[str, Callable[[], None]]:
    import pymysql

    name = _random_name()
    parts = urlsplit(base)

    def admin(sql: str) -> None:
        conn = pymysql.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            connect_timeout=10,
            autocommit=True,
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute("SET SESSION lock_wait_timeout = 30")
                cursor.execute(sql)
        finally:
            conn.close()

    try:
        admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    except pymysql.err.OperationalError as exc:
        raise ServerUnreachable(
            f"{ENV_VARS['mysql']} is set but MySQL/MariaDB did not answer: {exc}"
        ) from exc
    url = urlunsplit(parts._replace(path="/" + name))
    return url, lambda: admin(f"DROP DATABASE IF EXISTS `{name}`")


# -- pytest glue (tests/support/fixtures.py builds the fixtures on these) ------------------------


def engine_params():
    """pytest params for the three engines, with the `postgres` / `mysql` markers."""
    import pytest

    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    ]


@contextmanager
def isolated_for_pytest(engine: str) -> Iterator[str]:
    """An isolated URL; skips the test when the server is not configured, fails when it is
    configured but unreachable."""
    import pytest

    problem = None
    try:
        url, cleanup = isolated_url(engine)
    except ServerNotConfigured as exc:
        pytest.skip(f"{exc.variable} not set: no {engine} server to test against")
    except ServerUnreachable as exc:
        problem = str(exc)
    if problem is not None:  # outside the except: no chained traceback around the message
        pytest.fail(problem, pytrace=False)
    try:
        yield url
    finally:
        cleanup()
