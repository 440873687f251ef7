"""The outbound queue: WhatsApp messages to send, in order per conversation, at most once each.

Rows come from the poll job (an agent's comment, an echo) and the AI job (a reply), each part
of a split message a row of its own, deduplicated by a key the caller derives from what it is
answering (so a re-poll or a retried AI turn adds nothing). The outbox job claims due rows,
sends them, and marks them; Meta's status webhooks then move `sent` on to `delivered`/`read`.

    pending ──claim──▶ sending ──▶ sent ──▶ delivered ──▶ read
       ▲                  │ │ │      └──────────┴──▶ failed (a status from Meta)
       └──── mark_retry ──┘ │ └──▶ failed | held (window closed, no template)
                            └──▶ unknown (claim expired: we crashed mid-send; never resent)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee

from storage.db import guarded
from storage.last_error import clip_error
from storage.models import OutboundMessageRow
from storage.outbound_rows import decode_payload, insert_rows, prepare_rows
from storage.queue import PENDING, ClaimableQueue, QueueSpec
from storage.statuses import StatusFeed  # noqa: F401 - part of this module's API
from storage.transactions import transact

SENDING, SENT, DELIVERED, READ = "sending", "sent", "delivered", "read"
FAILED, HELD, UNKNOWN = "failed", "held", "unknown"
STATES = (PENDING, SENDING, SENT, DELIVERED, READ, FAILED, HELD, UNKNOWN)
CSAT = "csat"
"""The kind of a satisfaction survey's row (`jobs.notices` queues them)."""

# Which states a status from Meta may replace. Statuses arrive out of order (delivered after
# read is common), so they only ever move forward; a read message stays read even if a
# `failed` turns up later, because the customer has seen it.
_STATUS_FROM = {
    DELIVERED: (SENT,),
    READ: (SENT, DELIVERED),
    FAILED: (SENT, DELIVERED),
}
# Final outcomes of a send attempt. `unknown` is included: a worker that outlived its claim
# still knows best what Meta answered (but see mark_retry).
_SEND_OUTCOME_FROM = (SENDING, UNKNOWN)
_FINAL_FROM = (PENDING, SENDING, UNKNOWN)
_STALE_BATCH = 1000


@dataclass(frozen=True)
class OutboundMessage:
    id: int
    dedupe_key: str
    issue_key: str
    conversation_key: str
    to_wa_id: str | None
    to_user_id: str | None
    phone_number_id: str
    kind: str
    """`ai`, `agent`, `echo`, … (the caller's vocabulary)."""
    body: str
    state: str
    attempts: int
    next_attempt_at: float
    wamid: str | None
    last_error: str | None
    error_code: int | None
    created_at: float
    sent_at: float | None
    via_template: bool
    status_at: float | None = None
    """Meta's time of the newest status applied (delivered, read, failed)."""
    payload: dict[str, Any] | None = None
    """What a message that is not plain text needs (a file, a template), as enqueued; None for
    text, and for a stored payload that cannot be read."""


