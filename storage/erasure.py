"""Everything stored about one person: found for an access request, deleted for an erasure.

`PERSONAL_TABLES` says, for every table, how its rows about a person are found; `NOT_PERSONAL`
names the tables that hold nothing about anyone. A table in neither fails the tests, so a new
table cannot quietly keep what an erasure should have removed.

Rows are found by the person's conversation keys (bare or routed, `+52…#sales`), their number
as Meta spells it, their business-scoped user id, the messages they sent or were sent (by
wamid), and their tickets (by issue key). A ticket another conversation also uses is theirs
too, so rows found only by its key stay; the person's own rows on it go.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import peewee

from bot.rules.person import Person
from bot.rules.routing import SERVICE_SEPARATOR, phone_of
from storage.db import guarded
from storage.engines import dialect, run_sql
from storage.leases import Leases
from storage.transactions import in_transaction_retrying

LEASE_PREFIX = "conversation:"
"""The inbox's per-conversation lease (`jobs.inbox`): holding it keeps the inbox off the rows."""

# table -> how its rows about the person are found, "<matcher>:<column>", any one suffices.
# Order matters for deletion: media_task and message_status find rows through inbound and
# outbound messages, so they go before those.
PERSONAL_TABLES: dict[str, tuple[str, ...]] = {
    "media_task": ("wamid_in:wamid", "ticket:issue_key"),
    "message_status": ("number:recipient_id", "wamid_out:wamid", "json:raw_json"),
    "whatsapp_ticket_mapping": ("conversation:phone_number", "user:user_id"),
    "ticket_history": ("conversation:phone_number",),
    "ticket_creation": ("conversation:conversation_key",),
    "inbound_message": ("conversation:conversation_key", "number:wa_id", "user:user_id"),
    "inbound_conversation": ("conversation:conversation_key",),
    "outbound_message": ("conversation:conversation_key", "number:to_wa_id", "user:to_user_id"),
    "contact_name": ("conversation:conversation_key",),
    "ai_turn": ("conversation:conversation_key", "ticket:issue_key"),
    "csat_rating": ("conversation:conversation_key", "ticket:issue_key"),
    "handled_comment": ("ticket:issue_key",),
    "ai_switch": ("ticket:issue_key",),
    "status_watch": ("ticket:issue_key",),
    "issue_state": ("ticket:issue_key",),
    # A webhook change kept but not acted on (echoes, history, unknown fields) is Meta's JSON:
    # only its text names the person. A history chunk naming several people goes whole.
    "webhook_event": ("json:raw_json",),
    "lease": ("lease:name",),
}
NOT_PERSONAL: dict[str, str] = {
    "poll_state": "the poll job's watermark and last run",
    "schema_version": "which schema steps ran",
}

# Where a person's tickets are named, and the rows that make a ticket shared with others.
_TICKET_SOURCES = {
    "whatsapp_ticket_mapping": "issue_key",
    "ticket_history": "issue_key",
    "inbound_message": "issue_key",
    "outbound_message": "issue_key",
    "ai_turn": "issue_key",
    "csat_rating": "issue_key",
}
_ESCAPE = "!"
_CLOSURE_ROUNDS = 4


class ConversationBusy(RuntimeError):
    """A worker kept one of the person's conversations for longer than the erasure waits."""


@dataclass(frozen=True)
class PersonalData:
    person: Person
    tickets: tuple[str, ...]
    tables: dict[str, list[dict[str, Any]]]

    def as_json(self) -> dict[str, Any]:
        return {"person": self.person.as_json(), "tickets": list(self.tickets), "tables": self.tables}


@dataclass(frozen=True)
class Erased:
    person: Person
    tickets: tuple[str, ...]
    deleted: dict[str, int]
    """Rows deleted per table (tables with none left out)."""
    checkpointed: bool | None
    """SQLite: whether the WAL was emptied into the overwritten file; None on other engines."""


