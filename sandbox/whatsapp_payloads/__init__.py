"""Realistic WhatsApp Cloud API webhook bodies, for tests, `wajira demo` and benchmarks.

Shapes follow Meta's webhook reference and `specs/whatsapp-business-messaging-v23.openapi.yaml`
(`WebhookPayload`, `IncomingMessage`, `Statuses`); coexistence fields (`smb_message_echoes`,
`history`, `smb_app_state_sync`) and `edit`/`revoke`/`nfm_reply`, which the spec file does not
describe, follow Meta's webhook reference pages. Message builders return one `messages[]` item; `*_payload` builders
return a whole body.

The package is split by message family: ids.py (the business number, wamids), messages.py (one
builder per kind), bodies.py (the webhook envelope, statuses, errors), coexistence.py (echoes,
history, sync) and kinds.py (ALL_KINDS); callers import everything from here.
"""

from __future__ import annotations

from .bodies import change_body, contact, errors_payload, message_payload, status_payload
from .coexistence import (
    contact_sync,
    echo_of,
    echo_payload,
    history_declined_payload,
    history_message,
    history_payload,
    state_sync_payload,
)
from .ids import (
    DEFAULT_WA_ID,
    DISPLAY_PHONE,
    PHONE_NUMBER_ID,
    WABA_ID,
    new_wamid,
    serial,
    timestamp_text,
    wamid_for,
)
from .kinds import ALL_KINDS, ORIGINAL
from .messages import (
    Msg,
    audio,
    button_reply,
    contacts_msg,
    document,
    edit,
    image,
    list_reply,
    location,
    nfm_reply,
    order,
    reaction,
    revoke,
    sticker,
    system,
    template_button,
    text,
    unknown_type,
    unsupported,
    video,
)

__all__ = [
    "ALL_KINDS",
    "DEFAULT_WA_ID",
    "DISPLAY_PHONE",
    "ORIGINAL",
    "PHONE_NUMBER_ID",
    "WABA_ID",
    "Msg",
    "audio",
    "button_reply",
    "change_body",
    "contact",
    "contact_sync",
    "contacts_msg",
    "document",
    "echo_of",
    "echo_payload",
    "edit",
    "errors_payload",
    "history_declined_payload",
    "history_message",
    "history_payload",
    "image",
    "list_reply",
    "location",
    "message_payload",
    "new_wamid",
    "nfm_reply",
    "order",
    "reaction",
    "revoke",
    "serial",
    "state_sync_payload",
    "status_payload",
    "sticker",
    "system",
    "template_button",
    "text",
    "timestamp_text",
    "unknown_type",
    "unsupported",
    "video",
    "wamid_for",
]
