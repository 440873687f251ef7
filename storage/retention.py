"""Deleting finished rows older than a cutoff, in small batches (the housekeeping job).

Each table has a rule: which rows are finished and old (`updated_at` of a queue row is stamped
when it finished, so "old" means finished long ago, not merely created long ago), and which of
those must stay anyway (see `bot.rules.retention` for why each guard exists):

- inbound_message: `done`/`dead` rows, except the customer's latest message of the
  conversation (the 24-hour window, `storage.customer_window`) and the latest one carrying a
  profile name (the name notices greet);
- media_task: `done`, `failed`, `too_large`;
- ai_turn: `done`, `skipped`, `failed`, `superseded`;
- outbound_message: `sent` and later, `failed`, `held`, `unknown`, except `ack:` rows and a
  conversation's newest template (one re-engagement template per closed window);
- message_status: applied statuses; webhook_event: every row (kept only to deduplicate);
- handled_comment: except commands (`/template` has no age check: a forgotten one would be
  carried out again) and the newest comment of each route on a ticket (the AI's hand-off and
  quiet rules read them);
- lease: leases that expired before the cutoff.

Pending, claimed, retrying and parked rows are never candidates. The highest id of a table
stays: SQLite (and MySQL before 8.0, after a restart) gives the next row max(id) + 1, and ids
name things elsewhere (`ai:{turn}:{n}` keys, a rating's survey, `failed:{id}` notes).

How it runs on every engine: a plain SELECT picks up to `batch_size` ids past a cursor (any
subquery on the same table is fine in a SELECT, even on MySQL), then a DELETE by those primary
keys, re-checking the row's own state and age, commits on its own. The guards only ever become
easier to satisfy while the pass runs (the row that protects another is itself kept), so the
re-check need not repeat them. A pass stops at its time budget; the next one goes on.
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from bot.rules.retention import ONCE_ONLY_PREFIXES, RetentionReport
from storage import ai_turns, inbound, media, outbound
from storage.db import guarded
from storage.engines import dialect, run_sql
from storage.models import (
    AiTurnRow,
    HandledCommentRow,
    InboundMessageRow,
    Lease,
    MediaTaskRow,
    OutboundMessageRow,
    StatusRow,
    WebhookEventRow,
)
from storage.transactions import transact

BATCH_SIZE = 500
BUDGET_SECONDS = 60.0
PAUSE_SECONDS = 0.01
"""Between batches: a webhook waiting for SQLite's write lock gets it before the next batch."""
COMMAND_ROUTE = "command"  # jobs.poll's label for an agent's command comment

INBOUND_FINISHED = (inbound.DONE, inbound.DEAD)
MEDIA_FINISHED = (media.DONE, media.FAILED, media.TOO_LARGE)
AI_TURN_FINISHED = (ai_turns.DONE, ai_turns.SKIPPED, ai_turns.FAILED, ai_turns.SUPERSEDED)
OUTBOUND_FINISHED = (
    outbound.SENT,
    outbound.DELIVERED,
    outbound.READ,
    outbound.FAILED,
    outbound.HELD,
    outbound.UNKNOWN,
)


@dataclass(frozen=True)
class _Rule:
    table: str
    key: Any
    """The primary key field: the cursor and what the DELETE names."""
    candidates: Callable[[float], Any]
    """cutoff → the WHERE of rows that may go (guards included)."""
    recheck: Callable[[float], Any]
    """cutoff → the WHERE the DELETE re-checks (the row's own state and age)."""
    keeps_max_id: bool = True


@dataclass(frozen=True)
class Checkpoint:
    """SQLite's answer to `PRAGMA wal_checkpoint(TRUNCATE)`."""

    busy: bool
    """True: a reader or writer was active, so the log was checkpointed but not truncated."""
    log_frames: int
    checkpointed_frames: int


