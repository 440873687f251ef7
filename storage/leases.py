"""Named, expiring leases: one poll job across all daemons, one worker per conversation.

Acquiring is two single-statement steps, each atomic on every engine: INSERT the lease if
nobody has it; otherwise UPDATE it only where it has expired or is already ours. The row
count says who won, so two processes can never both believe they hold it. A holder that
dies simply stops renewing; the lease expires and someone else takes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import peewee

from storage.db import guarded
from storage.models import Lease


class Leases:
    """Args:
    db: the database.
    clock: epoch seconds. Every process must agree on time within a fraction of the
        TTL: expiry is compared against the acquirer's own clock.
    """

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take or renew the lease.

        Returns:
            True if `owner` now holds it until now + ttl_seconds; False if another owner's
            lease is still live.

        Raises:
            StorageUnavailable: the database did not answer.
        """
        now = self.clock()
        expires = now + ttl_seconds
        insert = (
            Lease.insert(name=name, owner=owner, expires_at=expires, acquired_at=now)
            .on_conflict_ignore()
            .as_rowcount()
        )
        # acquired_at keeps the start of an unbroken holding across renewals. It is set
        # first because MySQL evaluates SET left to right with the new values: after
        # `owner = me` the CASE would always see our name.
        acquired_at = peewee.Case(None, ((Lease.owner == owner, Lease.acquired_at),), now)
        take = Lease.update(
            {Lease.acquired_at: acquired_at, Lease.owner: owner, Lease.expires_at: expires}
        ).where((Lease.name == name) & ((Lease.expires_at <= now) | (Lease.owner == owner)))
        with guarded(self.db):
            if insert.execute(self.db):
                return True
            taken: int = take.execute(self.db)
        return taken == 1

    def release(self, name: str, owner: str) -> None:
        """Give the lease up, if `owner` still holds it (never someone else's)."""
        query = Lease.delete().where((Lease.name == name) & (Lease.owner == owner))
        with guarded(self.db):
            query.execute(self.db)

    def holder(self, name: str) -> tuple[str, float] | None:
        """(owner, expires_at) of the live lease, or None if it is free or has expired."""
        query = (
            Lease.select(Lease.owner, Lease.expires_at)
            .where((Lease.name == name) & (Lease.expires_at > self.clock()))
            .tuples()
        )
        with guarded(self.db):
            row = query.first(self.db)
        return None if row is None else (row[0], float(row[1]))
