"""Which conversation a stored message belongs to, once the service is known.

A WhatsApp chat is one customer and one business number. The default service keeps the bare
key (the seed's one ticket per phone); a conversation with a number routed to another service
gets that service in its key, so a customer writing to two businesses' numbers has two tickets,
each answered from the number it wrote to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bot.rules.events import InboundMessage, ParsedBatch

SERVICE_SEPARATOR = "#"


def service_key(conversation_key: str, service_id: str, *, default: bool) -> str:
    return conversation_key if default else f"{conversation_key}{SERVICE_SEPARATOR}{service_id}"


def phone_of(conversation_key: str) -> str:
    """The customer part of a key: `+525512345678#sales` → `+525512345678`."""
    return conversation_key.split(SERVICE_SEPARATOR, 1)[0]


def route_batch(
    batch: ParsedBatch,
    service_of: Callable[[str], tuple[str, bool]],
    known_user: Callable[[str, str], str | None],
) -> ParsedBatch:
    """Give each message its conversation key for the service its business number routes to.

    Args:
        service_of: phone_number_id → (service id, is the default service).
        known_user: (user id, service id) → the key of an existing conversation with that user,
            so a customer who stops showing their phone (a username) keeps their ticket.
    """
    if not batch.messages:
        return batch

    def routed(m: InboundMessage) -> InboundMessage:
        service_id, default = service_of(m.phone_number_id)
        key = service_key(m.conversation_key, service_id, default=default)
        if m.conversation_key.startswith("user:") and m.user_id:
            key = known_user(m.user_id, service_id) or key
        return m if key == m.conversation_key else dataclasses.replace(m, conversation_key=key)

    return dataclasses.replace(batch, messages=tuple(routed(m) for m in batch.messages))
