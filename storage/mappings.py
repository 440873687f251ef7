"""Which Jira ticket a phone's conversation belongs to, and ticket creations in flight.

A ticket creation is two systems, so it cannot be one transaction: `note_creation_started`
is written before the Jira call and cleared after the mapping exists. A creation still
noted after a crash means "a ticket may exist already: search Jira before creating another".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

import peewee

from storage.db import guarded
from storage.models import TicketCreation, WhatsappTicketMapping
from storage.transactions import write_transaction


class MappingExists(Exception):
    """The phone already has a mapping (another worker or process made it first)."""


@dataclass(frozen=True)
class TicketMapping:
    id: int
    phone_number: str
    issue_key: str
    service_id: str
    user_id: str | None
    created_at: datetime
    """UTC, timezone-aware."""
    updated_at: datetime
    """UTC, timezone-aware."""


class Mappings:
    """Phone → ticket mappings; safe from many threads and processes.

    Args:
        db: the database.
        clock: epoch seconds; injected so tests control time.
    """

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def _now(self) -> datetime:
        # Stored naive: PostgreSQL TIMESTAMP would otherwise shift an aware value to the
        # session time zone, and MySQL DATETIME has no zone at all.
        return datetime.fromtimestamp(self.clock(), timezone.utc).replace(tzinfo=None)

    def get(self, phone_number: str) -> TicketMapping | None:
        M = WhatsappTicketMapping
        query = M.select().where(M.phone_number == phone_number).dicts()
        with guarded(self.db):
            row = query.first(self.db)
        return None if row is None else _mapping(row)

    def key_for_user(self, user_id: str, service_id: str) -> str | None:
        """The conversation key already mapped for this business-scoped user id, if any."""
        M = WhatsappTicketMapping
        query = (
            M.select(M.phone_number)
            .where((M.user_id == user_id) & (M.service_id == service_id))
            .order_by(M.updated_at.desc())
            .limit(1)
            .tuples()
        )
        with guarded(self.db):
            row = query.first(self.db)
        return None if row is None else row[0]

    def create(
        self, phone_number: str, issue_key: str, service_id: str, user_id: str | None = None
    ) -> TicketMapping:
        """Map a phone to a ticket.

        Raises:
            MappingExists: the phone is mapped already.
            StorageUnavailable: the database did not answer.
        """
        now = self._now()
        values = {
            "phone_number": phone_number,
            "issue_key": issue_key,
            "service_id": service_id,
            "user_id": user_id,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with guarded(self.db):
                # Its own (sub)transaction: a failed INSERT must not poison a caller's
                # PostgreSQL transaction.
                with write_transaction(self.db):
                    row_id = WhatsappTicketMapping.insert(**values).execute(self.db)
        except peewee.IntegrityError as exc:
            raise MappingExists(phone_number) from exc
        if isinstance(row_id, (tuple, list)):
            row_id = row_id[0]
        return _mapping({"id": int(row_id), **values})

    def repoint(self, phone_number: str, issue_key: str) -> None:
        """Send the phone's conversation to another ticket (e.g. a new one after a close).

        Raises:
            KeyError: the phone has no mapping.
        """
        M = WhatsappTicketMapping
        query = M.update(issue_key=issue_key, updated_at=self._now()).where(M.phone_number == phone_number)
        with guarded(self.db):
            if not query.execute(self.db):
                raise KeyError(phone_number)

    def creation_started_at(self, conversation_key: str) -> float | None:
        T = TicketCreation
        query = T.select(T.started_at).where(T.conversation_key == conversation_key).tuples()
        with guarded(self.db):
            row = query.first(self.db)
        return None if row is None else float(row[0])

    def note_creation_started(self, conversation_key: str, service_id: str) -> float:
        """Record that a ticket creation begins; a second note keeps the first time.

        Returns:
            When the first still-unfinished creation for this conversation began.
        """
        T = TicketCreation
        insert = (
            T.insert(conversation_key=conversation_key, service_id=service_id, started_at=self.clock())
            .on_conflict_ignore()
            .as_rowcount()
        )
        select = T.select(T.started_at).where(T.conversation_key == conversation_key).tuples()
        with guarded(self.db):
            with write_transaction(self.db):
                insert.execute(self.db)
                # .tuples(): a tuple, though peewee's stub types get() as the model
                (started_at,) = cast(tuple[float], select.get(self.db))
        return float(started_at)

    def clear_creation(self, conversation_key: str) -> None:
        T = TicketCreation
        with guarded(self.db):
            T.delete().where(T.conversation_key == conversation_key).execute(self.db)


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands back text when peewee cannot parse it
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _mapping(row: dict[str, Any]) -> TicketMapping:
    return TicketMapping(
        id=int(row["id"]),
        phone_number=row["phone_number"],
        issue_key=row["issue_key"],
        service_id=row["service_id"],
        user_id=row["user_id"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
    )
