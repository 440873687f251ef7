"""One claimable-queue mechanism: the life cycle the inbound, outbound, AI-turn and media queues
share, each configuring it with a `QueueSpec`.

    pending ──claim──▶ in flight ──finish──▶ a terminal state (done, failed, dead, …)
       ▲                   │
       └───── retry ───────┘   after a back-off; `attempts` counts the row's own failures

A claim hands due rows to one owner until `claimed_until` (a lease), locking only the
candidates (storage/claims.py: SKIP LOCKED where the engine has it). A lease that runs out
means its worker died: a queue whose work may be repeated claims the row again with one more
attempt (`reclaim_expired`); one whose work must happen at most once moves it to a terminal
state instead (`expire`). Inbound rows are never claimed: a lease per conversation keeps them
to one worker, so they are worked in place and stay `pending` until finished.

Which rows may go out together (one per conversation, one per ticket) is each queue's own
business, so `claim` takes the queue's candidates. Giving up after too many attempts is the
caller's decision (its policy knows the limit): `retry` returns the attempts so far, `finish`
with the queue's failed or dead state is the dead letter, and `requeue` brings such rows back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import peewee

from storage.claims import lock_claimable
from storage.db import guarded
from storage.last_error import clip_error
from storage.transactions import transact

PENDING = "pending"
RETRYING = "retrying"
"""`stats` key: pending rows that have failed at least once."""
OLDEST_PENDING_AGE = "oldest_pending_age_seconds"
"""`stats` key: how long the oldest pending row has existed (None when nothing is pending)."""
OLDEST_DUE_LAG = "oldest_due_lag_seconds"
"""`stats` key: how long the most overdue pending row has been due (None when none is due)."""

T = TypeVar("T")

Candidates = Callable[[float, int], list[int]]
"""(now, how many) → ids of rows worth trying to claim, in the order they should go. Runs
inside the claim's transaction; it may use any subquery, the claim re-checks each row."""


@dataclass(frozen=True)
class QueueSpec(Generic[T]):
    """What a queue is, as far as the shared life cycle cares."""

    model: Any
    """Its table, a peewee model class (Any: mypy cannot see the columns peewee adds). The mechanism uses: id, state, attempts, next_attempt_at, last_error,
    created_at, updated_at; a claimed queue also claimed_by and claimed_until."""
    load: Callable[[dict[str, Any]], T]
    """A row as a dict → the queue's row type."""
    states: tuple[str, ...]
    """Every state `stats` counts, zeros included, in the order it reports them."""
    in_flight: str | None = None
    """The state of a claimed row; None: rows are never claimed but worked in place."""
    open_states: tuple[str, ...] | None = None
    """The states `retry`, `update` and `finish` move a row from unless told otherwise, so a
    finished row stays finished whoever still holds it; None: any state."""
    reclaim_expired: bool = False
    """A row whose claim expired is claimed again, attempts + 1 (its work may be repeated)."""
    finished_column: str | None = None
    """A column `finish` stamps with the time (`finished_at`)."""


