"""Realistic WhatsApp Cloud API webhook bodies, for tests, `wajira demo` and benchmarks.

Shapes follow Meta's webhook reference and `specs/whatsapp-business-messaging-v23.openapi.yaml`
(`WebhookPayload`, `IncomingMessage`, `Statuses`); coexistence fields (`smb_message_echoes`,
`history`) and `edit`/`revoke`/`nfm_reply`, which the spec file does not describe, follow Meta's
webhook reference pages. Message builders return one `messages[]` item; `*_payload` builders
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
    wamid: str | None,
    timestamp: int | str | None,
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


def text(wa_id: str | None, body: str, *, wamid=None, timestamp=None, context=None, **kw) -> Msg:
    """`**kw`: `user_id` (sets `from_user_id`), `referral` (a click-to-WhatsApp ad)."""
    return _message(wa_id, "text", {"body": body}, wamid=wamid, timestamp=timestamp, context=context, **kw)


def image(wa_id, *, caption=None, media_id=None, mime_type="image/jpeg", wamid=None, timestamp=None, context=None, **kw) -> Msg:
    content = _media_obj(media_id, mime_type, caption=caption)
    return _message(wa_id, "image", content, wamid=wamid, timestamp=timestamp, context=context, **kw)


def video(wa_id, *, caption=None, media_id=None, mime_type="video/mp4", wamid=None, timestamp=None, context=None, **kw) -> Msg:
    content = _media_obj(media_id, mime_type, caption=caption)
    return _message(wa_id, "video", content, wamid=wamid, timestamp=timestamp, context=context, **kw)


def audio(wa_id, *, voice=False, media_id=None, mime_type=None, wamid=None, timestamp=None, context=None, **kw) -> Msg:
    # Voice notes arrive as Opus in Ogg; other audio keeps its own type.
    mime = mime_type or ("audio/ogg; codecs=opus" if voice else "audio/mpeg")
    content = _media_obj(media_id, mime, voice=voice)
    return _message(wa_id, "audio", content, wamid=wamid, timestamp=timestamp, context=context, **kw)


def document(wa_id, *, filename="receipt.pdf", caption=None, media_id=None, mime_type="application/pdf", wamid=None, timestamp=None, context=None, **kw) -> Msg:
    content = _media_obj(media_id, mime_type, caption=caption, filename=filename)
    return _message(wa_id, "document", content, wamid=wamid, timestamp=timestamp, context=context, **kw)


def sticker(wa_id, *, animated=False, media_id=None, wamid=None, timestamp=None, context=None, **kw) -> Msg:
    content = _media_obj(media_id, "image/webp", animated=animated)
    return _message(wa_id, "sticker", content, wamid=wamid, timestamp=timestamp, context=context, **kw)


def location(wa_id, *, latitude=37.44221496582, longitude=-122.16165924072, name=None, address=None, url=None, wamid=None, timestamp=None, context=None, **kw) -> Msg:
    content = {"latitude": latitude, "longitude": longitude}
    content.update({k: v for k, v in (("name", name), ("address", address), ("url", url)) if v is not None})
    return _message(wa_id, "location", content, wamid=wamid, timestamp=timestamp, context=context, **kw)


def contacts_msg(wa_id, cards: list[dict[str, Any]] | None = None, *, wamid=None, timestamp=None, context=None, **kw) -> Msg:
    cards = cards if cards is not None else [{
        "name": {"formatted_name": "Lucía Gómez", "first_name": "Lucía", "last_name": "Gómez"},
        "phones": [{"phone": "+1 (983) 555-2319", "wa_id": "19835552319", "type": "MOBILE"}],
        "emails": [{"email": "lucia@example.com", "type": "WORK"}],
    }]
    return _message(wa_id, "contacts", None, wamid=wamid, timestamp=timestamp, context=context, **kw) | {"contacts": cards}


def _business_context(context: dict[str, Any] | None) -> dict[str, Any]:
    # Replies to buttons and lists always point at the business message that carried them.
    return context or {"from": DISPLAY_PHONE, "id": new_wamid()}


def button_reply(wa_id, title: str, *, button_id="btn-1", wamid=None, timestamp=None, context=None, **kw) -> Msg:
    content = {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}
    return _message(wa_id, "interactive", content, wamid=wamid, timestamp=timestamp, context=_business_context(context), **kw)


def list_reply(wa_id, title: str, description: str | None = None, *, row_id="row-1", wamid=None, timestamp=None, context=None, **kw) -> Msg:
    row = {"id": row_id, "title": title} | ({"description": description} if description is not None else {})
    content = {"type": "list_reply", "list_reply": row}
    return _message(wa_id, "interactive", content, wamid=wamid, timestamp=timestamp, context=_business_context(context), **kw)


def nfm_reply(wa_id, answers: dict[str, Any] | str, *, flow_token="FLOW-TOKEN-1", wamid=None, timestamp=None, context=None, **kw) -> Msg:
    """A completed Flow; `answers` becomes `response_json` (a str is used verbatim, valid or not)."""
    response = answers if isinstance(answers, str) else json.dumps({"flow_token": flow_token, **answers})
    content = {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": response}}
    return _message(wa_id, "interactive", content, wamid=wamid, timestamp=timestamp, context=_business_context(context), **kw)


def template_button(wa_id, label: str, *, payload=None, wamid=None, timestamp=None, context=None, **kw) -> Msg:
    content = {"payload": payload if payload is not None else label, "text": label}
    return _message(wa_id, "button", content, wamid=wamid, timestamp=timestamp, context=_business_context(context), **kw)


def reaction(wa_id, message_id: str, emoji: str = "👍", *, wamid=None, timestamp=None, **kw) -> Msg:
    """`emoji=""` is how Meta reports a removed reaction."""
    content = {"message_id": message_id, "emoji": emoji}
    return _message(wa_id, "reaction", content, wamid=wamid, timestamp=timestamp, **kw)


def order(wa_id, items: list[dict[str, Any]] | None = None, *, catalog_id="194836987003835", note="", wamid=None, timestamp=None, context=None, **kw) -> Msg:
    items = items if items is not None else [
        {"product_retailer_id": "di9ozbzfi4", "quantity": 2, "item_price": 30, "currency": "USD"},
        {"product_retailer_id": "nqryix03ez", "quantity": 1, "item_price": 25, "currency": "USD"},
    ]
    content = {"catalog_id": catalog_id, "text": note, "product_items": items}
    return _message(wa_id, "order", content, wamid=wamid, timestamp=timestamp, context=context, **kw)


def system(wa_id, new_wa_id: str, *, name="Sheena Nelson", wamid=None, timestamp=None) -> Msg:
    body = f"User {name} changed from {wa_id} to {new_wa_id}"
    content = {"body": body, "wa_id": new_wa_id, "type": "user_changed_number"}
    return _message(wa_id, "system", content, wamid=wamid, timestamp=timestamp)


def edit(wa_id, original_message_id: str, new_body: str, *, wamid=None, timestamp=None, **kw) -> Msg:
    content = {"original_message_id": original_message_id, "message": {"type": "text", "text": {"body": new_body}}}
    return _message(wa_id, "edit", content, wamid=wamid, timestamp=timestamp, **kw)


def revoke(wa_id, original_message_id: str, *, wamid=None, timestamp=None, **kw) -> Msg:
    content = {"original_message_id": original_message_id}
    return _message(wa_id, "revoke", content, wamid=wamid, timestamp=timestamp, **kw)


_UNSUPPORTED_ERROR = {
    "code": 131051,
    "title": "Message type unknown",
    "message": "Message type unknown",
    "error_data": {"details": "Message type is currently not supported."},
}


def unsupported(wa_id, *, wamid=None, timestamp=None, **kw) -> Msg:
    return _message(wa_id, "unsupported", None, wamid=wamid, timestamp=timestamp, **kw) | {"errors": [dict(_UNSUPPORTED_ERROR)]}


def unknown_type(wa_id, type_name: str, *, wamid=None, timestamp=None, **kw) -> Msg:
    """A `type` Meta may invent tomorrow, carrying an object of the same name."""
    return _message(wa_id, type_name, {"note": "new in a future API"}, wamid=wamid, timestamp=timestamp, **kw)


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
    full = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": display_phone, "phone_number_id": phone_number_id}}
    full.update(value)
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{"value": full, "field": field}]}]}


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


def status_payload(wamid: str, status: str, recipient: str, *, errors=None, timestamp=None, phone_number_id=PHONE_NUMBER_ID, display_phone=DISPLAY_PHONE) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": _ts(timestamp), "recipient_id": recipient}
    if status != "failed":
        item["conversation"] = {"id": os.urandom(16).hex(), "origin": {"type": "service"}}
        item["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service"}
    if errors is not None:
        item["errors"] = errors
    return _body("messages", {"statuses": [item]}, phone_number_id=phone_number_id, display_phone=display_phone)


def errors_payload(code=131000, title="Something went wrong", *, phone_number_id=PHONE_NUMBER_ID) -> dict[str, Any]:
    """A `messages` change that carries only `errors[]` (no message, no status)."""
    err = {"code": code, "title": title, "message": title, "error_data": {"details": title}}
    return _body("messages", {"errors": [err]}, phone_number_id=phone_number_id, display_phone=DISPLAY_PHONE)


def echo_payload(to: str, body: str, *, wamid=None, timestamp=None, phone_number_id=PHONE_NUMBER_ID, display_phone=DISPLAY_PHONE) -> dict[str, Any]:
    """`smb_message_echoes`: the team wrote `body` to `to` from the WhatsApp Business app."""
    echo = {"from": display_phone, "to": to, "id": wamid or new_wamid(to), "timestamp": _ts(timestamp), "type": "text", "text": {"body": body}}
    return _body("smb_message_echoes", {"message_echoes": [echo]}, phone_number_id=phone_number_id, display_phone=display_phone)


def history_payload(wa_id: str, messages: list[Msg] | None = None, *, phase=0, chunk_order=1, progress=100, phone_number_id=PHONE_NUMBER_ID, display_phone=DISPLAY_PHONE) -> dict[str, Any]:
    """`history`: one chunk of the chat history shared when a coexistence number onboards."""
    messages = messages if messages is not None else [text(wa_id, "an old message") | {"history_context": {"status": "READ"}}]
    chunk = {"metadata": {"phase": phase, "chunk_order": chunk_order, "progress": progress}, "threads": [{"id": wa_id, "messages": messages}]}
    return _body("history", {"history": [chunk]}, phone_number_id=phone_number_id, display_phone=display_phone)


def _fixed_wamid(n: int) -> str:
    # Deterministic ids keep ALL_KINDS identical across test workers.
    return _wamid(DEFAULT_WA_ID, f"{n:020X}")


_W = DEFAULT_WA_ID
_T = 1749416383
ORIGINAL = _fixed_wamid(0)

# (case label, message): every kind the renderer must handle, one realistic example each.
ALL_KINDS: list[tuple[str, Msg]] = [
    ("text", text(_W, "Does it come in another color?", wamid=_fixed_wamid(1), timestamp=_T)),
    ("image", image(_W, caption="Taj Mahal", media_id="1003383421387256", wamid=_fixed_wamid(2), timestamp=_T)),
    ("video", video(_W, caption="My vacation video", media_id="1003383421387257", wamid=_fixed_wamid(3), timestamp=_T)),
    ("audio", audio(_W, media_id="1003383421387258", wamid=_fixed_wamid(4), timestamp=_T)),
    ("voice", audio(_W, voice=True, media_id="1003383421387259", wamid=_fixed_wamid(5), timestamp=_T)),
    ("document", document(_W, caption="My receipt", media_id="1003383421387260", wamid=_fixed_wamid(6), timestamp=_T)),
    ("sticker", sticker(_W, animated=True, media_id="1003383421387261", wamid=_fixed_wamid(7), timestamp=_T)),
    ("location", location(_W, name="Philz Coffee", address="101 Forest Ave, Palo Alto, CA 94301", wamid=_fixed_wamid(8), timestamp=_T)),
    ("contacts", contacts_msg(_W, wamid=_fixed_wamid(9), timestamp=_T)),
    ("button_reply", button_reply(_W, "Cancel", context={"from": DISPLAY_PHONE, "id": ORIGINAL}, wamid=_fixed_wamid(10), timestamp=_T)),
    ("list_reply", list_reply(_W, "Priority Mail Express", "Next Day to 2 Days", context={"from": DISPLAY_PHONE, "id": ORIGINAL}, wamid=_fixed_wamid(11), timestamp=_T)),
    ("nfm_reply", nfm_reply(_W, {"name": "Ana", "size": "M"}, context={"from": DISPLAY_PHONE, "id": ORIGINAL}, wamid=_fixed_wamid(12), timestamp=_T)),
    ("template_button", template_button(_W, "Unsubscribe", context={"from": DISPLAY_PHONE, "id": ORIGINAL}, wamid=_fixed_wamid(13), timestamp=_T)),
    ("reaction", reaction(_W, ORIGINAL, "👍", wamid=_fixed_wamid(14), timestamp=_T)),
    ("reaction_removed", reaction(_W, ORIGINAL, "", wamid=_fixed_wamid(15), timestamp=_T)),
    ("order", order(_W, wamid=_fixed_wamid(16), timestamp=_T)),
    ("system", system(_W, "12195555358", wamid=_fixed_wamid(17), timestamp=_T)),
    ("edit", edit(_W, ORIGINAL, "Actually, blue please", wamid=_fixed_wamid(18), timestamp=_T)),
    ("revoke", revoke(_W, ORIGINAL, wamid=_fixed_wamid(19), timestamp=_T)),
    ("unsupported", unsupported(_W, wamid=_fixed_wamid(20), timestamp=_T)),
    ("unknown_type", unknown_type(_W, "hologram", wamid=_fixed_wamid(21), timestamp=_T)),
]
