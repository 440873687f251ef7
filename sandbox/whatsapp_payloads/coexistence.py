"""Coexistence bodies: echoes of what the team sent from the Business app, history, contact and
state sync."""

from __future__ import annotations

from typing import Any

from .bodies import change_body
from .ids import DISPLAY_PHONE, PHONE_NUMBER_ID, new_wamid, timestamp_text
from .messages import Msg


def echo_payload(
    to: str,
    body: str,
    *,
    wamid: str | None = None,
    timestamp: int | str | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone: str = DISPLAY_PHONE,
    echoes: list[Msg] | None = None,
) -> dict[str, Any]:
    """`smb_message_echoes`: the team wrote `body` to `to` from the WhatsApp Business app.

    `from` is the business number and `to` the customer; the content is shaped like a message's
    (`type` and the object of that name). `echoes` replaces the single text echo, e.g. with
    `echo_of(image(...), to)` items.
    """
    echo = {
        "from": display_phone,
        "to": to,
        "id": wamid or new_wamid(to),
        "timestamp": timestamp_text(timestamp),
        "type": "text",
        "text": {"body": body},
    }
    value = {"message_echoes": echoes if echoes is not None else [echo]}
    return change_body(
        "smb_message_echoes", value, phone_number_id=phone_number_id, display_phone=display_phone
    )


def echo_of(message: Msg, to: str, *, display_phone: str = DISPLAY_PHONE) -> Msg:
    """Turn a `messages[]` builder's item into an echo the business sent to `to`."""
    return {"from": display_phone, "to": to} | {
        k: v for k, v in message.items() if k not in ("from", "from_user_id")
    }


def history_message(
    wa_id: str,
    body: str,
    *,
    from_business: bool = False,
    status: str | None = None,
    wamid: str | None = None,
    timestamp: int | str | None = None,
    display_phone: str = DISPLAY_PHONE,
) -> Msg:
    """One `threads[].messages[]` item of a history chunk: the customer's (`from` = them), or the
    business's (`from` = the business number, and `to`, which Meta adds only to those)."""
    msg: Msg = {"from": display_phone if from_business else wa_id}
    if from_business:
        msg["to"] = wa_id
    msg.update(
        id=wamid or new_wamid(wa_id), timestamp=timestamp_text(timestamp), type="text", text={"body": body}
    )
    msg["history_context"] = {"status": status or ("DELIVERED" if from_business else "READ")}
    return msg


def history_payload(
    wa_id: str,
    messages: list[Msg] | None = None,
    *,
    phase: int = 0,
    chunk_order: int = 1,
    progress: int = 100,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone: str = DISPLAY_PHONE,
    threads: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`history`: one chunk of the chat history shared when a coexistence number onboards.

    `phase` is 0 (day 0-1 before onboarding), 1 (days 1-90) or 2 (days 90-180); `chunk_order`
    numbers the chunks, which Meta may deliver out of order; `progress` reaches 100 when the
    whole history was sent. `threads` (one `{"id": wa_id, "messages": [...]}` per customer)
    replaces the single thread of `wa_id` and `messages`.
    """
    if messages is None:
        messages = [history_message(wa_id, "an old message")]
    chunk = {
        "metadata": {"phase": phase, "chunk_order": chunk_order, "progress": progress},
        "threads": threads if threads is not None else [{"id": wa_id, "messages": messages}],
    }
    return change_body(
        "history", {"history": [chunk]}, phone_number_id=phone_number_id, display_phone=display_phone
    )


def history_declined_payload(
    *, phone_number_id: str = PHONE_NUMBER_ID, display_phone: str = DISPLAY_PHONE
) -> dict[str, Any]:
    """`history` when the business declined to share its chat history: `errors[]`, no threads."""
    err = {
        "code": 2593109,
        "title": "History sharing is turned off by user",
        "message": "History sharing is turned off by user",
        "error_data": {"details": "History sharing is turned off by user"},
    }
    chunk = {"metadata": {"phase": 0, "chunk_order": 1, "progress": 100}, "errors": [err]}
    return change_body(
        "history", {"history": [chunk]}, phone_number_id=phone_number_id, display_phone=display_phone
    )


def contact_sync(
    phone_number: str,
    full_name: str | None = None,
    *,
    action: str = "add",
    first_name: str | None = None,
    timestamp: int | str | None = None,
) -> dict[str, Any]:
    """One `state_sync[]` item: the business added or edited (`add`) or removed (`remove`) a
    contact in its WhatsApp Business App; Meta leaves the names out of removals."""
    contact: dict[str, Any] = {}
    if action != "remove":
        name = full_name or "Contact"
        contact.update(full_name=name, first_name=first_name or name.split()[0])
    contact["phone_number"] = phone_number
    return {
        "type": "contact",
        "contact": contact,
        "action": action,
        "metadata": {"timestamp": timestamp_text(timestamp)},
    }


def state_sync_payload(
    items: list[dict[str, Any]], *, phone_number_id: str = PHONE_NUMBER_ID, display_phone: str = DISPLAY_PHONE
) -> dict[str, Any]:
    """`smb_app_state_sync`: contact changes from the WhatsApp Business App (see `contact_sync`)."""
    return change_body(
        "smb_app_state_sync",
        {"state_sync": items},
        phone_number_id=phone_number_id,
        display_phone=display_phone,
    )
