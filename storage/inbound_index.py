"""The inbound queue's index of conversations with pending messages: finding the due ones costs
the same with 100 or 100,000 messages waiting (a long Jira outage leaves that many).

`inbound_conversation` holds a row per conversation with pending messages:

- `first_id`: at most the id of its oldest pending message (the longest waiting go first);
- `due_at`: at least the latest `next_attempt_at` of its pending messages (a conversation is due
  only when all of them are: a later message waits with an earlier one that backs off);
- `version`: counted up by every write.

Writers only widen the bounds, merging MIN/MAX of the rows they just wrote, in the transaction
that wrote them (`merge_*`). Merges commute, so concurrent deliveries need no lock order, and a
message leaving `pending` (done, parked, dead) writes nothing here. The reader (`due`) tightens
what it finds stale — a `first_id` whose message is gone, a conversation with nothing pending —
only if `version` is still the one it read, so a concurrent merge always wins over a repair
computed without it.

Why bounds suffice. `due_at <= now` means every pending message is due. Conversely a message
leaves `pending` only once due (the inbox delivers nothing before its time), so the bound a
finished message leaves behind has passed too. The order is the true one: the reader compares
the conversations' real oldest pending ids and uses the stored lower bounds only to know that
no conversation it has not read yet could come first. `reconcile` (at start, then every few
minutes) folds in rows written by code that does not maintain the index (an older wajira
during a rolling upgrade).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import peewee

from storage.db import guarded
from storage.engines import dialect, run_sql
from storage.transactions import in_transaction_retrying

TABLE, MESSAGES = "inbound_conversation", "inbound_message"
RECONCILE_SECONDS = 300.0
_ROUNDS = 3  # reads per `due` call when stale rows stand in the way (each repairs what it saw)
_CHUNK = 500

_sql_cache: dict[tuple[object, ...], str] = {}
_sql_lock = threading.Lock()


def _cached(key: tuple[object, ...], build: Callable[[], str]) -> str:
    # Built once per shape: peewee's query builder costs more than the statements themselves.
    sql = _sql_cache.get(key)
    if sql is None:
        sql = build()
        with _sql_lock:
            if len(_sql_cache) > 256:
                _sql_cache.clear()
            _sql_cache[key] = sql
    return sql


class _Names:
    """Quoted identifiers and the engine's spelling of the few things that differ."""

    def __init__(self, db: peewee.Database) -> None:
        self.kind = dialect(db)
        self.param = db.param
        quote = db.quote

        def q(name: str) -> str:
            return name.join(quote)

        self.q = q
        self.table, self.messages = q(TABLE), q(MESSAGES)
        self.key, self.first, self.due, self.version = (
            q("conversation_key"),
            q("first_id"),
            q("due_at"),
            q("version"),
        )

    def upsert(self, rows_sql: str) -> str:
        """INSERT `rows_sql` (a SELECT or VALUES of key, first_id, due_at, 0) into the index,
        widening the bounds of rows already there."""
        t, key, first, due, version = self.table, self.key, self.first, self.due, self.version
        insert = f"INSERT INTO {t} ({key}, {first}, {due}, {version}) {rows_sql}"
        if self.kind == "mysql":
            return (
                f"{insert} ON DUPLICATE KEY UPDATE {first} = LEAST({first}, VALUES({first})), "
                f"{due} = GREATEST({due}, VALUES({due})), {version} = {version} + 1"
            )
        lo, hi = ("MIN", "MAX") if self.kind == "sqlite" else ("LEAST", "GREATEST")
        return (
            f"{insert} ON CONFLICT ({key}) DO UPDATE SET "
            f"{first} = {lo}({t}.{first}, excluded.{first}), "
            f"{due} = {hi}({t}.{due}, excluded.{due}), {version} = {t}.{version} + 1"
        )

    def pending_groups(self, condition: str) -> str:
        """(key, MIN(id), MAX(next_attempt_at), 0) of the pending rows matching `condition`."""
        q = self.q
        return (
            f"SELECT {self.key}, MIN({q('id')}), MAX({q('next_attempt_at')}), 0 FROM {self.messages} "
            f"WHERE {q('state')} = 'pending' AND ({condition}) GROUP BY {self.key}"
        )


