"""What an AI turn row is, added and read: shared by `AiTurns` and `HandledComments.record`,
which adds a turn inside its own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee

from storage.models import AiTurnRow, HandledCommentRow
from storage.queue import PENDING

WORKING, SUPERSEDED = "working", "superseded"
OPEN = (PENDING, WORKING)
"""A turn still to be answered (not yet done, skipped, failed or superseded)."""


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
        supersede_older(db, issue_key, now)
    return bool(inserted)


def supersede_older(db: peewee.Database, issue_key: str, now: float) -> None:
    # Only the newest open turn of a ticket may answer: its reply covers everything before.
    # (Two statements: MySQL cannot UPDATE a table while selecting from it in a subquery.)
    T = AiTurnRow
    newest = T.select(peewee.fn.MAX(T.id)).where((T.issue_key == issue_key) & T.state.in_(OPEN)).scalar(db)
    if newest is not None:
        (
            T.update(state=SUPERSEDED, claimed_until=None, finished_at=now, updated_at=now)
            .where((T.issue_key == issue_key) & (T.state == PENDING) & (T.id < newest))
            .execute(db)
        )


def load_turn(row: dict[str, Any]) -> AiTurn:
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
