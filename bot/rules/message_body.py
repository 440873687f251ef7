"""What an inbound WhatsApp message says, kind by kind, as one line of plain text.

`render.py` frames it as a Jira comment. Every kind renders to something and odd or missing
fields give a shorter line, never an exception (see `render.py`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from bot.rules.media import attachment_name

_MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
# Bidi overrides/isolates let a name visually reorder the text after it (spoofing in Jira).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SPACES = re.compile(r"\s+")
_MAX_EDIT_DEPTH = 3

Body = tuple[str, tuple[str, ...]]


def one_line(value: object, limit: int) -> str:
    """`value` on one line: controls and bidi overrides dropped, spaces collapsed, cut to `limit`."""
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
    return f"[interactive: {one_line(sub, 50) or 'unknown'}]", ()


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
            body, _ = message_body(inner_kind, inner, depth + 1)
    return _join(f"[edited message {original}]", body), ()


def _revoke(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    return f"[deleted message {_s(_obj(msg, 'revoke'), 'original_message_id') or '?'}]", ()


def _unsupported(kind: str, msg: dict[str, Any], _depth: int) -> Body:
    reasons = []
    for err in _list(msg, "errors"):
        title = _s(err, "title") or _s(err, "message")
        details = _s(_obj(err, "error_data"), "details")
        reasons.append(_join(title, details if details != title else "", sep=": "))
    label = f"[unsupported: {one_line(kind, 50) or 'unknown'}]"
    return _join(label, "; ".join(r for r in reasons if r)), ()


_RENDERERS: dict[str, Callable[[str, dict[str, Any], int], Body]] = {
    "text": _text,
    **dict.fromkeys(_MEDIA_KINDS, _media),
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


def message_body(kind: str, msg: dict[str, Any], depth: int = 0) -> Body:
    """The body of a message of `kind` as plain text, and the ids of the media to download."""
    return _RENDERERS.get(kind, _unsupported)(kind, msg, depth)


def context_prefix(kind: str, msg: dict[str, Any]) -> str:
    """`(forwarded) `, `(about product …) ` or `(reply to …) ` before the body, from `context`."""
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


def referral_suffix(msg: dict[str, Any]) -> str:
    """`(via ad: …)` on a line of its own, for a message that came from an ad."""
    referral = msg.get("referral")
    if not isinstance(referral, dict):
        return ""
    headline = _s(referral, "headline") or _s(referral, "body")
    what = _join(headline, _s(referral, "source_url"), sep=" — ")
    return f"\n(via ad: {what})" if what else "\n(via ad)"
