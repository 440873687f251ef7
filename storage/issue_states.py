"""The last known workflow state of each managed Jira issue, as the poll job last read it.

The inbox must not ask Jira for an issue's status on every message (one Jira call per
message is the budget), so the poll job's reads are kept here: every managed issue a pass
sees is upserted with its status category (`new`, `indeterminate`, `done`). That knowledge
is at most one poll interval old; the ticket lifecycle only acts on it after checking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import peewee

from storage.db import guarded
from storage.models import KEY_LENGTH, BaseModel
from storage.transactions import transact

DONE = "done"
"""Jira's status category key for finished work (Done, Closed, Resolved, …)."""


class IssueStateRow(BaseModel):
    """One managed issue's status as last seen (table created by schema step 3)."""

    issue_key = peewee.CharField(max_length=KEY_LENGTH, primary_key=True)
    status_category = peewee.CharField(max_length=32)
    status_name = peewee.CharField(max_length=KEY_LENGTH)
    seen_at = peewee.DoubleField()

    class Meta:
        table_name = "issue_state"


@dataclass(frozen=True)
class IssueState:
    issue_key: str
    status_category: str
    """`new`, `indeterminate` or `done` (Jira's statusCategory.key)."""
    status_name: str
    seen_at: float
    """Epoch seconds of the read that reported it."""

    @property
    def done(self) -> bool:
        return self.status_category == DONE


class IssueStates:
    """Issue key → last known status; safe from many threads and processes.

    Args:
        db: the database.
        clock: epoch seconds; injected so tests control time.
    """

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def record(self, issue_key: str, status_category: str, status_name: str) -> None:
        """Upsert what Jira just said about the issue's status.

        Raises:
            StorageUnavailable: the database did not answer.
        """
        S = IssueStateRow
        values = {
            S.status_category: status_category[:32],
            S.status_name: status_name[:KEY_LENGTH],
            S.seen_at: self.clock(),
        }

        def work() -> None:
            # Insert-if-absent then update: one spelling on every engine (no upsert dialects).
            (S.insert({S.issue_key: issue_key, **values}).on_conflict_ignore().execute(self.db))
            S.update(values).where(S.issue_key == issue_key).execute(self.db)

        transact(self.db, work)

    def get(self, issue_key: str) -> IssueState | None:
        """What the poll job last saw of the issue; None when it has not seen it yet."""
        S = IssueStateRow
        query = S.select().where(S.issue_key == issue_key).dicts()
        with guarded(self.db):
            row = query.first(self.db)
        if row is None:
            return None
        return IssueState(
            issue_key=row["issue_key"],
            status_category=row["status_category"],
            status_name=row["status_name"],
            seen_at=float(row["seen_at"]),
        )