class OutboundQueue:
    """Durable outbound rows; every method is safe from many threads and processes."""

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock
        self._queue = ClaimableQueue(db, clock, _SPEC)

    def enqueue_many(self, rows: list[dict[str, Any]], *, txn_ok: bool = False) -> int:
        """Add messages; rows whose dedupe_key is known are ignored.

        Args:
            rows: dicts with dedupe_key, issue_key, conversation_key, to_wa_id, to_user_id,
                phone_number_id, kind, body and optionally payload (`prepare_rows`); a split
                message's parts in order.
            txn_ok: allow joining a transaction the caller has open (the rows then commit
                with it). Without it that is an error: the caller would believe the rows
                durable on return.

        Returns:
            How many rows were new.

        Raises:
            ValueError: a malformed row (nothing is stored).
            RuntimeError: called inside a transaction without txn_ok.
            StorageUnavailable: the database did not answer.
        """
        prepared = prepare_rows(rows, self.clock())
        if not prepared:
            return 0
        if self.db.in_transaction() and not txn_ok:
            raise RuntimeError("enqueue_many inside a transaction needs txn_ok=True")
        return transact(self.db, lambda: insert_rows(self.db, prepared))

    def claim_due(self, owner: str, *, limit: int = 20, lease_seconds: float = 60) -> list[OutboundMessage]:
        """Move due rows to `sending` for `owner`, at most one per conversation.

        A row qualifies only as its conversation's oldest pending row, and only while the
        conversation has nothing in `sending`: parts of a split message and consecutive
        replies go out strictly in id order, and a back-off holds the rows behind it. A
        conversation's next row becomes claimable once this one is marked, so call again
        until nothing comes back.
        """
        return self._queue.claim(owner, limit=limit, lease_seconds=lease_seconds, candidates=self._candidates)

    def _candidates(self, now: float, limit: int) -> list[int]:
        return [row_id for (row_id,) in _candidates(now, limit).execute(self.db)]

    def mark_sent(self, id: int, *, wamid: str, via_template: bool = False) -> None:
        now = self.clock()
        self._queue.finish(
            id,
            SENT,
            at=now,
            from_states=_SEND_OUTCOME_FROM,
            wamid=wamid,
            via_template=int(via_template),
            sent_at=now,
        )

    def mark_retry(
        self, id: int, *, error: str, code: int | None, delay_seconds: float, count_attempt: bool
    ) -> int:
        """Back to pending after `delay_seconds` (Meta did not take it: safe to send again).
        Only from `sending`: an `unknown` row has been reported on the ticket as never to be
        sent again, and a late retry must not make that untrue.

        Returns:
            The row's attempts after this call.

        Raises:
            KeyError: no row has this id.
        """
        return self._queue.retry(
            id, error=error, delay_seconds=delay_seconds, count_attempt=count_attempt, error_code=code
        )

    def mark_failed(self, id: int, *, error: str, code: int | None) -> None:
        self._queue.finish(id, FAILED, reason=error, from_states=_FINAL_FROM, error_code=code)

    def mark_held(self, id: int, *, reason: str) -> None:
        self._queue.finish(id, HELD, reason=reason, from_states=_FINAL_FROM)

    def recover_stale(self) -> list[OutboundMessage]:
        """Rows still `sending` after their claim expired become `unknown` and are returned.

        The sender died between claiming and marking: Meta may or may not have the message,
        and sending again could show the customer a duplicate, so the row is never retried;
        the caller says so on the ticket. `claimed_by` is kept: it names the worker that died.
        """
        return self._queue.expire(
            UNKNOWN, "claim expired mid-send; not resent (at most once)", batch=_STALE_BATCH
        )

    def apply_status(
        self, wamid: str, status: str, *, at: float, error: str | None = None, code: int | None = None
    ) -> tuple[OutboundMessage | None, bool]:
        """Apply a status webhook to the row Meta gave `wamid`, never moving backwards.

        Returns:
            (the row as it is now, or None when no row has this wamid — not ours, or
            `mark_sent` has not committed yet; whether this status changed it).
        """
        M = OutboundMessageRow
        values: dict[Any, Any] = {M.state: status, M.status_at: at, M.updated_at: self.clock()}
        if status == FAILED:
            values.update({M.last_error: clip_error(error or "failed"), M.error_code: code})
        allowed = _STATUS_FROM.get(status, ())

        def work() -> tuple[dict[str, Any] | None, bool]:
            changed = (
                bool(allowed)
                and M.update(values).where((M.wamid == wamid) & M.state.in_(allowed)).execute(self.db) > 0
            )
            row = M.select().where(M.wamid == wamid).order_by(M.id).dicts().first(self.db)
            return row, changed

        row, changed = transact(self.db, work)
        return (None if row is None else _message(row)), changed

    def get(self, id: int) -> OutboundMessage | None:
        return self._queue.first(OutboundMessageRow.id == id)

    def by_wamid(self, wamid: str) -> OutboundMessage | None:
        return self._queue.first(OutboundMessageRow.wamid == wamid)

    def for_issue(self, issue_key: str) -> list[OutboundMessage]:
        M = OutboundMessageRow
        query = M.select().where(M.issue_key == issue_key).order_by(M.id).dicts()
        with guarded(self.db):
            return [_message(row) for row in query.execute(self.db)]

    def template_sent_since(self, conversation_key: str, since: float) -> bool:
        """Whether a re-engagement template already went to this conversation since `since`
        (the customer's last message): one template per closed window is enough."""
        M = OutboundMessageRow
        return (
            self._queue.first(
                (M.conversation_key == conversation_key) & (M.via_template == 1) & (M.sent_at >= since)
            )
            is not None
        )

    def csat_request(
        self, conversation_key: str, context_wamid: str | None, *, since: float
    ) -> OutboundMessage | None:
        """The satisfaction survey (kind `csat`) that a customer's rating answers.

        Args:
            context_wamid: the message the rating quotes (`context.id`), when it has one.
            since: without a quoted message, only a survey created at or after this counts.

        Returns:
            With `context_wamid`: this conversation's survey with that wamid, or None when the
            quoted message is not one (a reply to some other list is not a rating). Without:
            the conversation's newest survey that was sent (has a wamid) since `since`, or None.
        """
        M = OutboundMessageRow
        ours = (M.conversation_key == conversation_key) & (M.kind == CSAT)
        if context_wamid is not None:
            return self._queue.first(ours & (M.wamid == context_wamid))
        # Newest by id along the (conversation_key, kind, id) index of schema step 8.
        query = (
            M.select()
            .where(ours & M.wamid.is_null(False) & (M.created_at >= since))
            .order_by(M.id.desc())
            .dicts()
        )
        with guarded(self.db):
            row = query.first(self.db)
        return None if row is None else _message(row)

    def stats(self) -> dict[str, Any]:
        """Rows per state (every state named, zeros included) and the ages of the pending ones
        (`ClaimableQueue.stats`)."""
        return self._queue.stats()


