"""Earlier tickets of a conversation: the mapping points at the current one, these came before.

When a phone's ticket is closed and the service opens a new one (`on_closed = "new"`), the
old ticket is written here (with the ticket that replaced it) in the same transaction that
repoints the mapping, so the two never disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import peewee

from storage.db import guarded
from storage.models import KEY_LENGTH, BaseModel
from storage.transactions import transact


class TicketHistoryRow(BaseModel):
    """A ticket a conversation used before (table created by schema step 3)."""

    id = peewee.BigAutoField()
    phone_number = peewee.CharField(max_length=KEY_LENGTH, index=True)  # the conversation key
    issue_key = peewee.CharField(max_length=KEY_LENGTH)
    service_id = peewee.CharField(max_length=KEY_LENGTH)
    opened_at = peewee.DoubleField()
    closed_at = peewee.DoubleField(null=True)
    replaced_by = peewee.CharField(max_length=KEY_LENGTH, null=True)

    class Meta:
        table_name = "ticket_history"


@dataclass(frozen=True)
class PastTicket:
    id: int
    phone_number: str
    issue_key: str
    service_id: str
    opened_at: float
    """Epoch seconds the conversation started going to this ticket."""
    closed_at: float | None
    """Epoch seconds the conversation moved on from it."""
    replaced_by: str | None


class TicketHistory:
    """Args:
    db: the database.
    clock: epoch seconds; injected so tests control time.
    """

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def add(
        self, phone_number: str, issue_key: str, service_id: str, *, opened_at: float, replaced_by: str | None
    ) -> None:
        """Record that the conversation left `issue_key` now, for `replaced_by`.

        Joins the caller's transaction when there is one (see `storage.db.transact`).

        Raises:
            StorageUnavailable: the database did not answer.
        """
        row = {
            "phone_number": phone_number,
            "issue_key": issue_key,
            "service_id": service_id,
            "opened_at": opened_at,
            "closed_at": self.clock(),
            "replaced_by": replaced_by,
        }
        transact(self.db, lambda: TicketHistoryRow.insert(**row).execute(self.db))

    def for_phone(self, phone_number: str) -> list[PastTicket]:
        """The conversation's earlier tickets, oldest first."""
        H = TicketHistoryRow
        query = H.select().where(H.phone_number == phone_number).order_by(H.id).dicts()
        with guarded(self.db):
            rows = list(query.execute(self.db))
        return [
            PastTicket(
                id=int(r["id"]),
                phone_number=r["phone_number"],
                issue_key=r["issue_key"],
                service_id=r["service_id"],
                opened_at=float(r["opened_at"]),
                closed_at=None if r["closed_at"] is None else float(r["closed_at"]),
                replaced_by=r["replaced_by"],
            )
            for r in rows
        ]
