"""Frozen DDL: tables described once, spelled per engine, created idempotently.

The schema steps describe their tables with `Table`; `statements` spells one as CREATE TABLE
(and CREATE INDEX) for SQLite, PostgreSQL or MySQL. Every statement is idempotent (`IF NOT
EXISTS`; on MySQL the indexes live inside CREATE TABLE), so a step cut short by a crash
simply runs again.
"""

from __future__ import annotations

from dataclasses import dataclass

import peewee

from storage.engines import dialect, run_sql

_TYPES = {
    "sqlite": {
        "pk": "INTEGER NOT NULL PRIMARY KEY",
        "bigpk": "INTEGER NOT NULL PRIMARY KEY",
        "int": "INTEGER",
        "bigint": "INTEGER",
        "double": "REAL",
        "text": "TEXT",
        "longtext": "TEXT",
        "datetime": "DATETIME",
        "key": "VARCHAR(191)",
    },
    "postgres": {
        "pk": "SERIAL NOT NULL PRIMARY KEY",
        "bigpk": "BIGSERIAL NOT NULL PRIMARY KEY",
        "int": "INTEGER",
        "bigint": "BIGINT",
        "double": "DOUBLE PRECISION",
        "text": "TEXT",
        "longtext": "TEXT",
        "datetime": "TIMESTAMP",
        "key": "VARCHAR(191)",
    },
    "mysql": {
        "pk": "INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY",
        "bigpk": "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
        "int": "INTEGER",
        "bigint": "BIGINT",
        "double": "DOUBLE",
        "text": "TEXT",
        # A 3 MB webhook body does not fit MySQL's 64 KB TEXT.
        "longtext": "LONGTEXT",
        "datetime": "DATETIME(6)",
        "key": "VARCHAR(191)",
    },
}
# utf8mb4 whatever the server's default; binary collation so keys compare exactly as on
# SQLite and PostgreSQL (wamids are case-sensitive).
_MYSQL_TABLE_OPTIONS = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    """(column, "{type} constraints") with {type} from _TYPES."""
    indexes: tuple[tuple[str, tuple[str, ...], bool], ...] = ()
    """(index name, columns, unique)."""


def statements(kind: str, table: Table) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements for `table` on engine `kind`."""
    q = "`%s`" if kind == "mysql" else '"%s"'
    types = _TYPES[kind]
    parts = [f"{q % name} {spec.format(**types)}" for name, spec in table.columns]
    if kind == "mysql":
        # MySQL has no CREATE INDEX IF NOT EXISTS; inside CREATE TABLE they come and go
        # with the table, so the whole statement stays idempotent.
        for name, cols, unique in table.indexes:
            col_list = ", ".join(q % c for c in cols)
            parts.append(f"{'UNIQUE KEY' if unique else 'KEY'} {q % name} ({col_list})")
    options = _MYSQL_TABLE_OPTIONS if kind == "mysql" else ""
    out = [f"CREATE TABLE IF NOT EXISTS {q % table.name} ({', '.join(parts)}){options}"]
    if kind != "mysql":
        for name, cols, unique in table.indexes:
            col_list = ", ".join(q % c for c in cols)
            out.append(
                f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {q % name} "
                f"ON {q % table.name} ({col_list})"
            )
    return out


def create_tables(db: peewee.Database, tables: tuple[Table, ...]) -> None:
    """Create `tables` (and their indexes) unless they exist."""
    kind = dialect(db)
    for table in tables:
        for sql in statements(kind, table):
            run_sql(db, sql)


def add_column_sql(kind: str, table: str, column: str, spec: str) -> str:
    """ALTER TABLE ... ADD COLUMN; not idempotent on any engine: look before calling it."""
    q = "`%s`" if kind == "mysql" else '"%s"'
    return f"ALTER TABLE {q % table} ADD COLUMN {q % column} {spec.format(**_TYPES[kind])}"


def add_index(db: peewee.Database, table: str, name: str, columns: tuple[str, ...]) -> None:
    """Add an index to an existing table unless it exists."""
    kind = dialect(db)
    q = "`%s`" if kind == "mysql" else '"%s"'
    col_list = ", ".join(q % c for c in columns)
    if kind != "mysql":
        run_sql(db, f"CREATE INDEX IF NOT EXISTS {q % name} ON {q % table} ({col_list})")
    elif name not in {i.name for i in db.get_indexes(table)}:
        run_sql(db, f"CREATE INDEX {q % name} ON {q % table} ({col_list})")
