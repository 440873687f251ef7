"""What a WhatsApp webhook delivery means, as plain data.

`bot.rules.payload.parse_webhook` turns Meta's JSON into these records; storage keeps them;
the inbox job renders them. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InboundMessage:
    """One message of a conversation with a customer: what they sent to a business number
    (`value.messages[]`), or, on a coexistence number, what the team sent from the WhatsApp
    Business App (`message_echoes[]`) and the shared chat history (`history[]`)."""

    wamid: str
    """Meta's message id; the dedupe key of the inbound queue."""
    conversation_key: str
    """Who the conversation is with: canonical E.164 (`+5215512345678` -> `+525512345678`)
    from `bot.rules.phones.conversation_key_for_phone`, or `user:<id>` for a business-scoped
    user id when Meta sent no phone."""
    wa_id: str | None
    """`from` exactly as Meta sent it: the address replies must go to."""
    user_id: str | None
    """Business-scoped user id (`from_user_id` / contacts[].user_id) when present."""
    phone_number_id: str
    """`metadata.phone_number_id` of the business number that received it (routing key)."""
    display_phone_number: str | None
    profile_name: str | None
    timestamp: int
    """Meta's `timestamp`, epoch seconds."""
    kind: str
    """Meta's `type` (`text`, `image`, ..., or whatever unknown string Meta sent)."""
    raw: dict[str, Any]
    """The message object exactly as Meta sent it."""
    origin: str = "customer"
    """Where it came from: `customer` (`messages`), `echo` (`smb_message_echoes`: the team wrote
    it in the WhatsApp Business App) or `history` (`history`: shared chat history)."""
    from_business: bool = False
    """The business sent it (every echo; history items whose `from` is the business number).
    For those, `wa_id` and `conversation_key` still name the customer."""


@dataclass(frozen=True)
class ContactSync:
    """One `smb_app_state_sync` contact change: the name the business saved in its app."""

    phone_number_id: str
    conversation_key: str
    """Of the contact's `phone_number`, as for messages."""
    full_name: str | None
    """None when the contact was removed (Meta sends no name then)."""
    first_name: str | None
    action: str
    """`add` (added or edited) or `remove`; any other string Meta adds is kept as is."""
    timestamp: int
    """`metadata.timestamp`: later changes win, whatever order they arrive in."""
    raw: dict[str, Any]


@dataclass(frozen=True)
class StatusEvent:
    """A delivery status of a message the business sent (`value.statuses[]`)."""

    wamid: str
    status: str
    """`sent`, `delivered`, `read`, `failed`, or another string Meta may add."""
    timestamp: int
    recipient_id: str | None
    phone_number_id: str
    errors: tuple[dict[str, Any], ...]
    raw: dict[str, Any]


@dataclass(frozen=True)
class OtherEvent:
    """A change we store but do not act on (errors-only changes, declined history, parts of a
    coexistence change we could not read, unknown fields).

    Stored raw so nothing Meta sent is silently dropped.
    """

    field: str
    """`changes[].field`."""
    dedupe_key: str
    """sha256 hex of the canonical JSON of `raw`: a redelivery is stored once."""
    phone_number_id: str | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class ParsedBatch:
    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusEvent, ...] = ()
    others: tuple[OtherEvent, ...] = ()
    contacts: tuple[ContactSync, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.messages or self.statuses or self.others or self.contacts)


@dataclass  # not frozen: pytest and hypothesis attach notes to exceptions they report
class PayloadError(ValueError):
    """The body is JSON but not a WhatsApp webhook we can store; `path` points into it."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class RenderedComment:
    """Plain text of a Jira comment; the Jira adapter turns it into ADF or escaped wiki markup."""

    text: str
    media: tuple[str, ...] = field(default=())
    """Media ids the message carries (downloaded later); empty for non-media kinds."""
