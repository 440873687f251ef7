"""Which status each ticket was last seen in, and how often it has *entered* a new one.

A status notice goes when a ticket enters a status, not whenever the poll reads it: the poll
re-reads tickets (its overlap, a catch-up, a second instance), so the notice is keyed by the
ticket's entry count, and the count only moves in a compare-and-set from the status last
seen. Whoever moves it queues the notice in the same transaction; whoever loses the race
queues nothing.

A ticket seen for the first time is not an entry (upgrading to this version must not notify
every closed ticket), unless we opened it ourselves: `baseline` leaves an empty status for
the poll's first sight to differ from.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import peewee

from storage.db import guarded
from storage.engines import dialect
from storage.models import KEY_LENGTH, StatusWatchRow
from storage.transactions import transact

STATUS_NAME_LENGTH = 255
"""Longer names are compared and stored clipped (Jira's own limit is far below)."""
_UNSEEN = ""


class StatusWatch:
    """Ticket → (status last seen, entries); every method is safe from many threads and processes.

    Args:
        db: the database.
        clock: epoch seconds; injected so tests control time.
    """

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def baseline(self, issue_key: str) -> None:
        """A ticket we just opened: the first status the poll sees counts as an entry.

        Inserts (issue_key, "", 0) unless the ticket has a row; never changes an existing one,
        so calling it again (a retried delivery) or after the poll has seen the ticket is harmless.

        Raises:
            ValueError: an issue key too long to store.
            StorageUnavailable: the database did not answer.
        """
        _check_key(issue_key)
        S = StatusWatchRow
        row = {S.issue_key: issue_key, S.status_name: _UNSEEN, S.entries: 0, S.updated_at: self.clock()}
        transact(self.db, lambda: S.insert(row).on_conflict_ignore().execute(self.db))

    def observe(
        self, issue_key: str, status_name: str, *, on_entry: Callable[[int], None] | None = None
    ) -> int | None:
        """The poll saw the ticket in `status_name` (Jira's name, compared exactly).

        Args:
            on_entry: called with the new entry count when this call moved it, inside the
                transaction that moved it, so what it writes (the notice) commits with the move
                or not at all. It may run more than once (a deadlock victim runs again), so it
                must be idempotent: keying its rows by the count makes it so.

        Returns:
            The ticket's new entry count when this call recorded an entry; None for a first
            sight, the same status again, or an entry another instance recorded first.

        Raises:
            ValueError: an issue key too long to store.
            StorageUnavailable: the database did not answer (nothing changed).
            Whatever `on_entry` raises (nothing changed).
        """
        _check_key(issue_key)
        name = status_name[:STATUS_NAME_LENGTH]
        S = StatusWatchRow

        def work() -> int | None:
            now = self.clock()
            seen = self._read(issue_key)
            if seen is None:
                first_sight = {S.issue_key: issue_key, S.status_name: name, S.entries: 0, S.updated_at: now}
                if S.insert(first_sight).on_conflict_ignore().as_rowcount().execute(self.db):
                    return None
                # Another instance (or the ticket opener's baseline) inserted it meanwhile.
                seen = self._read(issue_key, latest=True)
                if seen is None:  # pragma: no cover - the row that beat us cannot vanish
                    return None
            old_name, old_entries = seen
            if old_name == name:
                return None
            entries = old_entries + 1
            # The WHERE is re-checked against the row as it stands once its lock is ours: of
            # two instances that both read the old status, only the first changes a row.
            moved = (
                S.update({S.status_name: name, S.entries: S.entries + 1, S.updated_at: now})
                .where((S.issue_key == issue_key) & (S.status_name == old_name) & (S.entries == old_entries))
                .execute(self.db)
            )
            if moved != 1:
                return None
            if on_entry is not None:
                on_entry(entries)
            return entries

        return transact(self.db, work)

    def get(self, issue_key: str) -> tuple[str, int] | None:
        """(status last seen — "" when only baselined —, entries), or None for an unknown ticket."""
        with guarded(self.db):
            return self._read(issue_key)

    def _read(self, issue_key: str, *, latest: bool = False) -> tuple[str, int] | None:
        S = StatusWatchRow
        query = S.select(S.status_name, S.entries).where(S.issue_key == issue_key)
        if latest and dialect(self.db) != "sqlite":
            # A locking read sees the newest committed row; a plain one in MySQL's repeatable
            # read would still show the snapshot from before the other insert. (SQLite's write
            # lock already makes every read inside the transaction the newest.)
            query = query.for_update()
        row = query.tuples().first(self.db)
        return None if row is None else (str(row[0]), int(row[1]))


def _check_key(issue_key: str) -> None:
    # MySQL's INSERT IGNORE would clip a long key silently and so merge two tickets.
    if not issue_key or len(issue_key) > KEY_LENGTH:
        raise ValueError("issue_key empty or too long to store")
