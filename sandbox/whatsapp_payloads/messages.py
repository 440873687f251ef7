"""Builders of one `messages[]` item each: every kind of message a customer can send."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from .ids import DEFAULT_WA_ID, DISPLAY_PHONE, new_wamid, serial, timestamp_text

Msg = dict[str, Any]


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
    msg["timestamp"] = timestamp_text(timestamp)
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
        id=media_id or str(1_000_000_000_000_000 + serial()),
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
