"""Ingest: the webhook's deliveries stored durably, in one transaction each, before Meta hears 200.

`store_batch` holds a whole delivery (messages, statuses, other changes, contact names), and a
redelivery (Meta retries for days) adds nothing. Concurrent deliveries share a transaction and
its fsync (storage/group_commit.py). The inbox job then works the rows off
(`storage.inbound.InboundQueue`).

Coexistence rows share the queue: echoes (the team wrote in the WhatsApp Business App) and
shared chat history. Neither opens a ticket: without one they are `parked` until the customer
writes, which puts them back ahead of that message. History comes in chunks Meta may deliver
out of order, so history rows are held until the import of their business number has been
quiet for `history_settle_seconds` (never longer than `history_max_hold_seconds` after a row
arrived), and then go out in Meta's timestamp order, whichever chunk brought them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from bot.rules.events import InboundMessage, OtherEvent, ParsedBatch, StatusEvent
from storage.contacts import apply_syncs
from storage.db import StorageUnavailable, guarded
from storage.engines import dialect, round_trip_seconds
from storage.group_commit import GroupCommit
from storage.inbound_index import ConversationIndex
from storage.models import InboundMessageRow, StatusRow, WebhookEventRow
from storage.prepared import insert_ignoring, update_where_in
from storage.queue import PENDING
from storage.text import utf8_safe
from storage.transactions import in_transaction_retrying

PARKED = "parked"
ORIGIN_CUSTOMER, ORIGIN_ECHO, ORIGIN_HISTORY = "customer", "echo", "history"
# Meta sends a history import as a burst of chunks in no fixed order; a short quiet spell
# means the burst is over. The cap keeps a long import from holding a conversation for ever.
HISTORY_SETTLE_SECONDS = 10.0
HISTORY_MAX_HOLD_SECONDS = 600.0


@dataclass(frozen=True)
class StoreResult:
    messages_new: int
    messages_duplicate: int
    statuses_new: int
    others_new: int
    contacts_applied: int = 0


@dataclass(frozen=True)
class _Stored:
    """One delivery's unit of a group commit: its counts, and the new rows' wamids to index."""

    counts: tuple[int, int, int, int]
    wamids: list[str]


class Ingest:
    """The webhook's writer; safe from many threads and processes.

    Args:
        index: the conversation index the inbox job reads (storage/inbound_index.py); every
            write here that adds or delays a pending row updates it.
    """

    def __init__(
        self,
        db: peewee.Database,
        index: ConversationIndex,
        clock: Callable[[], float] = time.time,
        *,
        history_settle_seconds: float = HISTORY_SETTLE_SECONDS,
        history_max_hold_seconds: float = HISTORY_MAX_HOLD_SECONDS,
    ):
        self.db = db
        self.index = index
        self.clock = clock
        self.history_settle_seconds = history_settle_seconds
        self.history_max_hold_seconds = history_max_hold_seconds
        # Concurrent deliveries share a transaction (and its fsync): see storage/group_commit.py.
        # This also queues this process's SQLite writers on a lock instead of the database's
        # busy handler, which polls with growing sleeps while the lock is already free.
        # A caller waits for someone else's commit no longer than one round trip may take.
        self._group = GroupCommit(
            self._commit_group,
            passthrough=(StorageUnavailable,),
            wait_seconds=round_trip_seconds(db),
            timed_out=StorageUnavailable,
        )

    def store_batch(self, batch: ParsedBatch) -> StoreResult:
        """Store a parsed delivery in one transaction, ignoring what is already stored.

        Also applies contact name changes, puts parked echoes and history of conversations
        the customer writes to back in line, and extends the hold on history being imported.

        Returns:
            How many messages were new or duplicates, how many statuses and others were new,
            how many contact changes took effect.

        Raises:
            StorageUnavailable: the database did not answer; nothing was stored.
        """
        if batch.empty:
            return StoreResult(0, 0, 0, 0)
        work, result_of = self._prepare(batch)
        return result_of(self._group.submit(work))

    def store_batch_async(
        self, batch: ParsedBatch, done: Callable[[StoreResult | None, BaseException | None], None]
    ) -> None:
        """As `store_batch`, without holding the caller's thread: `done` hears (result, None)
        or (None, error) from the thread that committed it (quick, and never raising)."""
        if batch.empty:
            done(StoreResult(0, 0, 0, 0), None)
            return
        work, result_of = self._prepare(batch)

        def finished(stored: _Stored | None, error: BaseException | None) -> None:
            if error is not None or stored is None:
                done(None, error or RuntimeError("the group commit gave no result"))
            else:
                done(result_of(stored), None)

        self._group.submit_async(work, finished)

    def _prepare(self, batch: ParsedBatch) -> tuple[Callable[[], _Stored], Callable[[_Stored], StoreResult]]:
        # The rows are built in the caller's thread; only the statements run in the transaction.
        now = self.clock()
        messages = _unique(batch.messages, lambda m: m.wamid)
        # Rows go in by Meta's timestamp (stable, so payload order breaks ties): ids then
        # follow the conversation's order, and concurrent overlapping deliveries take their
        # key locks in mostly the same order, which keeps deadlocks rare (and retried).
        # The same goes for statuses (sent, delivered, read).
        messages.sort(key=lambda m: m.timestamp)
        statuses = sorted(_unique(batch.statuses, lambda s: (s.wamid, s.status)), key=lambda s: s.timestamp)
        others = sorted(_unique(batch.others, lambda o: o.dedupe_key), key=lambda o: o.dedupe_key)
        message_rows = [self._message_row(m, now) for m in messages]
        status_rows = [_status_row(s, now) for s in statuses]
        other_rows = [_other_row(o, now) for o in others]
        writing = sorted({m.conversation_key for m in messages if m.origin == ORIGIN_CUSTOMER})
        # Matched by peewee against stored values, so made safe the way storage/prepared.py
        # made the stored rows safe.
        importing = sorted({utf8_safe(m.phone_number_id) for m in messages if m.origin == ORIGIN_HISTORY})
        wamids = [utf8_safe(row["wamid"]) for row in message_rows]

        def work() -> _Stored:
            counts = (
                self._insert_ignoring(InboundMessageRow, message_rows),
                self._insert_ignoring(StatusRow, status_rows),
                self._insert_ignoring(WebhookEventRow, other_rows),
                apply_syncs(self.db, batch.contacts, now),
            )
            self._unpark(writing, now)
            self._hold_history(importing, now)
            return _Stored(counts, wamids if counts[0] else [])

        def result_of(stored: _Stored) -> StoreResult:
            new_messages, new_statuses, new_others, contacts = stored.counts
            return StoreResult(
                messages_new=new_messages,
                messages_duplicate=len(batch.messages) - new_messages,
                statuses_new=new_statuses,
                others_new=new_others,
                contacts_applied=contacts,
            )

        return work, result_of

    def _commit_group(self, work: Callable[[], list[_Stored | None]]) -> list[_Stored | None]:
        def and_index() -> list[_Stored | None]:
            stored = work()
            # One index merge for the whole group, at the end: one more statement per
            # transaction, not per delivery, and its row locks are held the shortest.
            wamids = [w for one in stored if one is not None for w in one.wamids]
            if wamids:
                self.index.merge_wamids(wamids)
            return stored

        with guarded(self.db):
            return in_transaction_retrying(self.db, and_index)

    def _unpark(self, conversation_keys: list[str], now: float) -> None:
        # The customer wrote: the echoes and history parked for want of a ticket go first (they
        # are older), and the ticket the customer's message opens takes them.
        for start in range(0, len(conversation_keys), 500):
            chunk = conversation_keys[start : start + 500]
            if update_where_in(
                self.db,
                InboundMessageRow,
                {"state": PENDING, "next_attempt_at": now, "updated_at": now},
                {"state": PARKED},
                "conversation_key",
                chunk,
            ):
                self.index.merge_conversations(chunk)

    def _hold_history(self, phone_number_ids: list[str], now: float) -> None:
        # Another chunk arrived: hold every history row of the import a while longer, so a chunk
        # delivered late still sorts in before the conversation goes out. Rows held as long as
        # the cap allows are let go; a delay already further out (a retry) is kept.
        if not phone_number_ids:
            return
        M = InboundMessageRow
        release = now + self.history_settle_seconds
        later = peewee.Case(None, ((M.next_attempt_at < release, release),), M.next_attempt_at)
        held_since = now - self.history_max_hold_seconds
        (
            M.update(next_attempt_at=later)
            .where(
                (M.state == PENDING)
                & (M.origin == ORIGIN_HISTORY)
                & M.phone_number_id.in_(phone_number_ids)
                & (M.created_at > held_since)
            )
            .execute(self.db)
        )
        self.index.merge_history(phone_number_ids, held_since)

    def _insert_ignoring(self, model: type[peewee.Model], rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        inserted = 0
        size = _chunk_size(self.db, len(rows[0]))
        for start in range(0, len(rows), size):
            inserted += insert_ignoring(self.db, model, rows[start : start + size])
        return inserted

    def _message_row(self, m: InboundMessage, now: float) -> dict[str, Any]:
        history = m.origin == ORIGIN_HISTORY
        return {
            "wamid": m.wamid,
            "conversation_key": m.conversation_key,
            "wa_id": m.wa_id,
            "user_id": m.user_id,
            "phone_number_id": m.phone_number_id,
            "display_phone_number": m.display_phone_number,
            "profile_name": m.profile_name,
            "meta_timestamp": int(m.timestamp),
            "kind": m.kind,
            "raw_json": _json(m.raw),
            "state": PENDING,
            "attempts": 0,
            "started": 0,
            "next_attempt_at": now + self.history_settle_seconds if history else now,
            "last_error": None,
            "issue_key": None,
            "comment_id": None,
            "created_at": now,
            "updated_at": now,
            "done_at": None,
            "origin": m.origin,
            "from_business": 1 if m.from_business else 0,
        }


def _json(value: Any) -> str:
    # Real characters, not \u escapes: the column is utf8mb4 and the text stays readable.
    # Key order is Meta's (dicts keep it), so the stored text reads like what Meta sent.
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate ("\ud83d", half an emoji) is valid JSON but not UTF-8: keep it escaped.
        text = json.dumps(value, separators=(",", ":"))
    return text


def _chunk_size(db: peewee.Database, columns: int) -> int:
    # SQLite before 3.32 allowed 999 bound parameters per statement; servers allow 65535.
    old_sqlite = dialect(db) == "sqlite" and sqlite3.sqlite_version_info < (3, 32, 0)
    limit = 999 if old_sqlite else 30000
    return max(1, min(500, limit // columns))


def _unique(items: Sequence[Any], key: Callable[[Any], Any]) -> list[Any]:
    seen: dict[Any, Any] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())


def _status_row(s: StatusEvent, now: float) -> dict[str, Any]:
    return {
        "wamid": s.wamid,
        "status": s.status,
        "meta_timestamp": int(s.timestamp),
        "recipient_id": s.recipient_id,
        "phone_number_id": s.phone_number_id,
        "errors_json": _json(list(s.errors)),
        "raw_json": _json(s.raw),
        "created_at": now,
    }


def _other_row(o: OtherEvent, now: float) -> dict[str, Any]:
    return {
        "field": o.field,
        "dedupe_key": o.dedupe_key,
        "phone_number_id": o.phone_number_id,
        "raw_json": _json(o.raw),
        "created_at": now,
        "state": "stored",
    }
