"""Who a WhatsApp message goes to, and how the Graph API's message envelope names them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.rules.phones import mask_phone


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to: a phone (`wa_id`) or, for users who hide theirs, the
    business-scoped user id Meta sent as `from_user_id` / `contacts[].user_id`."""

    wa_id: str | None = None
    user_id: str | None = None

    def __post_init__(self) -> None:
        if not self.wa_id and not self.user_id:
            raise ValueError("a Recipient needs a wa_id or a user_id")

    @property
    def address(self) -> str:
        return self.wa_id or self.user_id or ""

    def envelope_fields(self) -> dict[str, str]:
        # `to` is a phone (or group id). Meta's BSUID guide, newer than the v23 spec, adds
        # `recipient` for business-scoped user ids; with both, Meta uses `to`. A phone, when we
        # have one, wins: Meta recommends it, and it keeps phone fields in later webhooks.
        return {"to": self.wa_id} if self.wa_id else {"recipient": self.user_id or ""}

    def masked(self) -> str:
        return mask_phone(self.wa_id) if self.wa_id else mask_phone(f"user:{self.user_id}")


def envelope(to: Recipient) -> dict[str, Any]:
    """The fields every message to one person starts with (`POST /{phone-number-id}/messages`)."""
    return {"messaging_product": "whatsapp", "recipient_type": "individual", **to.envelope_fields()}
