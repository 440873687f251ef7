"""Names the business saved for its contacts in the WhatsApp Business App (coexistence).

Meta reports the app's address book through `smb_app_state_sync`: a contact added or edited
(`add`, with `full_name` and `first_name`) or removed (`remove`, no name). The webhook applies
those changes here in the same transaction that stores the rest of its delivery; the inbox job
reads a name back when a message carries no profile name of its own (history, echoes, a
message without `contacts[]`).

Deliveries can come twice and out of order, so every row remembers the timestamp of the change
that wrote it and only a change at least as recent replaces it. A removal keeps its row with
the name cleared: otherwise an older `add` arriving late would bring the name back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import peewee

from bot.rules.events import ContactSync
from storage.db import guarded
from storage.models import KEY_LENGTH, BaseModel
from storage.text import utf8_safe
from storage.transactions import transact

REMOVE = "remove"
_MAX_NAME_CHARS = 1000  # a name, not a document; the renderer trims to 100 anyway


class ContactNameRow(BaseModel):
    """One contact of one business number (table created by schema step 5)."""

    phone_number_id = peewee.CharField(max_length=KEY_LENGTH)
    conversation_key = peewee.CharField(max_length=KEY_LENGTH)
    full_name = peewee.TextField(null=True)
    first_name = peewee.TextField(null=True)
    synced_at = peewee.BigIntegerField()  # Meta's timestamp of the change that wrote the row
    updated_at = peewee.DoubleField()

    class Meta:
        table_name = "contact_name"
        primary_key = peewee.CompositeKey("phone_number_id", "conversation_key")
        indexes = ((("conversation_key",), False),)


def apply_syncs(db: peewee.Database, syncs: Iterable[ContactSync], now: float) -> int:
    """Apply contact changes inside the caller's transaction.

    Returns:
        How many changes were newer than what was stored (and so took effect).
    """
    latest: dict[tuple[str, str], ContactSync] = {}
    for sync in syncs:
        # Stored and matched as the database can hold them (a lone surrogate becomes U+FFFD).
        key = (utf8_safe(sync.phone_number_id), utf8_safe(sync.conversation_key))
        # Within one delivery the later item wins a tie: Meta lists changes in order.
        if key not in latest or latest[key].timestamp <= sync.timestamp:
            latest[key] = sync
    C = ContactNameRow
    applied = 0
    for (pnid, conversation_key), sync in sorted(latest.items()):
        removed = sync.action == REMOVE
        values = {
            "full_name": None if removed else utf8_safe(_clip(sync.full_name)),
            "first_name": None if removed else utf8_safe(_clip(sync.first_name)),
            "synced_at": int(sync.timestamp),
            "updated_at": now,
        }
        inserted = (
            C.insert(phone_number_id=pnid, conversation_key=conversation_key, **values)
            .on_conflict_ignore()
            .as_rowcount()
            .execute(db)
        )
        if not inserted:
            inserted = (
                C.update(**values)
                .where(
                    (C.phone_number_id == pnid)
                    & (C.conversation_key == conversation_key)
                    & (C.synced_at <= int(sync.timestamp))
                )
                .execute(db)
            )
        applied += 1 if inserted else 0
    return applied


class ContactNames:
    """Saved contact names; safe from many threads and processes."""

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def apply(self, syncs: Iterable[ContactSync]) -> int:
        """`apply_syncs` in a transaction of its own (the webhook uses the queue's instead)."""
        syncs = list(syncs)
        return transact(self.db, lambda: apply_syncs(self.db, syncs, self.clock()))

    def names_for(self, conversation_key: str) -> dict[str, str]:
        """phone_number_id → the saved name (full name, else first name) of one conversation."""
        C = ContactNameRow
        query = (
            C.select(C.phone_number_id, C.full_name, C.first_name)
            .where(C.conversation_key == conversation_key)
            .tuples()
        )
        with guarded(self.db):
            rows = list(query.execute(self.db))
        return {pnid: (full or first) for pnid, full, first in rows if (full or first)}

    def name_for(self, phone_number_id: str, conversation_key: str) -> str | None:
        """The name saved under this business number; else under any other one of ours."""
        names = self.names_for(conversation_key)
        return names.get(phone_number_id) or next(iter(sorted(names.items())), (None, None))[1]


def _clip(name: str | None) -> str | None:
    if name is None:
        return None
    return utf8_safe(name[:_MAX_NAME_CHARS])
