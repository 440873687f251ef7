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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee

from storage.claims import lock_claimable
from storage.db import guarded, transact
from storage.models import AiTurnRow, HandledCommentRow
from storage.outbound_rows import insert_rows, prepare_rows

PENDING, WORKING, DONE = "pending", "working", "done"
SKIPPED, FAILED, SUPERSEDED = "skipped", "failed", "superseded"
STATES = (PENDING, WORKING, DONE, SKIPPED, FAILED, SUPERSEDED)
_OPEN = (PENDING, WORKING)
_MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class AiTurn:
    id: int
    issue_key: str
    service_id: str
    conversation_key: str
    trigger_comment_id: str
    created_at: float
    due_at: float
    state: str
    attempts: int
    next_attempt_at: float
    reply_comment_id: str | None
    tokens: int
    last_error: str | None
    trigger_created: float = 0.0
    """When the triggering comment was written (Jira's time, epoch seconds)."""


def add_turn(
    db: peewee.Database,
    now: float,
    *,
    issue_key: str,
    service_id: str,
    conversation_key: str,
    trigger_comment_id: str,
    due_at: float,
    trigger_created: float | None = None,
) -> bool:
    """`AiTurns.add` in the caller's transaction (HandledComments.record uses it)."""
    T = AiTurnRow
    for name, value in (
        ("issue_key", issue_key),
        ("service_id", service_id),
        ("conversation_key", conversation_key),
        ("trigger_comment_id", trigger_comment_id),
    ):
        # SQLite's INSERT OR IGNORE would silently drop a row that breaks NOT NULL.
        if not isinstance(value, str) or not value:
            raise ValueError(f"AI turn field {name!r} must be a non-empty string")
    if trigger_created is None:
        # The poll job records the comment in handled_comment in the same transaction;
        # without it, the turn's own creation time is the best guess.
        known = (
            HandledCommentRow.select(HandledCommentRow.comment_created)
            .where(HandledCommentRow.comment_id == trigger_comment_id)
            .scalar(db)
        )
        trigger_created = now if known is None else float(known)
    inserted = (
        T.insert(
            issue_key=issue_key,
            service_id=service_id,
            conversation_key=conversation_key,
            trigger_comment_id=trigger_comment_id,
            trigger_created=trigger_created,
            created_at=now,
            due_at=due_at,
            state=PENDING,
            attempts=0,
            next_attempt_at=due_at,
            tokens=0,
            updated_at=now,
        )
        .on_conflict_ignore()
        .as_rowcount()
        .execute(db)
    )
    if inserted:
        _supersede_older(db, issue_key, now)
    return bool(inserted)


def _supersede_older(db: peewee.Database, issue_key: str, now: float) -> None:
    # Only the newest open turn of a ticket may answer: its reply covers everything before.
    # (Two statements: MySQL cannot UPDATE a table while selecting from it in a subquery.)
    T = AiTurnRow
    newest = T.select(peewee.fn.MAX(T.id)).where((T.issue_key == issue_key) & T.state.in_(_OPEN)).scalar(db)
    if newest is not None:
        (
            T.update(state=SUPERSEDED, claimed_until=None, finished_at=now, updated_at=now)
            .where((T.issue_key == issue_key) & (T.state == PENDING) & (T.id < newest))
            .execute(db)
        )


