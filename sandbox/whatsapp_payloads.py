"""Realistic WhatsApp Cloud API webhook bodies, for tests, `wajira demo` and benchmarks.

Shapes follow Meta's webhook reference and `specs/whatsapp-business-messaging-v23.openapi.yaml`
(`WebhookPayload`, `IncomingMessage`, `Statuses`); coexistence fields (`smb_message_echoes`,
`history`, `smb_app_state_sync`) and `edit`/`revoke`/`nfm_reply`, which the spec file does not
describe, follow Meta's webhook reference pages. Message builders return one `messages[]` item; `*_payload` builders
return a whole body.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
from typing import Any

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE = "15550783881"
WABA_ID = "102290129340398"
DEFAULT_WA_ID = "16505551234"

_counter = itertools.count(1)
Msg = dict[str, Any]


def _wamid(wa_id: str, key: str) -> str:
    # Meta's ids are base64 of a small protobuf-like frame: the peer's number, then a
    # 20-character hex message key.
    phone = wa_id.encode()
    frame = b"\x1c\x18" + bytes([len(phone)]) + phone + b"\x15\x02\x00\x12\x18\x14"
    return "wamid." + base64.b64encode(frame + key.encode() + b"\x00").decode()


def new_wamid(wa_id: str = DEFAULT_WA_ID) -> str:
    """A unique id shaped like Meta's (`wamid.HBgL…` for an 11-digit number).

    A process counter in the key guarantees uniqueness; random bytes make ids from different
    runs differ.
    """
    return _wamid(wa_id, f"{next(_counter):06X}{os.urandom(7).hex().upper()}")


def _ts(timestamp: int | str | None) -> str:
    return str(int(time.time()) if timestamp is None else timestamp)


def _message(
    wa_id: str | None,
    kind: str,
    content: Any,
    *,
    wamid: str | None = None,
    timestamp: int | str | None = None,
    context: dict[str, Any] | None = None,
    user_id: str | None = None,
    referral: dict[str, Any] | None = None,
) -> Msg:
    msg: Msg = {}
    if wa_id is not None:
        msg["from"] = wa_id
    if user_id is not None:
        msg["from_user_id"] = user_id
    msg["id"] = wamid or new_wamid(wa_id or DEFAULT_WA_ID)
    msg["timestamp"] = _ts(timestamp)
    if context is not None:
        msg["context"] = context
    if referral is not None:
        msg["referral"] = referral
    msg["type"] = kind
    if content is not None:
        msg[kind] = content
    return msg


def _media_obj(media_id: str | None, mime_type: str, **extra: Any) -> dict[str, Any]:
    obj = {k: v for k, v in extra.items() if v is not None}
    obj.update(
        mime_type=mime_type,
        sha256=base64.b64encode(os.urandom(32)).decode(),
        id=media_id or str(1_000_000_000_000_000 + next(_counter)),
    )
    return obj


# --- messages[] items --------------------------------------------------------------------------
#
# Every builder takes the sender's `wa_id` (None: no `from`, as for a user who hides the phone) and
# these keyword options, passed on as `**opts`:
#   wamid: the message id (a fresh `new_wamid()` when omitted)
#   timestamp: epoch seconds, int or str (now when omitted); sent as a string, like Meta
#   context: the `context` object (replies, forwards, product enquiries)
#   user_id: the business-scoped user id, sent as `from_user_id`
#   referral: a click-to-WhatsApp ad `referral` object


def text(wa_id: str | None, body: str, *, wamid=None, timestamp=None, context=None, **opts) -> Msg:
    return _message(wa_id, "text", {"body": body}, wamid=wamid, timestamp=timestamp, context=context, **opts)


def image(wa_id, *, caption=None, media_id=None, mime_type="image/jpeg", **opts) -> Msg:
    return _message(wa_id, "image", _media_obj(media_id, mime_type, caption=caption), **opts)


def video(wa_id, *, caption=None, media_id=None, mime_type="video/mp4", **opts) -> Msg:
    return _message(wa_id, "video", _media_obj(media_id, mime_type, caption=caption), **opts)


def audio(wa_id, *, voice=False, media_id=None, mime_type=None, **opts) -> Msg:
    # Voice notes arrive as Opus in Ogg; other audio keeps its own type.
    mime = mime_type or ("audio/ogg; codecs=opus" if voice else "audio/mpeg")
    return _message(wa_id, "audio", _media_obj(media_id, mime, voice=voice), **opts)


def document(
    wa_id, *, filename="receipt.pdf", caption=None, media_id=None, mime_type="application/pdf", **opts
) -> Msg:
    content = _media_obj(media_id, mime_type, caption=caption, filename=filename)
    return _message(wa_id, "document", content, **opts)


def sticker(wa_id, *, animated=False, media_id=None, **opts) -> Msg:
    return _message(wa_id, "sticker", _media_obj(media_id, "image/webp", animated=animated), **opts)


def location(
    wa_id, *, latitude=37.44221496582, longitude=-122.16165924072, name=None, address=None, url=None, **opts
) -> Msg:
    content = {"latitude": latitude, "longitude": longitude}
    content.update({k: v for k, v in (("name", name), ("address", address), ("url", url)) if v is not None})
    return _message(wa_id, "location", content, **opts)


_LUCIA = {
    "name": {"formatted_name": "Lucía Gómez", "first_name": "Lucía", "last_name": "Gómez"},
    "phones": [{"phone": "+1 (983) 555-2319", "wa_id": "19835552319", "type": "MOBILE"}],
    "emails": [{"email": "lucia@example.com", "type": "WORK"}],
}


def contacts_msg(wa_id, cards: list[dict[str, Any]] | None = None, **opts) -> Msg:
    cards = cards if cards is not None else [_LUCIA]
    return _message(wa_id, "contacts", None, **opts) | {"contacts": cards}


def _replying(opts: dict[str, Any]) -> dict[str, Any]:
    # Replies to buttons and lists always point at the business message that carried them.
    if opts.get("context") is None:
        opts["context"] = {"from": DISPLAY_PHONE, "id": new_wamid()}
    return opts


def button_reply(wa_id, title: str, *, button_id="btn-1", **opts) -> Msg:
    content = {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}
    return _message(wa_id, "interactive", content, **_replying(opts))


def list_reply(wa_id, title: str, description: str | None = None, *, row_id="row-1", **opts) -> Msg:
    row = {"id": row_id, "title": title}
    if description is not None:
        row["description"] = description
    return _message(wa_id, "interactive", {"type": "list_reply", "list_reply": row}, **_replying(opts))


def nfm_reply(wa_id, answers: dict[str, Any] | str, *, flow_token="FLOW-TOKEN-1", **opts) -> Msg:
    """A completed Flow; `answers` becomes `response_json` (a str is used verbatim, valid or not)."""
    response = answers if isinstance(answers, str) else json.dumps({"flow_token": flow_token, **answers})
    content = {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": response}}
    return _message(wa_id, "interactive", content, **_replying(opts))


def template_button(wa_id, label: str, *, payload=None, **opts) -> Msg:
    """A tap on a template's quick-reply button (`type: button`)."""
    content = {"payload": payload if payload is not None else label, "text": label}
    return _message(wa_id, "button", content, **_replying(opts))


