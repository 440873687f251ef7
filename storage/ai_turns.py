"""AI turns: customer messages the AI may answer, debounced, claimed, and finished once.

The poll job adds a turn per customer comment, due a little later (the debounce). A newer
turn of the same ticket supersedes the older pending ones, so a burst of messages gets one
reply, after the last of them. The AI job claims due turns, asks the policy, and marks each:
`postpone` (still debouncing), `mark_done` (the reply's outbound rows in the same
transaction), `mark_skipped`, `mark_retry`, `mark_failed`.

A worker that dies leaves its turn `working`; once the claim expires the turn is claimed
again with `attempts` counted up, so a turn that keeps killing its worker can be given up.
A live worker `renew`s its claim before each slow step, and stops if the claim is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import peewee

from storage.ai_turn_rows import OPEN, SUPERSEDED, WORKING, AiTurn, add_turn, load_turn, supersede_older
from storage.db import guarded
from storage.models import AiTurnRow
from storage.outbound_rows import insert_rows, prepare_rows
from storage.queue import PENDING, ClaimableQueue, QueueSpec
from storage.transactions import transact

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
STATES = (PENDING, WORKING, DONE, SKIPPED, FAILED, SUPERSEDED)
__all__ = [
    "DONE",
    "FAILED",
    "PENDING",
    "SKIPPED",
    "STATES",
    "SUPERSEDED",
    "WORKING",
    "AiTurn",
    "AiTurns",
    "add_turn",
]


class AiTurns:
    """Durable AI turns; every method is safe from many threads and processes."""

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock
        self._queue = ClaimableQueue(db, clock, _SPEC)

    def add(
        self,
        *,
        issue_key: str,
        service_id: str,
        conversation_key: str,
        trigger_comment_id: str,
        due_at: float,
        trigger_created: float | None = None,
    ) -> bool:
        """Add a turn for a customer comment (once per comment) and supersede the ticket's
        older pending turns. Joins the caller's transaction when there is one.

        Args:
            trigger_created: the comment's time; default: from handled_comment, else now.

        Returns:
            False if the comment already had a turn (nothing changed).
        """
        return transact(
            self.db,
            lambda: add_turn(
                self.db,
                self.clock(),
                issue_key=issue_key,
                service_id=service_id,
                conversation_key=conversation_key,
                trigger_comment_id=trigger_comment_id,
                due_at=due_at,
                trigger_created=trigger_created,
            ),
        )

    def claim_due(self, owner: str, *, limit: int = 10, lease_seconds: float = 120) -> list[AiTurn]:
        """Move due turns to `working` for `owner`: pending ones whose time has come, and
        working ones whose claim expired (their worker died; `attempts` goes up by one).

        At most one turn per ticket, and none of a ticket another worker is answering, so
        two replies to one ticket are never written at once.
        """
        return self._queue.claim(
            owner, limit=limit, lease_seconds=lease_seconds, candidates=self._first_per_ticket
        )

    def _first_per_ticket(self, now: float, limit: int) -> list[int]:
        first_per_issue: dict[str, int] = {}
        for row_id, issue_key in _candidates(now, limit).execute(self.db):
            first_per_issue.setdefault(issue_key, row_id)
        return sorted(first_per_issue.values())

    def renew(self, turn: AiTurn, owner: str, *, lease_seconds: float) -> bool:
        """Extend `owner`'s claim on a turn it is answering to `lease_seconds` from now.

        The claim must still be the one `claim_due` handed out: same owner, same attempt
        (a takeover counts an attempt up, so an instance restarted under the same name does
        not mistake a turn taken over from its previous life for its own).

        Returns:
            False when the turn is no longer this claim's (taken over, finished): stop
            working on it, another worker answers it.
        """
        T = AiTurnRow
        now = self.clock()
        query = T.update(claimed_until=now + lease_seconds, updated_at=now).where(
            (T.id == turn.id) & (T.state == WORKING) & (T.claimed_by == owner) & (T.attempts == turn.attempts)
        )
        with guarded(self.db):
            return bool(query.execute(self.db) == 1)

    def postpone(self, id: int, *, due_at: float) -> None:
        """Back to pending until `due_at` (the customer may still be typing). Superseded
        instead if a newer turn of the ticket came in meanwhile."""
        T = AiTurnRow
        now = self.clock()

        def work() -> None:
            self._queue.changing(
                id, at=now, state=PENDING, due_at=due_at, next_attempt_at=due_at, claimed_until=None
            ).execute(self.db)
            issue = T.select(T.issue_key).where(T.id == id).scalar(self.db)
            if issue is not None:
                supersede_older(self.db, issue, now)

        transact(self.db, work)

    def mark_done(
        self, id: int, *, reply_comment_id: str | None, tokens: int, outbound: Sequence[dict[str, Any]] = ()
    ) -> None:
        """Finish the turn and enqueue its reply's outbound rows, in one transaction.

        A turn already finished (another worker reclaimed it after this one's claim
        expired, and got there first) stays as it is and nothing is enqueued: the customer
        gets one reply per turn.
        """
        now = self.clock()
        prepared = prepare_rows(outbound, now)
        finishing = self._queue.finishing(
            id, DONE, at=now, reply_comment_id=reply_comment_id, tokens=int(tokens)
        )

        def work() -> None:
            finished = finishing.execute(self.db)
            if finished and prepared:
                insert_rows(self.db, prepared)

        transact(self.db, work)

    def mark_skipped(self, id: int, *, reason: str) -> None:
        self._queue.finish(id, SKIPPED, reason=reason)

    def mark_failed(self, id: int, *, error: str) -> None:
        self._queue.finish(id, FAILED, reason=error)

    def mark_retry(self, id: int, *, error: str, delay_seconds: float) -> int:
        """Count a failed attempt and try again after `delay_seconds`.

        Returns:
            The turn's attempts after this call.

        Raises:
            KeyError: no turn has this id.
        """
        return self._queue.retry(id, error=error, delay_seconds=delay_seconds)

    def replies_since(self, issue_key: str, since: float) -> int:
        """Turns of the ticket finished with a reply at or after `since`."""
        T = AiTurnRow
        return int(
            self._scalar(
                T.select(peewee.fn.COUNT(T.id)).where(
                    (T.issue_key == issue_key)
                    & (T.state == DONE)
                    & T.reply_comment_id.is_null(False)
                    & (T.finished_at >= since)
                )
            )
            or 0
        )

    def tokens_since(self, service_id: str, since: float) -> int:
        T = AiTurnRow
        return int(
            self._scalar(
                T.select(peewee.fn.SUM(T.tokens)).where(
                    (T.service_id == service_id) & (T.finished_at >= since)
                )
            )
            or 0
        )

    def answered_after(self, issue_key: str, comment_created: float) -> bool:
        """Whether a done turn was triggered by a comment written at or after that time."""
        T = AiTurnRow
        return (
            self._scalar(
                T.select(T.id)
                .where(
                    (T.issue_key == issue_key) & (T.state == DONE) & (T.trigger_created >= comment_created)
                )
                .limit(1)
            )
            is not None
        )

    def get(self, id: int) -> AiTurn | None:
        return self._queue.first(AiTurnRow.id == id)

    def stats(self) -> dict[str, Any]:
        """Turns per state (every state named) and the ages of the pending ones (`ClaimableQueue.stats`)."""
        return self._queue.stats()

    def _scalar(self, query: peewee.Select) -> Any:
        with guarded(self.db):
            return query.scalar(self.db)


def _candidates(now: float, limit: int) -> peewee.Select:
    """(id, issue_key) of claimable turns, oldest first, leaving out tickets another worker
    is answering. Built per call: peewee caches a query's results once executed."""
    t, other = AiTurnRow.alias("t"), AiTurnRow.alias("other")
    busy = other.select(other.id).where(
        (other.issue_key == t.issue_key) & (other.state == WORKING) & (other.claimed_until >= now)
    )
    due = ((t.state == PENDING) & (t.next_attempt_at <= now)) | (
        (t.state == WORKING) & (t.claimed_until < now)
    )
    return (
        t.select(t.id, t.issue_key).where(due & ~peewee.fn.EXISTS(busy)).order_by(t.id).limit(limit).tuples()
    )


_SPEC = QueueSpec(
    model=AiTurnRow,
    load=load_turn,
    states=STATES,
    in_flight=WORKING,
    # A finished turn stays finished: a worker that outlived its claim changes nothing.
    open_states=OPEN,
    reclaim_expired=True,
    finished_column="finished_at",
)