def _candidates(now: float, limit: int) -> peewee.Select:
    """Ids of due rows that are their conversation's oldest pending row, in a conversation
    with nothing in `sending`. Built per call: peewee caches a query's results once run."""
    o, p, s = (OutboundMessageRow.alias(n) for n in ("o", "p", "s"))
    oldest = p.select(peewee.fn.MIN(p.id)).where(
        (p.conversation_key == o.conversation_key) & (p.state == PENDING)
    )
    busy = s.select(s.id).where((s.conversation_key == o.conversation_key) & (s.state == SENDING))
    return (
        o.select(o.id)
        .where((o.state == PENDING) & (o.next_attempt_at <= now) & (o.id == oldest) & ~peewee.fn.EXISTS(busy))
        .order_by(o.id)
        .limit(limit)
        .tuples()
    )


def _message(row: dict[str, Any]) -> OutboundMessage:
    def opt_float(key: str) -> float | None:
        return None if row[key] is None else float(row[key])

    return OutboundMessage(
        id=int(row["id"]),
        dedupe_key=row["dedupe_key"],
        issue_key=row["issue_key"],
        conversation_key=row["conversation_key"],
        to_wa_id=row["to_wa_id"],
        to_user_id=row["to_user_id"],
        phone_number_id=row["phone_number_id"],
        kind=row["kind"],
        body=row["body"],
        state=row["state"],
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        wamid=row["wamid"],
        last_error=row["last_error"],
        error_code=None if row["error_code"] is None else int(row["error_code"]),
        created_at=float(row["created_at"]),
        sent_at=opt_float("sent_at"),
        via_template=bool(row["via_template"]),
        status_at=opt_float("status_at"),
        payload=decode_payload(row.get("payload")),
    )


_SPEC = QueueSpec(
    model=OutboundMessageRow,
    load=_message,
    states=STATES,
    in_flight=SENDING,
    # A send that outlived its claim is never claimed again (at most once): `recover_stale`.
    open_states=(SENDING,),
    reclaim_expired=False,
)
