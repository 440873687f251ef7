"""Schema creation and upgrades: numbered steps, each applied once, recorded in `schema_version`.

Steps hold frozen DDL rather than calling `Model.create_table()`: a step must mean the same
thing forever, whatever the models look like later. Every statement is idempotent
(`IF NOT EXISTS`; on MySQL the indexes live inside CREATE TABLE), so a step cut short by a
crash simply runs again.

Several daemons may start at once against one database, so `migrate` holds a lock while it
reads the version and applies steps: a PostgreSQL advisory lock (transactional DDL, the whole
upgrade is one transaction), a MySQL named lock (DDL commits implicitly there), and SQLite's
write lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import peewee

from storage.db import StorageUnavailable, guarded
from storage.engines import LOCK_WAIT_SECONDS, dialect, patient, run_sql
from storage.schema_ddl import Table, create_tables
from storage.schema_steps import STEPS
from storage.transactions import write_transaction

SCHEMA_VERSION: int = STEPS[-1][0]
MIGRATION_ROUND_TRIP_SECONDS = 60.0
"""A migration's statements may take this long whatever `[storage] timeout_seconds` says: a step
may build an index on a big table, and a second instance waits for the first one's lock."""

_SCHEMA_VERSION_TABLE = Table(
    "schema_version",
    (
        ("version", "{int} NOT NULL PRIMARY KEY"),
        ("applied_at", "{double} NOT NULL"),
    ),
)


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer wajira; this one must not write to it."""


def migrate(db: peewee.Database, *, target: int | None = None) -> int:
    """Create or upgrade the schema; safe to call from several processes at once.

    Args:
        target: stop after this step (tests build old databases with it); default: all.

    Returns:
        The schema version now in the database (SCHEMA_VERSION, or `target`).

    Raises:
        StorageUnavailable: the database did not answer, or the migration lock timed out.
        SchemaTooNew: the database is at a version this code does not know.
    """
    with guarded(db), patient(db, at_least=MIGRATION_ROUND_TRIP_SECONDS):
        with _migration_lock(db):
            create_tables(db, (_SCHEMA_VERSION_TABLE,))
            current = _current_version(db)
            if current > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"database schema version {current} is newer than this "
                    f"wajira's {SCHEMA_VERSION}; upgrade wajira"
                )
            goal = SCHEMA_VERSION if target is None else target
            for version, step in STEPS:
                if current < version <= goal:
                    step(db)
                    run_sql(
                        db,
                        f"INSERT INTO schema_version (version, applied_at) VALUES ({db.param}, {db.param})",
                        (version, time.time()),
                    )
            return max(current, goal)


def _current_version(db: peewee.Database) -> int:
    row = run_sql(db, "SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# The first key of PostgreSQL's two-int advisory lock: "wajira" in ASCII, trimmed to int4.
_PG_LOCK_KEY = 0x77616A69


@contextmanager
def _migration_lock(db: peewee.Database) -> Iterator[None]:
    kind = dialect(db)
    if kind == "mysql":
        # Per database, so test sessions in their own databases do not queue for each other.
        name = "LEFT(CONCAT('wajira-migrate:', DATABASE()), 64)"
        got = run_sql(db, f"SELECT GET_LOCK({name}, %s)", (LOCK_WAIT_SECONDS * 3,)).fetchone()[0]
        if got != 1:
            raise StorageUnavailable("timed out waiting for the schema migration lock")
        try:
            yield
        finally:
            run_sql(db, f"SELECT RELEASE_LOCK({name})")
        return
    with write_transaction(db):
        if kind == "postgres":
            # Keyed by schema, for the same reason as the MySQL lock name.
            run_sql(db, "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (_PG_LOCK_KEY,))
        yield