def reaction(wa_id, message_id: str, emoji: str = "👍", **opts) -> Msg:
    """`emoji=""` is how Meta reports a removed reaction."""
    return _message(wa_id, "reaction", {"message_id": message_id, "emoji": emoji}, **opts)


_CART = [
    {"product_retailer_id": "di9ozbzfi4", "quantity": 2, "item_price": 30, "currency": "USD"},
    {"product_retailer_id": "nqryix03ez", "quantity": 1, "item_price": 25, "currency": "USD"},
]


def order(
    wa_id, items: list[dict[str, Any]] | None = None, *, catalog_id="194836987003835", note="", **opts
) -> Msg:
    content = {"catalog_id": catalog_id, "text": note, "product_items": items if items is not None else _CART}
    return _message(wa_id, "order", content, **opts)


def system(wa_id, new_wa_id: str, *, name="Sheena Nelson", **opts) -> Msg:
    """`user_changed_number`; Meta sends these without a `contacts[]` entry."""
    body = f"User {name} changed from {wa_id} to {new_wa_id}"
    content = {"body": body, "wa_id": new_wa_id, "type": "user_changed_number"}
    return _message(wa_id, "system", content, **opts)


def edit(wa_id, original_message_id: str, new_body: str, **opts) -> Msg:
    """The customer edited a message (coexistence numbers): the new content, nested."""
    new = {"type": "text", "text": {"body": new_body}}
    return _message(wa_id, "edit", {"original_message_id": original_message_id, "message": new}, **opts)


def revoke(wa_id, original_message_id: str, **opts) -> Msg:
    """The customer deleted a message for everyone (coexistence numbers)."""
    return _message(wa_id, "revoke", {"original_message_id": original_message_id}, **opts)


_UNSUPPORTED_ERROR = {
    "code": 131051,
    "title": "Message type unknown",
    "message": "Message type unknown",
    "error_data": {"details": "Message type is currently not supported."},
}


def unsupported(wa_id, **opts) -> Msg:
    return _message(wa_id, "unsupported", None, **opts) | {"errors": [dict(_UNSUPPORTED_ERROR)]}


def unknown_type(wa_id, type_name: str, **opts) -> Msg:
    """A `type` Meta may invent tomorrow, carrying an object of the same name."""
    return _message(wa_id, type_name, {"note": "new in a future API"}, **opts)


# --- whole bodies ------------------------------------------------------------------------------