class ClaimableQueue(Generic[T]):
    """The shared life cycle of one queue; every method is safe from many threads and processes."""

    def __init__(self, db: peewee.Database, clock: Callable[[], float], spec: QueueSpec[T]):
        self.db = db
        self.clock = clock
        self.spec = spec

    # -- claims -------------------------------------------------------------------------------

    def claimable(self, now: float) -> Any:
        """The condition a row must meet to be claimed at `now` (re-checked under the lock)."""
        M = self.spec.model
        due = (M.state == PENDING) & (M.next_attempt_at <= now)
        if self.spec.reclaim_expired:
            due = due | ((M.state == self.spec.in_flight) & (M.claimed_until < now))
        return due

    def oldest_claimable(self, now: float, limit: int) -> list[int]:
        """`Candidates` for a queue whose rows are independent: the oldest claimable ones."""
        return self._ids(self.claimable(now), limit)

    def claim(
        self, owner: str, *, limit: int, lease_seconds: float, candidates: Candidates | None = None
    ) -> list[T]:
        """Move up to `limit` claimable rows to the in-flight state for `owner`, until
        `lease_seconds` from now; expired claims count an attempt up (`reclaim_expired`)."""
        M, in_flight = self.spec.model, self._in_flight()
        now = self.clock()
        pick = candidates or self.oldest_claimable
        still_claimable = self.claimable(now)

        def work() -> list[dict[str, Any]]:
            # More candidates than the limit: concurrent claimers see the same oldest rows
            # and skip each other's, and each should still come away with work.
            ids = lock_claimable(self.db, M, pick(now, limit * 4), still_claimable, limit)
            if not ids:
                return []
            # Read before the claim, not as a CASE inside it: MySQL evaluates SET left to
            # right with the new values, so a CASE on `state` would always see `in_flight`.
            reclaimed = self._ids(M.id.in_(ids) & (M.state == in_flight)) if self.spec.reclaim_expired else []
            (
                M.update(state=in_flight, claimed_by=owner, claimed_until=now + lease_seconds, updated_at=now)
                .where(M.id.in_(ids))
                .execute(self.db)
            )
            if reclaimed:
                M.update(attempts=M.attempts + 1).where(M.id.in_(reclaimed)).execute(self.db)
            return self._rows(ids)

        return [self.spec.load(row) for row in transact(self.db, work)]

    def expire(self, state: str, reason: str, *, batch: int) -> list[T]:
        """Move up to `batch` rows whose claim expired to `state` (the work may or may not have
        happened and must not happen twice) and return them. `claimed_by` is kept: it names
        the worker that died."""
        M = self.spec.model
        now = self.clock()
        stale = (M.state == self._in_flight()) & (M.claimed_until < now)

        def work() -> list[dict[str, Any]]:
            ids = lock_claimable(self.db, M, self._ids(stale, batch), stale, batch)
            if not ids:
                return []
            (
                M.update(state=state, claimed_until=None, updated_at=now, last_error=clip_error(reason))
                .where(M.id.in_(ids))
                .execute(self.db)
            )
            return self._rows(ids)

        return [self.spec.load(row) for row in transact(self.db, work)]

    # -- outcomes -----------------------------------------------------------------------------

    def retry(
        self,
        id: int,
        *,
        error: str,
        delay_seconds: float,
        count_attempt: bool = True,
        hold: Callable[[int, float], None] | None = None,
        **values: Any,
    ) -> int:
        """Record a failure; a claimed row goes back to pending after `delay_seconds`.

        Args:
            count_attempt: whether the failure was the row's own (an outage is not).
            hold: (id, not before) run in the same transaction: how a queue worked in place
                applies the delay (the inbound queue holds the whole conversation back).
            values: more columns to set (the outbound queue's error code).

        Returns:
            The row's attempts after this call.

        Raises:
            KeyError: no row has this id.
        """
        M = self.spec.model
        now = self.clock()
        not_before = now + max(0.0, delay_seconds)
        changes: dict[str, Any] = {
            "attempts": M.attempts + (1 if count_attempt else 0),
            "last_error": clip_error(error),
        }
        if self.spec.in_flight is not None:
            changes.update(state=PENDING, next_attempt_at=not_before, claimed_until=None)

        def work() -> int:
            self.changing(id, at=now, **changes, **values).execute(self.db)
            attempts = M.select(M.attempts).where(M.id == id).scalar(self.db)
            if attempts is None:
                raise KeyError(id)
            if hold is not None:
                hold(id, not_before)
            return int(attempts)

        return transact(self.db, work)

    def finish(self, id: int, state: str, *, reason: str | None = None, **values: Any) -> int:
        """End a row in `state` (done, failed, dead, …), `reason` kept in last_error.
        Returns how many rows moved: 0 when there is no such row or it may not move."""
        with guarded(self.db):
            return int(self.finishing(id, state, reason=reason, **values).execute(self.db))

    def finishing(
        self,
        id: int,
        state: str,
        *,
        reason: str | None = None,
        at: float | None = None,
        from_states: Sequence[str] | None = None,
        **values: Any,
    ) -> Any:
        """The UPDATE `finish` runs, for a caller's own transaction (see `changing`)."""
        now = self.clock() if at is None else at
        changes: dict[str, Any] = {"state": state}
        if reason is not None:
            changes["last_error"] = clip_error(reason)
        if self.spec.in_flight is not None:
            changes["claimed_until"] = None
        if self.spec.finished_column is not None:
            changes[self.spec.finished_column] = now
        return self.changing(id, at=now, from_states=from_states, **changes, **values)

    def update(self, id: int, **values: Any) -> None:
        """Set columns of a row in an open state (and updated_at)."""
        with guarded(self.db):
            self.changing(id, **values).execute(self.db)

    def changing(
        self, id: int, *, at: float | None = None, from_states: Sequence[str] | None = None, **values: Any
    ) -> Any:
        """UPDATE of one row, stamped updated_at, only from `from_states` (default: the open
        states). Not run: the caller executes it, inside its transaction or `guarded`."""
        M = self.spec.model
        allowed = self.spec.open_states if from_states is None else from_states
        where = M.id == id
        if allowed is not None:
            where &= M.state.in_(list(allowed))
        return M.update(updated_at=self.clock() if at is None else at, **values).where(where)

    def requeue(self, state: str, ids: Sequence[int] | None = None) -> int:
        """Give rows in `state` (all, or those listed) a fresh set of attempts, due now.
        Returns how many were requeued."""
        M = self.spec.model
        now = self.clock()
        where = M.state == state
        if ids is not None:
            if not ids:
                return 0
            where &= M.id.in_(list(ids))
        query = M.update(state=PENDING, attempts=0, next_attempt_at=now, updated_at=now).where(where)
        with guarded(self.db):
            return int(query.execute(self.db))

    # -- reads --------------------------------------------------------------------------------

    def first(self, where: Any) -> T | None:
        """The lowest-id row matching `where`, or None."""
        query = self.spec.model.select().where(where).order_by(self.spec.model.id).dicts()
        with guarded(self.db):
            row = query.first(self.db)
        return None if row is None else self.spec.load(row)

    def stats(self) -> dict[str, Any]:
        """Rows per state (every state named, zeros included), `retrying`, and two ages of
        the pending rows: `OLDEST_PENDING_AGE` (since created) and `OLDEST_DUE_LAG` (overdue)."""
        M = self.spec.model
        now = self.clock()
        by_state = M.select(M.state, peewee.fn.COUNT(M.id)).group_by(M.state).tuples()
        pending = (
            M.select(
                peewee.fn.SUM(peewee.Case(None, ((M.attempts > 0, 1),), 0)),
                peewee.fn.MIN(M.created_at),
                # MIN skips the NULL of rows not yet due: the most overdue of the due ones.
                peewee.fn.MIN(peewee.Case(None, ((M.next_attempt_at <= now, M.next_attempt_at),))),
            )
            .where(M.state == PENDING)
            .tuples()
        )
        with guarded(self.db):
            counts = dict(by_state.execute(self.db))
            retrying, created, due = pending.get(self.db)
        out: dict[str, Any] = {state: int(counts.get(state, 0)) for state in self.spec.states}
        out[RETRYING] = int(retrying or 0)
        out[OLDEST_PENDING_AGE] = None if created is None else max(0.0, now - created)
        out[OLDEST_DUE_LAG] = None if due is None else max(0.0, now - due)
        return out

    def _in_flight(self) -> str:
        if self.spec.in_flight is None:
            raise TypeError(f"{self.spec.model.__name__} rows are worked in place, never claimed")
        return self.spec.in_flight

    def _ids(self, where: Any, limit: int | None = None) -> list[int]:
        M = self.spec.model
        query = M.select(M.id).where(where).order_by(M.id)
        if limit is not None:
            query = query.limit(limit)
        return [int(row_id) for (row_id,) in query.tuples().execute(self.db)]

    def _rows(self, ids: list[int]) -> list[dict[str, Any]]:
        M = self.spec.model
        return list(M.select().where(M.id.in_(ids)).order_by(M.id).dicts().execute(self.db))