class AiTurns:
    """Durable AI turns; every method is safe from many threads and processes."""

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

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
        now = self.clock()
        T = AiTurnRow
        still_due = ((T.state == PENDING) & (T.next_attempt_at <= now)) | (
            (T.state == WORKING) & (T.claimed_until < now)
        )

        def work() -> list[dict[str, Any]]:
            first_per_issue: dict[str, int] = {}
            for row_id, issue_key in _candidates(now, limit * 4).execute(self.db):
                first_per_issue.setdefault(issue_key, row_id)
            ids = lock_claimable(self.db, T, sorted(first_per_issue.values()), still_due, limit)
            if not ids:
                return []
            # Read before the claim, not as a CASE inside it: MySQL evaluates SET left to
            # right with the new values, so a CASE on `state` would see `working` always.
            reclaimed = [
                i
                for (i,) in T.select(T.id)
                .where(T.id.in_(ids) & (T.state == WORKING))
                .tuples()
                .execute(self.db)
            ]
            (
                T.update(state=WORKING, claimed_by=owner, claimed_until=now + lease_seconds, updated_at=now)
                .where(T.id.in_(ids))
                .execute(self.db)
            )
            if reclaimed:
                T.update(attempts=T.attempts + 1).where(T.id.in_(reclaimed)).execute(self.db)
            return list(T.select().where(T.id.in_(ids)).order_by(T.id).dicts().execute(self.db))

        return [_turn(row) for row in transact(self.db, work)]

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
            return query.execute(self.db) == 1

    def postpone(self, id: int, *, due_at: float) -> None:
        """Back to pending until `due_at` (the customer may still be typing). Superseded
        instead if a newer turn of the ticket came in meanwhile."""
        T = AiTurnRow
        now = self.clock()

        def work() -> None:
            (
                T.update(
                    state=PENDING, due_at=due_at, next_attempt_at=due_at, claimed_until=None, updated_at=now
                )
                .where((T.id == id) & T.state.in_(_OPEN))
                .execute(self.db)
            )
            issue = T.select(T.issue_key).where(T.id == id).scalar(self.db)
            if issue is not None:
                _supersede_older(self.db, issue, now)

        transact(self.db, work)

    def mark_done(
        self, id: int, *, reply_comment_id: str | None, tokens: int, outbound: list[dict[str, Any]] = ()
    ) -> None:
        """Finish the turn and enqueue its reply's outbound rows, in one transaction.

        A turn already finished (another worker reclaimed it after this one's claim
        expired, and got there first) stays as it is and nothing is enqueued: the customer
        gets one reply per turn.
        """
        T = AiTurnRow
        now = self.clock()
        prepared = prepare_rows(outbound, now)

        def work() -> None:
            finished = (
                T.update(
                    state=DONE,
                    reply_comment_id=reply_comment_id,
                    tokens=int(tokens),
                    claimed_until=None,
                    finished_at=now,
                    updated_at=now,
                )
                .where((T.id == id) & T.state.in_(_OPEN))
                .execute(self.db)
            )
            if finished and prepared:
                insert_rows(self.db, prepared)

        transact(self.db, work)

    def mark_skipped(self, id: int, *, reason: str) -> None:
        self._finish(id, SKIPPED, reason)

    def mark_failed(self, id: int, *, error: str) -> None:
        self._finish(id, FAILED, error)

    def mark_retry(self, id: int, *, error: str, delay_seconds: float) -> int:
        """Count a failed attempt and try again after `delay_seconds`.

        Returns:
            The turn's attempts after this call.

        Raises:
            KeyError: no turn has this id.
        """
        T = AiTurnRow
        now = self.clock()

        def work() -> int:
            (
                T.update(
                    state=PENDING,
                    attempts=T.attempts + 1,
                    last_error=_clip(error),
                    next_attempt_at=now + max(0.0, delay_seconds),
                    claimed_until=None,
                    updated_at=now,
                )
                .where((T.id == id) & T.state.in_(_OPEN))
                .execute(self.db)
            )
            attempts = T.select(T.attempts).where(T.id == id).scalar(self.db)
            if attempts is None:
                raise KeyError(id)
            return int(attempts)

        return transact(self.db, work)

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
        query = AiTurnRow.select().where(AiTurnRow.id == id).dicts()
        with guarded(self.db):
            row = query.first(self.db)
        return None if row is None else _turn(row)

    def stats(self) -> dict[str, Any]:
        """Turns per state (every state named) and how overdue the oldest due pending turn is."""
        T = AiTurnRow
        now = self.clock()
        by_state = T.select(T.state, peewee.fn.COUNT(T.id)).group_by(T.state).tuples()
        oldest = T.select(peewee.fn.MIN(T.next_attempt_at)).where(
            (T.state == PENDING) & (T.next_attempt_at <= now)
        )
        with guarded(self.db):
            counts = dict(by_state.execute(self.db))
            first = oldest.scalar(self.db)
        out: dict[str, Any] = {state: int(counts.get(state, 0)) for state in STATES}
        out["oldest_due_lag_seconds"] = None if first is None else max(0.0, now - first)
        return out

    def _finish(self, id: int, state: str, reason: str) -> None:
        T = AiTurnRow
        now = self.clock()
        query = T.update(
            state=state, last_error=_clip(reason), claimed_until=None, finished_at=now, updated_at=now
        ).where((T.id == id) & T.state.in_(_OPEN))
        with guarded(self.db):
            query.execute(self.db)

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


def _clip(error: str) -> str:
    return error if len(error) <= _MAX_ERROR_CHARS else error[: _MAX_ERROR_CHARS - 1] + "…"


def _turn(row: dict[str, Any]) -> AiTurn:
    return AiTurn(
        id=int(row["id"]),
        issue_key=row["issue_key"],
        service_id=row["service_id"],
        conversation_key=row["conversation_key"],
        trigger_comment_id=row["trigger_comment_id"],
        created_at=float(row["created_at"]),
        due_at=float(row["due_at"]),
        state=row["state"],
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        reply_comment_id=row["reply_comment_id"],
        tokens=int(row["tokens"]),
        last_error=row["last_error"],
        trigger_created=float(row["trigger_created"]),
    )