class _Sql:
    """WHERE fragments for one person on one engine."""

    def __init__(self, db: peewee.Database, person: Person, tickets: tuple[str, ...] = ()):
        self.p = db.param
        self.person, self.tickets = person, tickets

    def _in(self, column: str, values: tuple[str, ...]) -> tuple[str, list[object]]:
        if not values:
            return "1 = 0", []
        marks = ", ".join([self.p] * len(values))
        # IS NOT NULL first: NOT (NULL IN …) would be NULL, and the shared-ticket query negates.
        return f"({column} IS NOT NULL AND {column} IN ({marks}))", list(values)

    def _keys(self, column: str, prefix: str = "") -> tuple[str, list[object]]:
        keys = tuple(prefix + k for k in self.person.conversation_keys)
        exact, params = self._in(column, keys)
        parts = [exact]
        for key in keys:  # routed keys: `+52…#sales`
            parts.append(f"{column} LIKE {self.p} ESCAPE '{_ESCAPE}'")
            params.append(_like_escaped(key + SERVICE_SEPARATOR) + "%")
        return "(" + " OR ".join(parts) + ")", params

    def _json(self, column: str) -> tuple[str, list[object]]:
        # Quoted, so the number inside a longer one or in someone's text does not match.
        values = [f'"{v}"' for v in self.person.wa_ids + self.person.user_ids]
        if not values:
            return "1 = 0", []
        parts = [f"{column} LIKE {self.p} ESCAPE '{_ESCAPE}'"] * len(values)
        return "(" + " OR ".join(parts) + ")", ["%" + _like_escaped(v) + "%" for v in values]

    def _messages(self, table: str, column: str) -> tuple[str, list[object]]:
        where, params = self.where(table)
        return f"({column} IN (SELECT wamid FROM {table} WHERE wamid IS NOT NULL AND {where}))", params

    def matcher(self, spec: str) -> tuple[str, list[object]]:
        kind, column = spec.split(":", 1)
        if kind == "conversation":
            return self._keys(column)
        if kind == "lease":
            return self._keys(column, LEASE_PREFIX)
        if kind == "number":
            return self._in(column, self.person.wa_ids)
        if kind == "user":
            return self._in(column, self.person.user_ids)
        if kind == "ticket":
            return self._in(column, self.tickets)
        if kind == "json":
            return self._json(column)
        if kind == "wamid_in":
            return self._messages("inbound_message", column)
        if kind == "wamid_out":
            return self._messages("outbound_message", column)
        raise ValueError(f"unknown matcher {spec!r}")

    def where(self, table: str, *, without_tickets: bool = False) -> tuple[str, list[object]]:
        parts, params = [], []
        for spec in PERSONAL_TABLES[table]:
            if without_tickets and spec.startswith("ticket:"):
                continue
            sql, values = self.matcher(spec)
            parts.append(sql)
            params.extend(values)
        return "(" + " OR ".join(parts or ["1 = 0"]) + ")", params


def _like_escaped(value: str) -> str:
    return "".join(_ESCAPE + ch if ch in (_ESCAPE, "%", "_") else ch for ch in value)


