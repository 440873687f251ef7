"""Whole webhook bodies: the envelope, `messages` (with contacts), `statuses` and `errors`."""

from __future__ import annotations

import os
from typing import Any

from .ids import DISPLAY_PHONE, PHONE_NUMBER_ID, WABA_ID, timestamp_text
from .messages import Msg


def contact(name: str, wa_id: str | None, user_id: str | None = None) -> dict[str, Any]:
    """One `contacts[]` entry (the sender's profile)."""
    entry: dict[str, Any] = {"profile": {"name": name}}
    if wa_id is not None:
        entry["wa_id"] = wa_id
    if user_id is not None:
        entry["user_id"] = user_id
    return entry


def change_body(
    field: str, value: dict[str, Any], *, phone_number_id: str, display_phone: str
) -> dict[str, Any]:
    metadata = {"display_phone_number": display_phone, "phone_number_id": phone_number_id}
    full = {"messaging_product": "whatsapp", "metadata": metadata, **value}
    change = {"value": full, "field": field}
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [change]}]}


def message_payload(
    messages: list[Msg],
    *,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone: str = DISPLAY_PHONE,
    contacts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A `messages` webhook; without `contacts`, one `Customer` profile per sender is made up
    (none at all for system messages, as Meta sends them)."""
    if contacts is None:
        senders = dict.fromkeys(m.get("from") for m in messages if m.get("type") != "system")
        contacts = [contact("Customer", s) for s in senders if s is not None]
    value: dict[str, Any] = {"contacts": contacts} if contacts else {}
    value["messages"] = messages
    return change_body("messages", value, phone_number_id=phone_number_id, display_phone=display_phone)


def status_payload(
    wamid: str,
    status: str,
    recipient: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    timestamp: int | str | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone: str = DISPLAY_PHONE,
) -> dict[str, Any]:
    """A delivery status (`sent`, `delivered`, `read`, `failed`) of a message the business sent."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": timestamp_text(timestamp),
        "recipient_id": recipient,
    }
    if status != "failed":  # Meta leaves pricing out of failures
        item["conversation"] = {"id": os.urandom(16).hex(), "origin": {"type": "service"}}
        item["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service"}
    if errors is not None:
        item["errors"] = errors
    return change_body(
        "messages", {"statuses": [item]}, phone_number_id=phone_number_id, display_phone=display_phone
    )


def errors_payload(
    code: int = 131000, title: str = "Something went wrong", *, phone_number_id: str = PHONE_NUMBER_ID
) -> dict[str, Any]:
    """A `messages` change that carries only `errors[]` (no message, no status)."""
    err = {"code": code, "title": title, "message": title, "error_data": {"details": title}}
    return change_body(
        "messages", {"errors": [err]}, phone_number_id=phone_number_id, display_phone=DISPLAY_PHONE
    )