def contact(name: str, wa_id: str | None, user_id: str | None = None) -> dict[str, Any]:
    """One `contacts[]` entry (the sender's profile)."""
    entry: dict[str, Any] = {"profile": {"name": name}}
    if wa_id is not None:
        entry["wa_id"] = wa_id
    if user_id is not None:
        entry["user_id"] = user_id
    return entry


def _body(field: str, value: dict[str, Any], *, phone_number_id: str, display_phone: str) -> dict[str, Any]:
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
    return _body("messages", value, phone_number_id=phone_number_id, display_phone=display_phone)


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
        "timestamp": _ts(timestamp),
        "recipient_id": recipient,
    }
    if status != "failed":  # Meta leaves pricing out of failures
        item["conversation"] = {"id": os.urandom(16).hex(), "origin": {"type": "service"}}
        item["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service"}
    if errors is not None:
        item["errors"] = errors
    return _body(
        "messages", {"statuses": [item]}, phone_number_id=phone_number_id, display_phone=display_phone
    )


def errors_payload(
    code: int = 131000, title: str = "Something went wrong", *, phone_number_id: str = PHONE_NUMBER_ID
) -> dict[str, Any]:
    """A `messages` change that carries only `errors[]` (no message, no status)."""
    err = {"code": code, "title": title, "message": title, "error_data": {"details": title}}
    return _body("messages", {"errors": [err]}, phone_number_id=phone_number_id, display_phone=DISPLAY_PHONE)


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
        "timestamp": _ts(timestamp),
        "type": "text",
        "text": {"body": body},
    }
    value = {"message_echoes": echoes if echoes is not None else [echo]}
    return _body("smb_message_echoes", value, phone_number_id=phone_number_id, display_phone=display_phone)


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
    msg.update(id=wamid or new_wamid(wa_id), timestamp=_ts(timestamp), type="text", text={"body": body})
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
    return _body(
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
    return _body(
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
        "metadata": {"timestamp": _ts(timestamp)},
    }


def state_sync_payload(
    items: list[dict[str, Any]], *, phone_number_id: str = PHONE_NUMBER_ID, display_phone: str = DISPLAY_PHONE
) -> dict[str, Any]:
    """`smb_app_state_sync`: contact changes from the WhatsApp Business App (see `contact_sync`)."""
    return _body(
        "smb_app_state_sync",
        {"state_sync": items},
        phone_number_id=phone_number_id,
        display_phone=display_phone,
    )


def _fixed_wamid(n: int) -> str:
    # Deterministic ids keep ALL_KINDS identical across test workers.
    return _wamid(DEFAULT_WA_ID, f"{n:020X}")


ORIGINAL = _fixed_wamid(0)
"""The earlier message that reactions, edits, revokes and button replies in ALL_KINDS refer to."""
_W = DEFAULT_WA_ID
_REPLY = {"from": DISPLAY_PHONE, "id": ORIGINAL}


def _at(n: int) -> dict[str, Any]:
    return {"wamid": _fixed_wamid(n), "timestamp": 1749416383}


# (case label, message): every kind the renderer must handle, one realistic example each.
# The label is unique; the message's `type` is Meta's kind (three cases are `interactive`).
ALL_KINDS: list[tuple[str, Msg]] = [
    ("text", text(_W, "Does it come in another color?", **_at(1))),
    ("image", image(_W, caption="Taj Mahal", media_id="1003383421387256", **_at(2))),
    ("video", video(_W, caption="My vacation video", media_id="1003383421387257", **_at(3))),
    ("audio", audio(_W, media_id="1003383421387258", **_at(4))),
    ("voice", audio(_W, voice=True, media_id="1003383421387259", **_at(5))),
    ("document", document(_W, caption="My receipt", media_id="1003383421387260", **_at(6))),
    ("sticker", sticker(_W, animated=True, media_id="1003383421387261", **_at(7))),
    ("location", location(_W, name="Philz Coffee", address="101 Forest Ave, Palo Alto, CA 94301", **_at(8))),
    ("contacts", contacts_msg(_W, **_at(9))),
    ("button_reply", button_reply(_W, "Cancel", context=_REPLY, **_at(10))),
    ("list_reply", list_reply(_W, "Priority Mail Express", "Next Day to 2 Days", context=_REPLY, **_at(11))),
    ("nfm_reply", nfm_reply(_W, {"name": "Ana", "size": "M"}, context=_REPLY, **_at(12))),
    ("template_button", template_button(_W, "Unsubscribe", context=_REPLY, **_at(13))),
    ("reaction", reaction(_W, ORIGINAL, "👍", **_at(14))),
    ("reaction_removed", reaction(_W, ORIGINAL, "", **_at(15))),
    ("order", order(_W, **_at(16))),
    ("system", system(_W, "12195555358", **_at(17))),
    ("edit", edit(_W, ORIGINAL, "Actually, blue please", **_at(18))),
    ("revoke", revoke(_W, ORIGINAL, **_at(19))),
    ("unsupported", unsupported(_W, **_at(20))),
    ("unknown_type", unknown_type(_W, "hologram", **_at(21))),
]
