"""Render an inbound WhatsApp message as the plain text of a Jira comment.

Output is PLAIN TEXT only: markup safety is the Jira side's job (`adf.py` puts the text in a
mark-less text node, `wiki.py` escapes it for Server/DC). Every kind renders to something, and odd
or missing fields degrade to a shorter line instead of an exception: a message that cannot be
rendered would block its conversation's queue.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from bot.rules.events import RenderedComment
from bot.rules.media import attachment_name

FALLBACK_NAME = "WhatsApp user"
MAX_NAME_CHARS = 100
SUMMARY_MAX_CHARS = 255  # Jira's limit for the summary field

_MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
# Bidi overrides/isolates let a name visually reorder the text after it (spoofing in Jira).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SPACES = re.compile(r"\s+")
_MAX_EDIT_DEPTH = 3

Body = tuple[str, tuple[str, ...]]


def sanitize_name(name: object) -> str:
    """One-line, trimmed, at most 100 characters; empty when nothing printable is left."""
    return _one_line(name, MAX_NAME_CHARS)


def _one_line(value: object, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    kept = []
    for ch in value:
        cat = unicodedata.category(ch)
        if cat in ("Zl", "Zp") or ch in "\t\n\r\v\f":
            kept.append(" ")
        elif cat == "Cc" or cat == "Cs" or ch in _BIDI_CONTROLS:
            continue
        else:
            kept.append(ch)
    return _SPACES.sub(" ", "".join(kept)).strip()[:limit].rstrip()


def _obj(parent: object, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _list(parent: object, key: str) -> list[dict[str, Any]]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _s(parent: object, key: str) -> str:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value.strip() if isinstance(value, str) else ""


def _num(value: object) -> str:
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return value.strip()
    return ""


def _join(*parts: str, sep: str = " ") -> str:
    return sep.join(p for p in parts if p)


def _media(kind: str, msg: dict[str, Any], depth: int) -> Body:
    media = _obj(msg, kind)
    label = "voice" if kind == "audio" and media.get("voice") is True else kind
    detail = _s(media, "caption")
    if kind == "document":
        detail = _join(_s(media, "filename"), detail, sep=" — ")
    if kind == "sticker" and media.get("animated") is True:
        detail = _join("(animated)", detail)
    media_id = _s(media, "id")
    # Only a message's own medium is downloaded (an edit's is the original's): only it is named.
    name = attachment_name(kind, msg) if depth == 0 and media_id else None
    attached = f"(attached: {name})" if name else ""
    return _join(f"[{label}]", detail, attached), (media_id,) if media_id else ()


def _text(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    return _s(_obj(msg, "text"), "body") or "[empty text]", ()


def _location(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    loc = _obj(msg, "location")
    text = _join("[location]", _join(_s(loc, "name"), _s(loc, "address"), sep=", "))
    lat, lon = _num(loc.get("latitude")), _num(loc.get("longitude"))
    if lat and lon:
        text += f" ({lat}, {lon}) https://maps.google.com/?q={lat},{lon}"
    return _join(text, _s(loc, "url")), ()


def _contact_line(card: dict[str, Any]) -> str:
    names = _obj(card, "name")
    who = _s(names, "formatted_name") or _join(_s(names, "first_name"), _s(names, "last_name"))
    details = [_s(p, "phone") or _s(p, "wa_id") for p in _list(card, "phones")]
    details += [_s(e, "email") for e in _list(card, "emails")]
    details = [d for d in details if d]
    return _join(who or "(no name)", f"({', '.join(details)})" if details else "")


def _contacts(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    cards = _list(msg, "contacts")
    return _join("[contacts]", "; ".join(_contact_line(c) for c in cards)), ()


def _flow_value(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "…"


def _flow(reply: dict[str, Any]) -> str:
    response = reply.get("response_json")
    data: object = response
    if isinstance(response, str):
        try:
            data = json.loads(response)
        except (ValueError, RecursionError):
            return _join("[flow]", response.strip())
    if not isinstance(data, dict):
        shown = response if isinstance(response, str) else _s(reply, "body")
        return _join("[flow]", shown.strip() if isinstance(shown, str) else "")
    # flow_token is our own correlation id, not something the customer answered.
    fields = [f"{k}: {_flow_value(v)}" for k, v in data.items() if k != "flow_token"]
    return _join("[flow]", ", ".join(fields) or "(no answers)")


def _interactive(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    inter = _obj(msg, "interactive")
    sub = _s(inter, "type")
    if sub == "button_reply":
        reply = _obj(inter, "button_reply")
        return _join("[button]", _s(reply, "title") or _s(reply, "id")), ()
    if sub == "list_reply":
        reply = _obj(inter, "list_reply")
        title = _s(reply, "title") or _s(reply, "id")
        return _join("[list]", _join(title, _s(reply, "description"), sep=" — ")), ()
    if sub == "nfm_reply":
        return _flow(_obj(inter, "nfm_reply")), ()
    return f"[interactive: {_one_line(sub, 50) or 'unknown'}]", ()


def _button(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    button = _obj(msg, "button")
    return _join("[button]", _s(button, "text") or _s(button, "payload")), ()


def _reaction(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    reaction = _obj(msg, "reaction")
    target = _s(reaction, "message_id") or "?"
    emoji = _s(reaction, "emoji")
    if emoji:
        return f"[reaction] {emoji} to message {target}", ()
    return f"[reaction removed] on message {target}", ()


def _order_item(item: dict[str, Any]) -> str:
    qty = _num(item.get("quantity")) or "?"
    product = _s(item, "product_retailer_id") or "?"
    price = _join(_num(item.get("item_price")), _s(item, "currency"))
    return f"{qty} × {product}" + (f" @ {price}" if price else "")


def _order(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    order = _obj(msg, "order")
    items = _list(order, "product_items")
    count = f"{len(items)} item" + ("" if len(items) == 1 else "s")
    text = f"[order] catalog {_s(order, 'catalog_id') or '?'}, {count}"
    if items:
        text += " (" + ", ".join(_order_item(i) for i in items) + ")"
    note = _s(order, "text")
    return (f"{text}\n{note}" if note else text), ()


def _system(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    system = _obj(msg, "system")
    return _join("[system]", _s(system, "body") or _s(system, "type")), ()


def _edit(kind: str, msg: dict[str, Any], depth: int) -> Body:
    edit = _obj(msg, "edit")
    original = _s(edit, "original_message_id") or "?"
    inner = _obj(edit, "message")
    body = ""
    if inner and depth < _MAX_EDIT_DEPTH:
        inner_kind = _s(inner, "type") or next((k for k in _RENDERERS if k in inner), "")
        if inner_kind:
            # Media in an edit are the original's: only the new text matters, nothing to fetch.
            body, _ = _body(inner_kind, inner, depth + 1)
    return _join(f"[edited message {original}]", body), ()


def _revoke(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    return f"[deleted message {_s(_obj(msg, 'revoke'), 'original_message_id') or '?'}]", ()


def _unsupported(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    reasons = []
    for err in _list(msg, "errors"):
        title = _s(err, "title") or _s(err, "message")
        details = _s(_obj(err, "error_data"), "details")
        reasons.append(_join(title, details if details != title else "", sep=": "))
    label = f"[unsupported: {_one_line(kind, 50) or 'unknown'}]"
    return _join(label, "; ".join(r for r in reasons if r)), ()


_RENDERERS: dict[str, Callable[[str, dict[str, Any], int], Body]] = {
    "text": _text,
    **{k: _media for k in _MEDIA_KINDS},
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "order": _order,
    "system": _system,
    "edit": _edit,
    "revoke": _revoke,
}


def _body(kind: str, msg: dict[str, Any], depth: int) -> Body:
    return _RENDERERS.get(kind, _unsupported)(kind, msg, depth)


def _prefix(kind: str, msg: dict[str, Any]) -> str:
    context = _obj(msg, "context")
    parts = []
    if context.get("forwarded") is True or context.get("frequently_forwarded") is True:
        parts.append("(forwarded)")
    product = _obj(context, "referred_product")
    if product:
        pid = _s(product, "product_retailer_id") or "?"
        parts.append(f"(about product {pid} in catalog {_s(product, 'catalog_id') or '?'})")
    elif _s(context, "id") and kind not in ("button", "interactive"):
        # Button and list replies always carry the id of our own message with the buttons;
        # that is not a quote the agent needs to see.
        parts.append(f"(reply to {_s(context, 'id')})")
    return "".join(p + " " for p in parts)


def _suffix(msg: dict[str, Any]) -> str:
    referral = msg.get("referral")
    if not isinstance(referral, dict):
        return ""
    headline = _s(referral, "headline") or _s(referral, "body")
    what = _join(headline, _s(referral, "source_url"), sep=" — ")
    return f"\n(via ad: {what})" if what else "\n(via ad)"


def render_message(kind: str, raw: dict[str, Any], name: str) -> RenderedComment:
    """Render one inbound message as `[WhatsApp] {name}: {body}`.

    Args:
        kind: Meta's message `type` (any string; unknown ones render as unsupported).
        raw: the message object as Meta sent it.
        name: the customer's profile name; sanitised here, `FALLBACK_NAME` when nothing is left.

    Returns:
        The comment text and the media ids to download.
    """
    msg = raw if isinstance(raw, dict) else {}
    if not isinstance(kind, str) or not kind:
        kind = _s(msg, "type") or "unknown"
    body, media = _body(kind, msg, 0)
    who = sanitize_name(name) or FALLBACK_NAME
    return RenderedComment(f"[WhatsApp] {who}: {_prefix(kind, msg)}{body}{_suffix(msg)}", media)


def ticket_summary(name: str, display_phone: str) -> str:
    """`WhatsApp: {name} ({phone})`, one line, at most 255 characters."""
    who = sanitize_name(name) or FALLBACK_NAME
    phone = _one_line(display_phone, 64)
    summary = f"WhatsApp: {who} ({phone})" if phone else f"WhatsApp: {who}"
    return summary[:SUMMARY_MAX_CHARS]


def ticket_description(
    name: str,
    display_phone: str,
    wa_id: str | None,
    business_number: str | None,
    first_message_text: str,
) -> str:
    """Plain-text description of a new ticket: who the customer is, then what they wrote."""
    lines = [
        "Conversation started on WhatsApp.",
        "",
        f"Customer: {sanitize_name(name) or FALLBACK_NAME}",
        f"Phone: {_one_line(display_phone, 64) or '(not shared)'}",
        f"WhatsApp ID: {_one_line(wa_id, 64) or '(not shared)'}",
        f"Business number: {_one_line(business_number, 64) or '(unknown)'}",
        "",
        "First message:",
        first_message_text if isinstance(first_message_text, str) else "",
    ]
    return "\n".join(lines)


# -- coexistence: echoes and shared history ----------------------------------------------------

BUSINESS_FALLBACK = "Business"


def render_echo(kind: str, raw: dict[str, Any], business: str) -> RenderedComment:
    """Render what the team sent from the WhatsApp Business App as `[WhatsApp] {business} (app): {body}`.

    Args:
        kind: Meta's `type` of the echo.
        raw: the `message_echoes[]` item as Meta sent it (shaped like a message).
        business: the business's display name or number; `BUSINESS_FALLBACK` when empty.
    """
    msg, kind = _message_and_kind(kind, raw)
    body, media = _body(kind, msg, 0)
    return RenderedComment(f"[WhatsApp] {_business(business)} (app): {_prefix(kind, msg)}{body}", media)


def render_history(
    kind: str, raw: dict[str, Any], name: str, *, sent_at: int, business: str | None = None
) -> RenderedComment:
    """Render a message of shared chat history as `[WhatsApp history {date}] {name}: {body}`.

    Args:
        kind: Meta's `type`.
        raw: the `history[].threads[].messages[]` item as Meta sent it.
        name: the customer's name, for their own messages.
        sent_at: Meta's timestamp (epoch seconds), shown as `YYYY-MM-DD HH:MM UTC`: history is
            imported long after the fact, and a chunk arriving late lands after newer comments.
        business: set for the business's own messages: shown as `{business} (app)` instead of
            `name` (before coexistence the team could only write from the app).
    """
    msg, kind = _message_and_kind(kind, raw)
    body, media = _body(kind, msg, 0)
    who = f"{_business(business)} (app)" if business is not None else (sanitize_name(name) or FALLBACK_NAME)
    return RenderedComment(
        f"[WhatsApp history {_utc_minute(sent_at)}] {who}: {_prefix(kind, msg)}{body}{_suffix(msg)}", media
    )


def _message_and_kind(kind: object, raw: object) -> tuple[dict[str, Any], str]:
    msg = raw if isinstance(raw, dict) else {}
    if not isinstance(kind, str) or not kind:
        kind = _s(msg, "type") or "unknown"
    return msg, kind


def _business(business: object) -> str:
    return sanitize_name(business) or BUSINESS_FALLBACK


def _utc_minute(epoch: object) -> str:
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
        return "(date unknown)"
    try:
        return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):  # beyond year 9999: a forged timestamp
        return "(date unknown)"
