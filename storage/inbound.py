"""The inbound queue: customer messages worked off conversation by conversation (the inbox job).

The webhook stores them (`storage.ingest`). The inbox job asks for `due_conversations`,
takes a conversation (a lease per conversation keeps it to one worker), and walks
`pending_for` in order, marking each row. Rows are worked in place, never claimed (see
`storage.queue`): a failure holds the whole conversation back, so a later message never
overtakes an earlier one. Echoes and history without a ticket are `parked` until the
customer writes (`storage.ingest`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee

from bot.rules.events import ParsedBatch
from bot.rules.window import LastCustomerMessage
from storage.contacts import ContactNames
from storage.customer_window import CustomerWindow, latest_profile_name
from storage.db import guarded
from storage.inbound_index import ConversationIndex
from storage.ingest import (
    HISTORY_MAX_HOLD_SECONDS,
    HISTORY_SETTLE_SECONDS,
    ORIGIN_CUSTOMER,
    ORIGIN_ECHO,
    ORIGIN_HISTORY,
    PARKED,
    Ingest,
    StoreResult,
)
from storage.models import InboundMessageRow, StatusRow
from storage.queue import PENDING, ClaimableQueue, QueueSpec

DONE, DEAD = "done", "dead"
STATES = (PENDING, PARKED, DEAD, DONE)
__all__ = [
    "DEAD",
    "DONE",
    "HISTORY_MAX_HOLD_SECONDS",
    "HISTORY_SETTLE_SECONDS",
    "ORIGIN_CUSTOMER",
    "ORIGIN_ECHO",
    "ORIGIN_HISTORY",
    "PARKED",
    "PENDING",
    "STATES",
    "InboundQueue",
    "QueuedMessage",
    "StoreResult",
]


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


class InboundQueue:
    """Durable inbound rows; every method is safe from many threads and processes.

    `store_batch` and `last_customer_message` pass through to `ingest` and `window`, for
    callers that hold only the queue.
    """

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
        self.contacts = ContactNames(db, clock)
        # Which conversations have pending rows, kept by every write that adds or delays one.
        self.index = ConversationIndex(db, clock)
        self.ingest = Ingest(
            db,
            self.index,
            clock,
            history_settle_seconds=history_settle_seconds,
            history_max_hold_seconds=history_max_hold_seconds,
        )
        self.window = CustomerWindow(db)
        self._queue = ClaimableQueue(db, clock, _SPEC)

    @property
    def history_settle_seconds(self) -> float:
        return self.ingest.history_settle_seconds

    def store_batch(self, batch: ParsedBatch) -> StoreResult:
        """`Ingest.store_batch`: the webhook's delivery, stored in one transaction."""
        return self.ingest.store_batch(batch)

    def last_customer_message(self, conversation_key: str) -> LastCustomerMessage | None:
        """`CustomerWindow.last_customer_message`: where the 24-hour window starts."""
        return self.window.last_customer_message(conversation_key)

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
        latest = None if any_saved else latest_profile_name(self.db, conversation_key)
        return [_queued(row, saved.get(row["phone_number_id"]) or any_saved or latest) for row in rows]

    def mark_started(self, row_id: int) -> None:
        """Count a processing start; committed on return, before any Jira call."""
        self._queue.update(row_id, started=InboundMessageRow.started + 1)

    def mark_done(self, row_id: int, *, issue_key: str, comment_id: str | None) -> None:
        now = self.clock()
        self._queue.finish(row_id, DONE, at=now, issue_key=issue_key, comment_id=comment_id, done_at=now)

    def mark_retry(self, row_id: int, *, error: str, delay_seconds: float, count_attempt: bool) -> int:
        """Record a failure and hold the whole conversation back for `delay_seconds`.

        Returns:
            The row's attempts after this call.

        Raises:
            KeyError: no row has this id.
        """
        return self._queue.retry(
            row_id,
            error=error,
            delay_seconds=delay_seconds,
            count_attempt=count_attempt,
            hold=self._hold_conversation,
        )

    def _hold_conversation(self, row_id: int, not_before: float) -> None:
        # Every pending row of the conversation waits, so none overtakes the failed one; a
        # delay already further out (a history hold, an earlier back-off) is kept.
        M = InboundMessageRow
        key = M.select(M.conversation_key).where(M.id == row_id).scalar(self.db)
        later = peewee.Case(None, ((M.next_attempt_at < not_before, not_before),), M.next_attempt_at)
        (
            M.update(next_attempt_at=later)
            .where((M.conversation_key == key) & (M.state == PENDING))
            .execute(self.db)
        )
        self.index.merge_conversations([key])

    def customer_delivered_on(self, issue_key: str, *, excluding: int) -> bool:
        """Whether a customer's message other than row `excluding` is done on this ticket.

        The acknowledgement goes after a ticket's first customer message only; read from the
        rows rather than remembered, so a retry after a crash decides the same. Echoes and
        history do not count: they are not the customer writing. Uses the (issue_key, state)
        index of schema step 8.
        """
        M = InboundMessageRow
        query = M.select(M.id).where(
            (M.issue_key == issue_key)
            & (M.state == DONE)
            & (M.origin == ORIGIN_CUSTOMER)
            & (M.id != excluding)
        )
        with guarded(self.db):
            return query.exists(self.db)

    def mark_parked(self, row_id: int) -> None:
        """Set an echo or history row aside: its conversation has no ticket yet.

        It no longer holds its conversation back; the customer's next message brings it back
        (`store_batch`), ahead of that message.
        """
        self._queue.update(row_id, state=PARKED)

    def mark_dead(self, row_id: int, *, error: str) -> None:
        self._queue.finish(row_id, DEAD, reason=error)

    # -- status and operators -----------------------------------------------------------

    def requeue_dead(self, ids: list[int] | None = None) -> int:
        """Give dead rows (all, or those listed) a fresh set of attempts, due now.

        `started` is kept: a requeued row may already have its comment in Jira.
        """
        requeued = self._queue.requeue(DEAD, ids)
        if requeued:
            self.index.reconcile()  # an operator's action, rare: the whole backlog is fine
        return requeued

    def stats(self) -> dict[str, Any]:
        """Rows per state (parked too), `retrying`, and the ages of the pending ones
        (`ClaimableQueue.stats`)."""
        return self._queue.stats()

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


_SPEC = QueueSpec(
    model=InboundMessageRow,
    load=_queued,
    states=STATES,
    # Never claimed: the conversation's lease keeps its rows to one worker, and they stay
    # `pending` while worked; any row may be marked (open_states None).
)
