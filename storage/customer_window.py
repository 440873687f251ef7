"""When the customer last wrote, read from the inbound rows: Meta's 24-hour window runs from it."""

from __future__ import annotations

import peewee

from bot.rules.window import LastCustomerMessage
from storage.db import guarded
from storage.models import InboundMessageRow


class CustomerWindow:
    """The AI and outbox jobs' view of the inbound rows; safe from many threads and processes."""

    def __init__(self, db: peewee.Database):
        self.db = db

    def last_customer_message(self, conversation_key: str) -> LastCustomerMessage | None:
        """Meta timestamp and profile name of the customer's latest message, or None.

        The 24-hour window runs from that timestamp. Every stored message the customer sent
        counts, whatever state its Jira delivery is in: the window is Meta's, opened by the
        customer writing, not by our comment landing. That includes their messages in shared
        history (real messages with Meta's timestamps, so at worst an old one); what the
        business sent (echoes, its side of the history) never opens the window.
        The name is the latest profile name the customer had, if any message carried one.
        """
        M = InboundMessageRow
        query = (
            M.select(M.meta_timestamp, M.profile_name)
            .where((M.conversation_key == conversation_key) & (M.from_business == 0))
            .order_by(M.meta_timestamp.desc(), M.id.desc())
            .limit(1)
            .tuples()
        )
        with guarded(self.db):
            row = query.first(self.db)
        if row is None:
            return None
        # Only customers' messages carry profile names, so any named row is theirs.
        return LastCustomerMessage(int(row[0]), row[1] or latest_profile_name(self.db, conversation_key))


def latest_profile_name(db: peewee.Database, conversation_key: str) -> str | None:
    """The profile name of the conversation's latest message that carried one."""
    M = InboundMessageRow
    query = (
        M.select(M.profile_name)
        .where((M.conversation_key == conversation_key) & M.profile_name.is_null(False))
        .order_by(M.meta_timestamp.desc(), M.id.desc())
        .limit(1)
        .tuples()
    )
    with guarded(db):
        found = query.first(db)
    return None if found is None else str(found[0])