class Retention:
    """Deletes expired finished rows; safe to run beside the webhook and the jobs.

    Args:
        db: the database.
        batch_size: rows per DELETE (each its own transaction).
        budget_seconds: a pass stops after this long; what is left waits for the next pass.
        pause_seconds: the pause between batches.
        monotonic: the budget's clock (injected so tests can exhaust it).
    """

    def __init__(
        self,
        db: peewee.Database,
        *,
        batch_size: int = BATCH_SIZE,
        budget_seconds: float = BUDGET_SECONDS,
        pause_seconds: float = PAUSE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.db = db
        self.batch_size = batch_size
        self.budget_seconds = budget_seconds
        self.pause_seconds = pause_seconds
        self.monotonic = monotonic

    def delete_expired(self, *, cutoff: float) -> RetentionReport:
        """Delete what the rules allow among rows finished before `cutoff` (epoch seconds).

        Returns:
            Rows deleted per table, and whether the pass finished within its budget.

        Raises:
            StorageUnavailable: the database did not answer (batches already committed stay
                deleted; the next pass goes on).
        """
        deadline = self.monotonic() + self.budget_seconds
        deleted: dict[str, int] = {}
        complete = True
        for rule in _RULES:
            count, done = self._sweep(rule, cutoff, deadline)
            deleted[rule.table] = count
            if not done:
                complete = False
                for later in _RULES[_RULES.index(rule) + 1 :]:
                    deleted[later.table] = 0
                break
        return RetentionReport(deleted=deleted, complete=complete)

    def _sweep(self, rule: _Rule, cutoff: float, deadline: float) -> tuple[int, bool]:
        where = rule.candidates(cutoff)
        model = rule.key.model
        if rule.keeps_max_id:
            with guarded(self.db):
                top = model.select(peewee.fn.MAX(rule.key)).scalar(self.db)
            if top is None:
                return 0, True
            where &= rule.key < top
        deleted, cursor = 0, None
        while True:
            if self.monotonic() >= deadline:
                return deleted, False
            page = where if cursor is None else where & (rule.key > cursor)
            query = model.select(rule.key).where(page).order_by(rule.key).limit(self.batch_size).tuples()
            with guarded(self.db):
                ids = [key for (key,) in query.execute(self.db)]
            if not ids:
                return deleted, True
            deleted += self._delete(rule, ids, cutoff)
            if len(ids) < self.batch_size:
                return deleted, True
            cursor = ids[-1]
            if self.pause_seconds > 0:
                time.sleep(self.pause_seconds)

    def _delete(self, rule: _Rule, ids: Sequence[Any], cutoff: float) -> int:
        model = rule.key.model
        query = model.delete().where(rule.key.in_(list(ids)) & rule.recheck(cutoff))
        return int(transact(self.db, lambda: query.execute(self.db)))

    def checkpoint(self) -> Checkpoint | None:
        """Fold SQLite's write-ahead log back into the database file and truncate it; None on
        other engines (their servers do this themselves).

        A PASSIVE checkpoint first copies what it can without taking any lock a writer needs.
        TRUNCATE then takes the writer lock only to finish the little that is left and shrink
        the file, with this connection's busy timeout at 0 for the call: while it waits for
        readers it would hold the writer lock, and the webhook's commits would wait behind it.
        When someone is busy it gives up at once (`busy`); the next pass tries again, and the
        copied pages are reused by later writes meanwhile.
        """
        if dialect(self.db) != "sqlite":
            return None
        with guarded(self.db):
            run_sql(self.db, "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            (previous,) = run_sql(self.db, "PRAGMA busy_timeout").fetchone()
            run_sql(self.db, "PRAGMA busy_timeout = 0")
            try:
                row = run_sql(self.db, "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                run_sql(self.db, f"PRAGMA busy_timeout = {int(previous)}")
        busy, log_frames, checkpointed = (int(value) for value in row)
        return Checkpoint(busy=bool(busy), log_frames=log_frames, checkpointed_frames=checkpointed)


# -- the rules ----------------------------------------------------------------------------------


def _inbound(cutoff: float) -> Any:
    M, N = InboundMessageRow, InboundMessageRow.alias("newer")
    later = (N.conversation_key == M.conversation_key) & (
        (N.meta_timestamp > M.meta_timestamp) | ((N.meta_timestamp == M.meta_timestamp) & (N.id > M.id))
    )
    # The same order as CustomerWindow.last_customer_message and latest_profile_name, so the
    # row each of them reads is the one kept.
    newer_customer = N.select(N.id).where(later & (N.from_business == 0))
    newer_named = N.select(N.id).where(later & N.profile_name.is_null(False))
    return (
        _in_states(M, INBOUND_FINISHED)
        & (M.updated_at < cutoff)
        & ((M.from_business != 0) | peewee.fn.EXISTS(newer_customer))
        & (M.profile_name.is_null() | peewee.fn.EXISTS(newer_named))
    )


def _inbound_recheck(cutoff: float) -> Any:
    M = InboundMessageRow
    return M.state.in_(INBOUND_FINISHED) & (M.updated_at < cutoff)


def _outbound(cutoff: float) -> Any:
    M, N = OutboundMessageRow, OutboundMessageRow.alias("newer")
    newer_template = N.select(N.id).where(
        (N.conversation_key == M.conversation_key) & (N.via_template == 1) & (N.id > M.id)
    )
    # SUBSTR, not LIKE: exact on every engine (PostgreSQL's peewee `startswith` is ILIKE).
    not_once_only = [peewee.fn.SUBSTR(M.dedupe_key, 1, len(p)) != p for p in ONCE_ONLY_PREFIXES]
    return (
        _in_states(M, OUTBOUND_FINISHED)
        & (M.updated_at < cutoff)
        & functools.reduce(operator.and_, not_once_only)
        & ((M.via_template == 0) | peewee.fn.EXISTS(newer_template))
    )


def _outbound_recheck(cutoff: float) -> Any:
    M = OutboundMessageRow
    return M.state.in_(OUTBOUND_FINISHED) & (M.updated_at < cutoff)


def _handled(cutoff: float) -> Any:
    H, N = HandledCommentRow, HandledCommentRow.alias("newer")
    newer_same_route = N.select(N.comment_id).where(
        (N.issue_key == H.issue_key)
        & (N.route == H.route)
        & (
            (N.comment_created > H.comment_created)
            | ((N.comment_created == H.comment_created) & (N.comment_id > H.comment_id))
        )
    )
    return (H.handled_at < cutoff) & (H.route != COMMAND_ROUTE) & peewee.fn.EXISTS(newer_same_route)


def _in_states(model: Any, states: Sequence[str]) -> Any:
    """`state IN (…)` that no engine answers from the (state, next_attempt_at) index.

    Finished rows are most of a table, so that index finds them all and the engine then sorts
    them by id for every batch, evaluating the guards' subqueries on each (a pass over 600,000
    rows did not end in minutes). Wrapped in LOWER (the states are lower case already), the
    condition is a filter on a walk along the primary key from the cursor, which stops after
    one batch of matches.
    """
    return peewee.fn.LOWER(model.state).in_(list(states))


def _finished(field: Any, states: Sequence[str]) -> Callable[[float], Any]:
    model = field.model
    return lambda cutoff: _in_states(model, states) & (field < cutoff)


def _finished_recheck(field: Any, states: Sequence[str]) -> Callable[[float], Any]:
    model = field.model
    return lambda cutoff: model.state.in_(list(states)) & (field < cutoff)


_RULES: list[_Rule] = [
    _Rule("inbound_message", InboundMessageRow.id, _inbound, _inbound_recheck),
    _Rule(
        "media_task",
        MediaTaskRow.id,
        _finished(MediaTaskRow.updated_at, MEDIA_FINISHED),
        _finished_recheck(MediaTaskRow.updated_at, MEDIA_FINISHED),
    ),
    _Rule(
        "ai_turn",
        AiTurnRow.id,
        _finished(AiTurnRow.updated_at, AI_TURN_FINISHED),
        _finished_recheck(AiTurnRow.updated_at, AI_TURN_FINISHED),
    ),
    _Rule("outbound_message", OutboundMessageRow.id, _outbound, _outbound_recheck),
    _Rule(
        "message_status",
        StatusRow.id,
        lambda cutoff: (StatusRow.applied == 1) & (StatusRow.created_at < cutoff),
        lambda cutoff: (StatusRow.applied == 1) & (StatusRow.created_at < cutoff),
    ),
    _Rule(
        "webhook_event",
        WebhookEventRow.id,
        lambda cutoff: WebhookEventRow.created_at < cutoff,
        lambda cutoff: WebhookEventRow.created_at < cutoff,
    ),
    _Rule(
        "handled_comment",
        HandledCommentRow.comment_id,
        _handled,
        lambda cutoff: HandledCommentRow.handled_at < cutoff,
        keeps_max_id=False,
    ),
    _Rule(
        "lease",
        Lease.name,
        lambda cutoff: Lease.expires_at < cutoff,
        lambda cutoff: Lease.expires_at < cutoff,
        keeps_max_id=False,
    ),
]