class ConversationIndex:
    """Keeps `inbound_conversation` and answers which conversations are due.

    Every `merge_*` joins the caller's transaction: call it right after writing the rows.
    """

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._reconciled_at = float("-inf")
        self._names_cache: _Names | None = None

    @property
    def _names(self) -> _Names:
        if self._names_cache is None:  # not in __init__: nothing connects before first use
            self._names_cache = _Names(self.db)
        return self._names_cache

    # -- writers: widen the bounds ---------------------------------------------------------

    def merge_wamids(self, wamids: Sequence[str]) -> None:
        """After inserting messages (the webhook): their conversations, their pending rows."""
        self._merge_in("wamid", wamids)

    def merge_conversations(self, keys: Sequence[str]) -> None:
        """After rows of these conversations became pending or moved later (unpark, retry)."""
        self._merge_in("conversation_key", keys)

    def merge_history(self, phone_number_ids: Sequence[str], created_after: float) -> None:
        """After holding the history rows of these business numbers a while longer."""
        names = self._names
        q = names.q
        for start in range(0, len(phone_number_ids), _CHUNK):
            chunk = list(phone_number_ids[start : start + _CHUNK])

            def build(n: int = len(chunk)) -> str:
                marks = ", ".join([names.param] * n)
                return names.upsert(
                    names.pending_groups(
                        f"{q('origin')} = 'history' AND {q('phone_number_id')} IN ({marks}) "
                        f"AND {q('created_at')} > {names.param}"
                    )
                )

            run_sql(
                self.db, _cached(("merge_history", names.kind, len(chunk)), build), [*chunk, created_after]
            )

    def _merge_in(self, column: str, values: Sequence[Any]) -> None:
        names = self._names
        for start in range(0, len(values), _CHUNK):
            chunk = list(values[start : start + _CHUNK])

            def build(n: int = len(chunk)) -> str:
                marks = ", ".join([names.param] * n)
                return names.upsert(names.pending_groups(f"{names.q(column)} IN ({marks})"))

            run_sql(self.db, _cached(("merge_in", names.kind, column, len(chunk)), build), chunk)

    def reconcile(self) -> int:
        """Fold every pending row in (idempotent). Read first, then write: on MySQL an
        INSERT … SELECT would lock every pending message while it runs.

        Returns:
            How many conversations have pending messages.
        """
        names = self._names
        select = _cached(("groups", names.kind), lambda: names.pending_groups("1 = 1"))
        with guarded(self.db):
            groups = [tuple(row) for row in run_sql(self.db, select).fetchall()]
        for start in range(0, len(groups), _CHUNK):
            chunk = groups[start : start + _CHUNK]

            def build(n: int = len(chunk)) -> str:
                one = f"({', '.join([names.param] * 4)})"
                return names.upsert(f"VALUES {', '.join([one] * n)}")

            sql = _cached(("reconcile", names.kind, len(chunk)), build)
            params = [value for key, first, due, _ in chunk for value in (key, int(first), float(due), 0)]
            with guarded(self.db):
                in_transaction_retrying(self.db, partial(run_sql, self.db, sql, params))
        return len(groups)

    # -- the reader ---------------------------------------------------------------------------

    def due(self, limit: int) -> list[str]:
        """Conversations whose pending messages are all due, longest waiting first.

        Raises:
            StorageUnavailable: the database did not answer.
        """
        now = self.clock()
        if now - self._reconciled_at >= RECONCILE_SECONDS:
            self.reconcile()
            self._reconciled_at = now
        window = 2 * limit + 8  # room for the conversations the last inbox pass finished
        for round_ in range(_ROUNDS):
            rows = self._candidates(now, window)
            # Stored first_ids are lower bounds: a conversation not read yet starts after
            # `bound`, so only heads up to it are certain to come before all of those.
            bound = rows[-1][1] if len(rows) == window else None
            ready = sorted(
                (head, key)
                for key, _, _, head in rows
                if head is not None and (bound is None or head <= bound)
            )
            stale = [(key, version, head) for key, first, version, head in rows if head != first]
            if stale:
                self._repair(stale)
            if not stale or len(ready) >= limit or bound is None or round_ == _ROUNDS - 1:
                return [key for _, key in ready[:limit]]
        raise AssertionError("unreachable")

    def _candidates(self, now: float, window: int) -> list[tuple[str, int, int, int | None]]:
        names = self._names

        def build() -> str:
            q = names.q
            head = (
                f"SELECT MIN(m.{q('id')}) FROM {names.messages} m "
                f"WHERE m.{names.key} = c.{names.key} AND m.{q('state')} = 'pending'"
            )
            return (
                f"SELECT c.{names.key}, c.{names.first}, c.{names.version}, ({head}) "
                f"FROM {names.table} c WHERE c.{names.due} <= {names.param} "
                f"ORDER BY c.{names.first} LIMIT {names.param}"
            )

        sql = _cached(("candidates", names.kind), build)
        with guarded(self.db):
            rows = run_sql(self.db, sql, (now, window)).fetchall()
        return [
            (key, int(first), int(version), None if head is None else int(head))
            for key, first, version, head in rows
        ]

    def _repair(self, stale: list[tuple[str, int, int | None]]) -> None:
        """Drop conversations with nothing pending, move the others' first_id to their real
        oldest pending message; each only if no writer touched it since it was read."""
        names = self._names
        gone = [(key, version) for key, version, head in stale if head is None]
        moved = [(key, version, head) for key, version, head in stale if head is not None]
        p = names.param
        match = f"({names.key} = {p} AND {names.version} = {p})"

        def work() -> None:
            if gone:
                sql = _cached(
                    ("drop", names.kind, len(gone)),
                    lambda: f"DELETE FROM {names.table} WHERE {' OR '.join([match] * len(gone))}",
                )
                run_sql(self.db, sql, [value for pair in gone for value in pair])
            if moved:

                def build() -> str:
                    cases = " ".join([f"WHEN {p} THEN {p}"] * len(moved))
                    return (
                        f"UPDATE {names.table} SET {names.first} = CASE {names.key} {cases} END, "
                        f"{names.version} = {names.version} + 1 WHERE {' OR '.join([match] * len(moved))}"
                    )

                sql = _cached(("move", names.kind, len(moved)), build)
                params: list[Any] = [value for key, _, head in moved for value in (key, head)]
                params += [value for key, version, _ in moved for value in (key, version)]
                run_sql(self.db, sql, params)

        with guarded(self.db):
            in_transaction_retrying(self.db, work)
