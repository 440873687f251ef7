"""The fixtures every suite shares; `tests/conftest.py` registers them.

Databases: `db_engine` runs a test once per engine (SQLite always; PostgreSQL and MariaDB when
their variables name a server, see `tests.support.databases`); `db_url` is a fresh, empty
database for *each test* (function scope), dropped afterwards; `db` is that database opened,
migrated and bound to the models — the start of every storage and job "world".
"""

from __future__ import annotations

from collections.abc import Iterator

import peewee
import pytest
import structlog

from storage.db import bind, open_database
from storage.schema import migrate
from tests.support.clock import FakeClock
from tests.support.databases import engine_params, isolated_for_pytest


@pytest.fixture(params=engine_params())
def db_engine(request: pytest.FixtureRequest) -> str:
    """`sqlite`, `postgres` or `mysql` (marked `postgres` / `mysql` for -m selection)."""
    return request.param


@pytest.fixture
def db_url(db_engine: str) -> Iterator[str]:
    """URL of a freshly created, empty database (schema not migrated), dropped afterwards."""
    with isolated_for_pytest(db_engine) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[peewee.Database]:
    """An open connection to `db_url` with the schema migrated and the models bound."""
    database = open_database(db_url)
    migrate(database)
    bind(database)
    yield database
    database.close()


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at `tests.support.clock.START`, moved only by `clock.advance(seconds)`."""
    return FakeClock()


@pytest.fixture(autouse=True)
def structlog_defaults() -> Iterator[None]:
    """A test that configures logging (the CLI does, at a level) must not filter the events
    the next test captures with `structlog.testing.capture_logs`."""
    yield
    structlog.reset_defaults()
