"""Satisfaction ratings: one per survey sent, the customer's latest tap kept.

A rating is keyed by the survey it answers (the outbound row of the CSAT list), so tapping
again replaces the rating rather than counting twice. The inbox may record the same message
again (a retry after a crash) or, rarely, an older tap after a newer one; Meta's timestamp of
the customer's message decides, and an older tap never replaces a newer one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import peewee

from storage.db import guarded
from storage.models import KEY_LENGTH, CsatRatingRow
from storage.transactions import transact

RATINGS = range(1, 6)
"""The survey's rows are `csat:1` … `csat:5`."""


@dataclass(frozen=True)
class StoredRating:
    rating: int
    wamid: str
    """The customer's message that gave it."""
    rated_at: float


class CsatRatings:
    """Stored ratings; every method is safe from many threads and processes.

    Args:
        db: the database.
        clock: epoch seconds; kept for symmetry with the other tables (ratings carry Meta's time).
    """

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def record(
        self,
        *,
        request_id: int,
        service_id: str,
        issue_key: str,
        conversation_key: str,
        wamid: str,
        rating: int,
        rated_at: float,
    ) -> None:
        """Store the rating a customer gave to survey `request_id`, unless a newer one is stored.

        Args:
            request_id: the survey's outbound_message id.
            wamid: the customer's message that rated.
            rated_at: that message's time (Meta's timestamp, epoch seconds).

        A tap at the same second as the stored one replaces it when it is another message: the
        inbox works a conversation's messages in order, so the later one arrives last.

        Raises:
            ValueError: a rating outside 1–5, or a key empty or too long to store.
            StorageUnavailable: the database did not answer (nothing stored).
        """
        if rating not in RATINGS:
            raise ValueError(f"rating must be 1 to 5, not {rating!r}")
        keys = (service_id, issue_key, conversation_key, wamid)
        # service_id may be "" (a survey queued before services were named); the others may not.
        if any(len(key) > KEY_LENGTH for key in keys) or not all((issue_key, conversation_key, wamid)):
            raise ValueError("csat rating key empty or too long to store")
        C = CsatRatingRow
        values = {C.wamid: wamid, C.rating: rating, C.rated_at: rated_at}
        newer = (C.rated_at < rated_at) | ((C.rated_at == rated_at) & (C.wamid != wamid))

        def work() -> None:
            # Insert-if-absent then a conditional update: one spelling on every engine, and the
            # update's WHERE is re-checked against the row as it stands once its lock is ours.
            row = {
                C.request_id: request_id,
                C.service_id: service_id,
                C.issue_key: issue_key,
                C.conversation_key: conversation_key,
                **values,
            }
            if C.insert(row).on_conflict_ignore().as_rowcount().execute(self.db):
                return
            C.update(values).where((C.request_id == request_id) & newer).execute(self.db)

        transact(self.db, work)

    def get(self, request_id: int) -> StoredRating | None:
        """The rating stored for survey `request_id`, or None."""
        C = CsatRatingRow
        query = C.select(C.rating, C.wamid, C.rated_at).where(C.request_id == request_id).tuples()
        with guarded(self.db):
            row = query.first(self.db)
        return None if row is None else StoredRating(int(row[0]), str(row[1]), float(row[2]))

    def summary(self, *, since: float) -> dict[str, tuple[int, float]]:
        """service_id → (how many ratings, their average) over ratings given at or after `since`."""
        C = CsatRatingRow
        query = (
            C.select(C.service_id, peewee.fn.COUNT(C.id), peewee.fn.SUM(C.rating))
            .where(C.rated_at >= since)
            .group_by(C.service_id)
            .tuples()
        )
        with guarded(self.db):
            rows = list(query.execute(self.db))
        # Averaged here: SQL's AVG of integers is a Decimal on PostgreSQL, and on MySQL one
        # rounded to four places.
        return {str(service): (int(count), int(total) / int(count)) for service, count, total in rows}
