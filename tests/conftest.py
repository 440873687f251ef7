"""Registers the shared fixtures of `tests/support/fixtures.py` (databases, clock, logging)."""

from tests.support.fixtures import (  # noqa: F401 - imported to register them with pytest
    clock,
    db,
    db_engine,
    db_url,
    structlog_defaults,
)
