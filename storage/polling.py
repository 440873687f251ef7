"""What the poll job remembers between runs: its watermark, and every comment it handled.

The poll job reads Jira from `watermark − overlap`, so it sees comments again; handled_comment
makes that harmless. `HandledComments.record` writes "seen" together with what seeing it
caused (outbound rows, an AI turn) in one transaction: after a crash either both exist or
neither, so a comment is never acted on twice nor silently dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from storage.ai_turn_rows import add_turn
from storage.db import guarded
from storage.last_error import clip_error
from storage.models import HandledCommentRow, PollStateRow
from storage.outbound_rows import insert_rows, prepare_rows
from storage.transactions import transact

ROUTE_TO_CUSTOMER = "to_customer"  # an agent's public comment, sent to WhatsApp
ROUTE_ECHO = "echo"  # the team wrote from the WhatsApp Business App
ROUTE_AI_TURN = "ai_turn"  # a customer message the AI may answer
ROUTE_CUSTOMER = "customer"  # a customer message only people answer (no assistant, `/ai off`)
CUSTOMER_ROUTES = (ROUTE_AI_TURN, ROUTE_CUSTOMER)
ROUTE_HANDOVER = "handover"  # the AI handed the conversation to people: silent as after their reply
HUMAN_ROUTES = (ROUTE_TO_CUSTOMER, ROUTE_ECHO, ROUTE_HANDOVER)

_COMMENT_ID_LENGTH = 64
_IN_CHUNK = 500


@dataclass(frozen=True)
class PollRecord:
    name: str
    watermark_ms: int | None
    """Epoch milliseconds Jira was read up to; None before the first successful run."""
    last_run_at: float | None
    last_success_at: float | None
    last_error: str | None
    """Why the latest run failed; cleared by a success."""
    runs: int


class PollState:
    """One row per poll job name; safe from many threads and processes."""

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def get(self, name: str = "jira") -> PollRecord:
        P = PollStateRow
        query = P.select().where(P.name == name).dicts()
        with guarded(self.db):
            row = query.first(self.db)
        if row is None:
            return PollRecord(name, None, None, None, None, 0)
        return PollRecord(
            name=name,
            watermark_ms=None if row["watermark_ms"] is None else int(row["watermark_ms"]),
            last_run_at=_opt_float(row["last_run_at"]),
            last_success_at=_opt_float(row["last_success_at"]),
            last_error=row["last_error"],
            runs=int(row["runs"]),
        )

    def save_success(self, name: str, *, watermark_ms: int) -> None:
        """Record a successful run. The watermark never moves back: a slow run that
        finishes after a faster one must not make the next run re-read hours of Jira."""
        P = PollStateRow
        watermark_ms = int(watermark_ms)
        later = peewee.Case(
            None,
            ((P.watermark_ms.is_null() | (P.watermark_ms < watermark_ms), watermark_ms),),
            P.watermark_ms,
        )
        now = self.clock()
        self._save(
            name,
            {
                P.watermark_ms: later,
                P.last_run_at: now,
                P.last_success_at: now,
                P.last_error: None,
                P.runs: P.runs + 1,
            },
        )

    def save_failure(self, name: str, *, error: str) -> None:
        P = PollStateRow
        self._save(name, {P.last_run_at: self.clock(), P.last_error: clip_error(error), P.runs: P.runs + 1})

    def _save(self, name: str, values: dict[Any, Any]) -> None:
        P = PollStateRow

        def work() -> None:
            # Insert-if-absent then update: one spelling on every engine (no upsert dialects).
            P.insert(name=name, runs=0).on_conflict_ignore().execute(self.db)
            P.update(values).where(P.name == name).execute(self.db)

        transact(self.db, work)


class HandledComments:
    """Jira comments the poll job has handled; safe from many threads and processes."""

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def known(self, comment_ids: Iterable[str]) -> set[str]:
        """Those of `comment_ids` already handled."""
        H = HandledCommentRow
        ids = list(dict.fromkeys(comment_ids))
        found: set[str] = set()
        with guarded(self.db):
            for start in range(0, len(ids), _IN_CHUNK):
                query = (
                    H.select(H.comment_id).where(H.comment_id.in_(ids[start : start + _IN_CHUNK])).tuples()
                )
                found.update(cid for (cid,) in query.execute(self.db))
        return found

    def record(
        self,
        *,
        comment_id: str,
        issue_key: str,
        route: str,
        comment_created: float,
        outbound: Sequence[dict[str, Any]] = (),
        ai_turn: dict[str, Any] | None = None,
        author_kind: str | None = None,
    ) -> bool:
        """Mark a comment handled and, in the same transaction, enqueue what it causes.

        Args:
            outbound: rows as for `OutboundQueue.enqueue_many`.
            ai_turn: keywords of `AiTurns.add`; issue_key, trigger_comment_id and
                trigger_created default to this comment's.
            author_kind: who wrote it (the classifier's word), kept for operators.

        Returns:
            False if the comment was handled before; then nothing else is written.

        Raises:
            ValueError: a malformed outbound row or an over-long comment id (nothing stored).
            StorageUnavailable: the database did not answer (nothing stored).
        """
        if len(comment_id) > _COMMENT_ID_LENGTH:
            # MySQL's INSERT IGNORE would truncate it and then match another comment.
            raise ValueError(f"comment_id longer than {_COMMENT_ID_LENGTH} characters")
        now = self.clock()
        prepared = prepare_rows(outbound, now)
        turn = None if ai_turn is None else _turn_defaults(ai_turn, issue_key, comment_id, comment_created)
        H = HandledCommentRow

        def work() -> bool:
            inserted = (
                H.insert(
                    comment_id=comment_id,
                    issue_key=issue_key,
                    route=route,
                    author_kind=author_kind,
                    comment_created=comment_created,
                    handled_at=now,
                )
                .on_conflict_ignore()
                .as_rowcount()
                .execute(self.db)
            )
            if not inserted:
                return False
            if prepared:
                insert_rows(self.db, prepared)
            if turn is not None:
                add_turn(self.db, now, **turn)
            return True

        return transact(self.db, work)

    def last_human_at(self, issue_key: str) -> float | None:
        """When an agent or the team last spoke on the ticket (Jira's comment time)."""
        return self._latest(issue_key, HUMAN_ROUTES)

    def last_customer_at(self, issue_key: str) -> float | None:
        """When the customer last wrote, whether or not their comment became an AI turn (with
        `/ai off` it did not, and `/ai on` must still see it as the last word)."""
        return self._latest(issue_key, CUSTOMER_ROUTES)

    def _latest(self, issue_key: str, routes: tuple[str, ...]) -> float | None:
        H = HandledCommentRow
        query = H.select(peewee.fn.MAX(H.comment_created)).where(
            (H.issue_key == issue_key) & H.route.in_(routes)
        )
        with guarded(self.db):
            return _opt_float(query.scalar(self.db))


def _turn_defaults(
    ai_turn: dict[str, Any], issue_key: str, comment_id: str, comment_created: float
) -> dict[str, Any]:
    """`AiTurns.add` keywords, the trigger defaulting to the comment being recorded."""
    return {
        "issue_key": issue_key,
        "trigger_comment_id": comment_id,
        "trigger_created": comment_created,
        **ai_turn,
    }


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
