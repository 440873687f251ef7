"""Tickets with a live chat: their customer wrote in the last minutes, so the poll job searches
them more often than the rest (`[poller] hot_minutes`, `hot_interval_seconds`)."""

from __future__ import annotations

import math

import peewee

from storage.db import guarded
from storage.models import InboundMessageRow

CUSTOMER = "customer"


class HotTickets:
    """A read of the inbound rows; safe from many threads and processes."""

    def __init__(self, db: peewee.Database):
        self.db = db

    def hot_issue_keys(self, *, since: float, limit: int = 100) -> list[str]:
        """Tickets whose customer wrote at or after `since`, the most recent writer first.

        Only the customer's own messages count (not echoes of what the team sent, not shared
        history), by Meta's timestamp, and only those already on a ticket.

        Args:
            since: epoch seconds.
            limit: at most this many keys.
        """
        if limit <= 0:
            return []
        M = InboundMessageRow
        latest = peewee.fn.MAX(M.meta_timestamp)
        query = (
            M.select(M.issue_key)
            .where(
                # Whole seconds, as stored: an integer bound keeps the range on the index
                # (PostgreSQL would compare a BIGINT column with a float by casting the column).
                (M.meta_timestamp >= math.ceil(since)) & (M.origin == CUSTOMER) & M.issue_key.is_null(False)
            )
            .group_by(M.issue_key)
            .order_by(latest.desc(), M.issue_key)
            .limit(limit)
            .tuples()
        )
        with guarded(self.db):
            return [key for (key,) in query.execute(self.db)]
