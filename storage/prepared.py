"""SQL text built once and reused, for the statements every webhook runs.

peewee builds each statement anew from its query objects, which costs more CPU than SQLite
spends running it (about 0.6 ms for a one-row insert of 21 columns). The webhook runs the
same few statements for every delivery, so their text is built once per shape (table,
columns, row count) and only the values change. Values still pass through each field's
`db_value`, so what is stored is what peewee would have stored, after `utf8_safe`: a lone
surrogate in what Meta sent is stored, and matched, as U+FFFD instead of failing the insert.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import peewee

from storage.engines import dialect, run_sql
from storage.text import utf8_safe

_cache: dict[tuple[object, ...], str] = {}
_cache_lock = threading.Lock()
_MAX_SHAPES = 512  # shapes are few (row counts up to a chunk); this only bounds the odd case


def _remember(key: tuple[object, ...], build: Callable[[], str]) -> str:
    sql = _cache.get(key)
    if sql is None:
        sql = build()
        with _cache_lock:
            if len(_cache) >= _MAX_SHAPES:
                _cache.clear()
            _cache[key] = sql
    return sql


def _quoted(db: peewee.Database, name: str) -> str:
    return name.join(db.quote)  # db.quote holds the engine's opening and closing quote


def insert_ignoring(db: peewee.Database, model: type[peewee.Model], rows: Sequence[dict[str, Any]]) -> int:
    """INSERT `rows` (dicts with the same keys), skipping those a unique key already holds.

    The same as `insert_many(rows).on_conflict_ignore()`: `INSERT OR IGNORE` on SQLite,
    `ON CONFLICT DO NOTHING` on PostgreSQL, `INSERT IGNORE` on MySQL/MariaDB.

    Returns:
        How many rows were inserted.
    """
    if not rows:
        return 0
    names = tuple(rows[0])
    kind = dialect(db)
    fields = model._meta.fields
    key = ("insert", kind, model, names, len(rows))

    def build() -> str:
        columns = ", ".join(_quoted(db, fields[n].column_name) for n in names)
        one = "(" + ", ".join([db.param] * len(names)) + ")"
        values = ", ".join([one] * len(rows))
        table = _quoted(db, model._meta.table_name)
        if kind == "sqlite":
            return f"INSERT OR IGNORE INTO {table} ({columns}) VALUES {values}"
        if kind == "mysql":
            return f"INSERT IGNORE INTO {table} ({columns}) VALUES {values}"
        return f"INSERT INTO {table} ({columns}) VALUES {values} ON CONFLICT DO NOTHING"

    sql = _remember(key, build)
    converters = [fields[n].db_value for n in names]
    params = [
        convert(utf8_safe(row[n])) for row in rows for n, convert in zip(names, converters, strict=True)
    ]
    return run_sql(db, sql, params).rowcount


def update_where_in(
    db: peewee.Database,
    model: type[peewee.Model],
    values: dict[str, Any],
    equal: dict[str, Any],
    in_field: str,
    members: Sequence[Any],
) -> int:
    """UPDATE model SET values WHERE each `equal` field matches AND `in_field` IN members.

    Returns:
        How many rows matched.
    """
    if not members:
        return 0
    fields = model._meta.fields
    sets, wheres = tuple(values), tuple(equal)
    key = ("update", dialect(db), model, sets, wheres, in_field, len(members))

    def build() -> str:
        def q(name: str) -> str:
            return _quoted(db, name)

        assignments = ", ".join(f"{q(fields[n].column_name)} = {db.param}" for n in sets)
        conditions = [f"{q(fields[n].column_name)} = {db.param}" for n in wheres]
        conditions.append(f"{q(fields[in_field].column_name)} IN ({', '.join([db.param] * len(members))})")
        return f"UPDATE {q(model._meta.table_name)} SET {assignments} WHERE {' AND '.join(conditions)}"

    sql = _remember(key, build)
    params = [fields[n].db_value(utf8_safe(values[n])) for n in sets]
    params += [fields[n].db_value(utf8_safe(equal[n])) for n in wheres]
    convert = fields[in_field].db_value
    params += [convert(utf8_safe(m)) for m in members]
    return run_sql(db, sql, params).rowcount
