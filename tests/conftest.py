"""Shared fixtures: `db_url` gives each test an empty, isolated database on every engine."""

from __future__ import annotations

import pytest
import structlog

from storage.db import bind, open_database
from storage.schema import migrate
from tests.dbs import engine_params, isolated_for_pytest


@pytest.fixture(params=engine_params())
def db_engine(request) -> str:
    """`sqlite`, `postgres` or `mysql` (marked `postgres` / `mysql` for -m selection)."""
    return request.param


@pytest.fixture
def db_url(db_engine: str):
    """URL of a freshly created, empty database (schema not migrated), dropped afterwards."""
    with isolated_for_pytest(db_engine) as url:
        yield url


@pytest.fixture
def db(db_url):
    """An open connection to `db_url` with the schema migrated and the models bound."""
    database = open_database(db_url)
    migrate(database)
    bind(database)
    yield database
    database.close()


@pytest.fixture(autouse=True)
def _structlog_defaults():
    """A test that configures logging (the CLI does, at a level) must not filter the events
    the next test captures with `structlog.testing.capture_logs`."""
    yield
    structlog.reset_defaults()
