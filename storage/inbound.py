"""The inbound queue: webhook deliveries stored durably, then worked off conversation by conversation.

The webhook calls `store_batch` and answers Meta 200 only after it returns, so one
transaction holds the whole delivery and a redelivery (Meta retries for days) adds nothing.
The inbox job asks for `due_conversations`, takes a conversation (a lease per conversation
keeps it to one worker), and walks `pending_for` in order, marking each row.

Coexistence rows share the queue: echoes (the team wrote in the WhatsApp Business App) and
shared chat history. Neither opens a ticket: without one they are `parked` until the customer
writes, which puts them back ahead of that message. History comes in chunks Meta may deliver
out of order, so history rows are held until the import of their business number has been
quiet for `history_settle_seconds` (never longer than `history_max_hold_seconds` after a row
arrived), and then go out in Meta's timestamp order, whichever chunk brought them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from bot.rules.events import InboundMessage, OtherEvent, ParsedBatch, StatusEvent
from storage.contacts import ContactNames, apply_syncs
from storage.db import (
    StorageUnavailable,
    dialect,
    guarded,
    in_transaction_retrying,
    round_trip_seconds,
    utf8_safe,
)
from storage.group_commit import GroupCommit
from storage.inbound_index import ConversationIndex
from storage.prepared import insert_ignoring, update_where_in
from storage.models import InboundMessageRow, StatusRow, WebhookEventRow

PENDING, DONE, DEAD, PARKED = "pending", "done", "dead", "parked"
ORIGIN_CUSTOMER, ORIGIN_ECHO, ORIGIN_HISTORY = "customer", "echo", "history"
_MAX_ERROR_CHARS = 2000  # last_error is for operators; a whole stack trace is not needed
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


@dataclass(frozen=True)
class QueuedMessage:
    id: int
    wamid: str
    conversation_key: str
    wa_id: str | None
    user_id: str | None
    phone_number_id: str
    display_phone_number: str | None
    profile_name: str | None
    timestamp: int
    kind: str
    raw: dict[str, Any]
    attempts: int
    started: int
    """How often processing of this row began; > 0 on a fresh row means a previous run may
    have posted the comment before crashing: look in Jira before posting."""
    next_attempt_at: float
    last_error: str | None
    origin: str = ORIGIN_CUSTOMER
    """`customer`, `echo` or `history` (see `InboundMessage.origin`)."""
    from_business: bool = False
    known_name: str | None = None
    """A name for the customer when a message carries no profile name (history, echoes): the
    one the business saved in its app (`smb_app_state_sync`), else their latest profile name."""


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
    limit = 999 if dialect(db) == "sqlite" and peewee.__sqlite_version__ < (3, 32, 0) else 30000
    return max(1, min(500, limit // columns))


class InboundQueue:
    """Durable inbound rows; every method is safe from many threads and processes."""

    def __init__(
        self,
        db: peewee.Database,
        clock: Callable[[], float] = time.time,
        *,
        history_settle_seconds: float = HISTORY_SETTLE_SECONDS,
        history_max_hold_seconds: float = HISTORY_MAX_HOLD_SECONDS,
    ):
        self.db = db
        self.clock = clock
        self.history_settle_seconds = history_settle_seconds
        self.history_max_hold_seconds = history_max_hold_seconds
        self.contacts = ContactNames(db, clock)
        # Which conversations have pending rows, kept by every write below that adds or delays one.
        self.index = ConversationIndex(db, clock)
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

    # -- the webhook's side -------------------------------------------------------------

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

        new_messages, new_statuses, new_others, contacts = self._group.submit(work).counts
        return StoreResult(
            messages_new=new_messages,
            messages_duplicate=len(batch.messages) - new_messages,
            statuses_new=new_statuses,
            others_new=new_others,
            contacts_applied=contacts,
        )

    def _commit_group(self, work: Callable[[], list]) -> list:
        def and_index() -> list:
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

    # -- the inbox job's side -----------------------------------------------------------

    def due_conversations(self, limit: int = 100) -> list[str]:
        """Conversations whose pending rows are all due, the longest waiting first (by the
        oldest pending row's id).

        A conversation counts only when its *latest* pending next_attempt_at has passed:
        a message that arrives while an earlier one backs off must wait with it, or it
        would overtake it. Read from the conversation index (storage/inbound_index.py), so
        the cost does not grow with the backlog.
        """
        return self.index.due(limit)

    def pending_for(self, conversation_key: str) -> list[QueuedMessage]:
        """Every pending row of a conversation, in Meta's order (timestamp, then arrival)."""
        M = InboundMessageRow
        query = (
            M.select()
            .where((M.conversation_key == conversation_key) & (M.state == PENDING))
            .order_by(M.meta_timestamp, M.id)
            .dicts()
        )
        with guarded(self.db):
            rows = list(query.execute(self.db))
        if all(row["profile_name"] for row in rows):
            return [_queued(row) for row in rows]
        saved = self.contacts.names_for(conversation_key)
        any_saved = next(iter(sorted(saved.items())), (None, None))[1]
        latest = None if any_saved else self._latest_profile_name(conversation_key)
        return [_queued(row, saved.get(row["phone_number_id"]) or any_saved or latest) for row in rows]

    def _latest_profile_name(self, conversation_key: str) -> str | None:
        M = InboundMessageRow
        query = (
            M.select(M.profile_name)
            .where((M.conversation_key == conversation_key) & M.profile_name.is_null(False))
            .order_by(M.meta_timestamp.desc(), M.id.desc())
            .limit(1)
            .tuples()
        )
        with guarded(self.db):
            found = query.first(self.db)
        return found[0] if found else None

    def mark_started(self, row_id: int) -> None:
        """Count a processing start; committed on return, before any Jira call."""
        M = InboundMessageRow
        self._update(row_id, started=M.started + 1, updated_at=self.clock())

    def mark_done(self, row_id: int, *, issue_key: str, comment_id: str | None) -> None:
        now = self.clock()
        self._update(
            row_id, state=DONE, issue_key=issue_key, comment_id=comment_id, done_at=now, updated_at=now
        )

    def mark_retry(self, row_id: int, *, error: str, delay_seconds: float, count_attempt: bool) -> int:
        """Record a failure and hold the whole conversation back for `delay_seconds`.

        Returns:
            The row's attempts after this call.

        Raises:
            KeyError: no row has this id.
        """
        M = InboundMessageRow
        now = self.clock()
        not_before = now + max(0.0, delay_seconds)

        def work() -> int:
            updated = (
                M.update(
                    attempts=M.attempts + (1 if count_attempt else 0), last_error=_clip(error), updated_at=now
                )
                .where(M.id == row_id)
                .execute(self.db)
            )
            if not updated:
                raise KeyError(row_id)
            key, attempts = (
                M.select(M.conversation_key, M.attempts).where(M.id == row_id).tuples().get(self.db)
            )
            later = peewee.Case(None, ((M.next_attempt_at < not_before, not_before),), M.next_attempt_at)
            (
                M.update(next_attempt_at=later)
                .where((M.conversation_key == key) & (M.state == PENDING))
                .execute(self.db)
            )
            self.index.merge_conversations([key])
            return int(attempts)

        with guarded(self.db):
            return in_transaction_retrying(self.db, work)

    def mark_parked(self, row_id: int) -> None:
        """Set an echo or history row aside: its conversation has no ticket yet.

        It no longer holds its conversation back; the customer's next message brings it back
        (`store_batch`), ahead of that message.
        """
        self._update(row_id, state=PARKED, updated_at=self.clock())

    def mark_dead(self, row_id: int, *, error: str) -> None:
        self._update(row_id, state=DEAD, last_error=_clip(error), updated_at=self.clock())

    def requeue_dead(self, ids: list[int] | None = None) -> int:
        """Give dead rows (all, or those listed) a fresh set of attempts, due now.

        `started` is kept: a requeued row may already have its comment in Jira.
        """
        M = InboundMessageRow
        now = self.clock()
        where = M.state == DEAD
        if ids is not None:
            if not ids:
                return 0
            where &= M.id.in_(list(ids))
        query = M.update(state=PENDING, attempts=0, next_attempt_at=now, updated_at=now).where(where)
        with guarded(self.db):
            requeued = query.execute(self.db)
        if requeued:
            self.index.reconcile()  # an operator's action, rare: the whole backlog is fine
        return requeued

    def _update(self, row_id: int, **values: Any) -> None:
        M = InboundMessageRow
        with guarded(self.db):
            M.update(**values).where(M.id == row_id).execute(self.db)

    # -- status and operators -----------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        M = InboundMessageRow
        by_state = M.select(M.state, peewee.fn.COUNT(M.id)).group_by(M.state).tuples()
        pending = (
            M.select(
                peewee.fn.COUNT(M.id),
                peewee.fn.SUM(peewee.Case(None, ((M.attempts > 0, 1),), 0)),
                peewee.fn.MIN(M.created_at),
            )
            .where(M.state == PENDING)
            .tuples()
        )
        now = self.clock()
        with guarded(self.db):
            counts = dict(by_state.execute(self.db))
            _, retrying, oldest = pending.get(self.db)
        return {
            "pending": int(counts.get(PENDING, 0)),
            "retrying": int(retrying or 0),
            "dead": int(counts.get(DEAD, 0)),
            "done": int(counts.get(DONE, 0)),
            "oldest_pending_age_seconds": None if oldest is None else max(0.0, now - oldest),
        }

    def last_customer_message(self, conversation_key: str) -> tuple[int, str | None] | None:
        """(Meta timestamp, profile name) of the customer's latest message, or None.

        The 24-hour window runs from that timestamp. Every stored message the customer sent
        counts, whatever state its Jira delivery is in: the window is Meta's, opened by the
        customer writing, not by our comment landing. That includes their messages in shared
        history (real messages with Meta's timestamps, so at worst an old one); what the
        business sent (echoes, its side of the history) never opens the window.
        The name is the latest profile name the customer had, if any message carried one.
        """
        M = InboundMessageRow
        query = (
            M.select(M.meta_timestamp, M.profile_name)
            .where((M.conversation_key == conversation_key) & (M.from_business == 0))
            .order_by(M.meta_timestamp.desc(), M.id.desc())
            .limit(1)
            .tuples()
        )
        with guarded(self.db):
            row = query.first(self.db)
        if row is None:
            return None
        # Only customers' messages carry profile names, so any named row is theirs.
        return int(row[0]), row[1] or self._latest_profile_name(conversation_key)

    def recent_failures(self, limit: int = 10) -> list[dict[str, Any]]:
        """Pending-with-error and dead rows, most recently updated first."""
        M = InboundMessageRow
        query = (
            M.select(M.id, M.wamid, M.state, M.attempts, M.last_error, M.updated_at)
            .where(M.last_error.is_null(False) & (M.state != DONE))
            .order_by(M.updated_at.desc(), M.id.desc())
            .limit(limit)
            .dicts()
        )
        with guarded(self.db):
            return list(query.execute(self.db))

    def statuses_for(self, wamid: str) -> list[str]:
        query = (
            StatusRow.select(StatusRow.status)
            .where(StatusRow.wamid == wamid)
            .order_by(StatusRow.meta_timestamp, StatusRow.id)
            .tuples()
        )
        with guarded(self.db):
            return [status for (status,) in query.execute(self.db)]


def _unique(items: Sequence[Any], key: Callable[[Any], Any]) -> list[Any]:
    seen: dict[Any, Any] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())


def _clip(error: str) -> str:
    return error if len(error) <= _MAX_ERROR_CHARS else error[: _MAX_ERROR_CHARS - 1] + "…"


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


def _queued(row: dict[str, Any], known_name: str | None = None) -> QueuedMessage:
    return QueuedMessage(
        id=row["id"],
        wamid=row["wamid"],
        conversation_key=row["conversation_key"],
        wa_id=row["wa_id"],
        user_id=row["user_id"],
        phone_number_id=row["phone_number_id"],
        display_phone_number=row["display_phone_number"],
        profile_name=row["profile_name"],
        timestamp=int(row["meta_timestamp"]),
        kind=row["kind"],
        raw=json.loads(row["raw_json"]),
        attempts=row["attempts"],
        started=row["started"],
        next_attempt_at=float(row["next_attempt_at"]),
        last_error=row["last_error"],
        origin=row["origin"],
        from_business=bool(row["from_business"]),
        known_name=known_name,
    )