class PersonalRecords:
    """Access and erasure requests over every table; safe to run while the daemon runs.

    Args:
        db: the database.
        clock: epoch seconds, for the conversation leases.
        sleep: injected so tests need not wait.
    """

    def __init__(
        self,
        db: peewee.Database,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.db = db
        self.leases = Leases(db, clock=clock)
        self.clock, self.sleep = clock, sleep

    def export(self, person: Person) -> PersonalData:
        """Every row about the person, per table, as JSON-safe dicts in a stable order."""
        with guarded(self.db):
            person = self._linked(person)
            tickets, own = self._tickets(person)
            sql = _Sql(self.db, person, own)
            tables = {}
            for table in PERSONAL_TABLES:
                where, params = sql.where(table)
                cursor = run_sql(self.db, f"SELECT * FROM {table} WHERE {where}", params)
                names = [d[0] for d in getattr(cursor, "description", None) or ()]
                rows = [{n: _json_safe(v) for n, v in zip(names, r, strict=True)} for r in cursor.fetchall()]
                if rows:
                    tables[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
        return PersonalData(person, tickets, tables)

    def erase(self, person: Person, *, owner: str, wait_seconds: float = 60.0) -> Erased:
        """Delete every row about the person in one transaction.

        The inbox's lease on each of their conversations is taken first (waiting up to
        `wait_seconds` for a worker to finish), so no worker that read their messages before
        can open a ticket or map it afterwards; the leases go with the rest.

        Raises:
            ConversationBusy: a worker kept a conversation; nothing was deleted.
            StorageUnavailable: the database did not answer; nothing was deleted.
        """
        with guarded(self.db):
            linked = self._linked(person)
            held = self._hold(self._exact_keys(linked), owner, wait_seconds)
        try:
            with self._overwriting_freed_pages():
                with guarded(self.db):
                    found = in_transaction_retrying(self.db, lambda: self._delete(person, owner))
                    # A job that read the mapping just before (the poll queueing an agent's
                    # reply) may have written one more row: a second pass finds and deletes it.
                    again = in_transaction_retrying(self.db, lambda: self._delete(found[0], owner))
        finally:
            with guarded(self.db):
                for key in held:
                    self.leases.release(LEASE_PREFIX + key, owner)
        deleted = {t: found[2].get(t, 0) + again[2].get(t, 0) for t in PERSONAL_TABLES}
        tickets = tuple(sorted(set(found[1]) | set(again[1])))
        return Erased(found[0], tickets, {t: n for t, n in deleted.items() if n}, self._checkpoint())

    def _delete(self, person: Person, owner: str) -> tuple[Person, tuple[str, ...], dict[str, int]]:
        person = self._linked(person)
        tickets, own = self._tickets(person)
        sql = _Sql(self.db, person, own)
        deleted = {}
        for table in PERSONAL_TABLES:
            where, params = sql.where(table)
            if table == "lease":  # ours: released (deleted) once the transaction is over
                where, params = f"{where} AND owner <> {self.db.param}", [*params, owner]
            deleted[table] = int(run_sql(self.db, f"DELETE FROM {table} WHERE {where}", params).rowcount)
        return person, tickets, deleted

    def _linked(self, person: Person) -> Person:
        """The person with the identities their rows link them to (a phone's BSUID and back)."""
        for _ in range(_CLOSURE_ROUNDS):
            sql = _Sql(self.db, person)
            numbers: set[str] = set()
            users: set[str] = set()
            for table, columns in (
                ("inbound_message", ("conversation_key", "wa_id", "user_id")),
                ("outbound_message", ("conversation_key", "to_wa_id", "to_user_id")),
                ("whatsapp_ticket_mapping", ("phone_number", "NULL", "user_id")),
            ):
                where, params = sql.where(table, without_tickets=True)
                select = f"SELECT DISTINCT {', '.join(columns)} FROM {table} WHERE {where}"
                for key, number, user in run_sql(self.db, select, params).fetchall():
                    bare = phone_of(key or "")
                    if bare.startswith("user:"):
                        users.add(bare.removeprefix("user:"))
                    elif bare:
                        numbers.add(bare)
                    if number:
                        numbers.add(number)
                    if user:
                        users.add(user)
            wider = person.widened(wa_ids=tuple(sorted(numbers)), user_ids=tuple(sorted(users)))
            if wider == person:
                return person
            person = wider
        return person

    def _tickets(self, person: Person) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(every ticket of the person, those no other conversation uses)."""
        sql = _Sql(self.db, person)
        tickets: set[str] = set()
        for table, column in _TICKET_SOURCES.items():
            where, params = sql.where(table, without_tickets=True)
            select = f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL AND {where}"
            tickets.update(k for (k,) in run_sql(self.db, select, params).fetchall())
        shared: set[str] = set()
        ordered = tuple(sorted(tickets))
        for table, column in _TICKET_SOURCES.items():
            where, params = sql.where(table, without_tickets=True)
            among, keys = _Sql(self.db, person)._in(column, ordered)
            select = f"SELECT DISTINCT {column} FROM {table} WHERE {among} AND NOT {where}"
            shared.update(k for (k,) in run_sql(self.db, select, keys + params).fetchall())
        return ordered, tuple(k for k in ordered if k not in shared)

    def _exact_keys(self, person: Person) -> list[str]:
        """The person's conversation keys as stored, routed ones included."""
        keys = set(person.conversation_keys)
        sql = _Sql(self.db, person)
        for table in ("inbound_message", "inbound_conversation"):
            where, params = sql.matcher("conversation:conversation_key")
            select = f"SELECT DISTINCT conversation_key FROM {table} WHERE {where}"
            keys.update(k for (k,) in run_sql(self.db, select, params).fetchall())
        return sorted(keys)

    def _hold(self, keys: list[str], owner: str, wait_seconds: float) -> list[str]:
        held: list[str] = []
        deadline = self.clock() + wait_seconds
        for key in keys:
            while not self.leases.acquire(LEASE_PREFIX + key, owner, wait_seconds + 60.0):
                if self.clock() >= deadline:
                    for got in held:
                        self.leases.release(LEASE_PREFIX + got, owner)
                    raise ConversationBusy(f"a worker is busy with a conversation of this person ({key})")
                self.sleep(0.2)
            held.append(key)
        return held

    @contextmanager
    def _overwriting_freed_pages(self) -> Iterator[None]:
        if dialect(self.db) != "sqlite":
            yield
            return
        with guarded(self.db):
            (before,) = run_sql(self.db, "PRAGMA secure_delete").fetchone()
            run_sql(self.db, "PRAGMA secure_delete = ON")
        try:
            yield
        finally:
            with guarded(self.db):
                run_sql(self.db, f"PRAGMA secure_delete = {int(before)}")

    def _checkpoint(self) -> bool | None:
        """SQLite: copy the WAL into the file and truncate it, so no old page lingers there."""
        if dialect(self.db) != "sqlite":
            return None
        with guarded(self.db):
            busy, _, _ = run_sql(self.db, "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(busy) == 0


def _json_safe(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return value
