"""Render an inbound WhatsApp message as the plain text of a Jira comment.

Output is PLAIN TEXT only: markup safety is the Jira side's job (`adf.py` puts the text in a
mark-less text node, `wiki.py` escapes it for Server/DC). Every kind renders to something, and odd
or missing fields degrade to a shorter line instead of an exception: a message that cannot be
rendered would block its conversation's queue.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bot.rules.events import RenderedComment
from bot.rules.message_body import context_prefix, message_body, one_line, referral_suffix

FALLBACK_NAME = "WhatsApp user"
MAX_NAME_CHARS = 100
SUMMARY_MAX_CHARS = 255  # Jira's limit for the summary field


def sanitize_name(name: object) -> str:
    """One-line, trimmed, at most 100 characters; empty when nothing printable is left."""
    return one_line(name, MAX_NAME_CHARS)


def render_message(kind: str, raw: dict[str, Any], name: str) -> RenderedComment:
    """Render one inbound message as `[WhatsApp] {name}: {body}`.

    Args:
        kind: Meta's message `type` (any string; unknown ones render as unsupported).
        raw: the message object as Meta sent it.
        name: the customer's profile name; sanitised here, `FALLBACK_NAME` when nothing is left.

    Returns:
        The comment text and the media ids to download.
    """
    msg, kind = _message_and_kind(kind, raw)
    body, media = message_body(kind, msg)
    who = sanitize_name(name) or FALLBACK_NAME
    return RenderedComment(
        f"[WhatsApp] {who}: {context_prefix(kind, msg)}{body}{referral_suffix(msg)}", media
    )


def ticket_summary(name: str, display_phone: str) -> str:
    """`WhatsApp: {name} ({phone})`, one line, at most 255 characters."""
    who = sanitize_name(name) or FALLBACK_NAME
    phone = one_line(display_phone, 64)
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
        f"Phone: {one_line(display_phone, 64) or '(not shared)'}",
        f"WhatsApp ID: {one_line(wa_id, 64) or '(not shared)'}",
        f"Business number: {one_line(business_number, 64) or '(unknown)'}",
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
    body, media = message_body(kind, msg)
    return RenderedComment(
        f"[WhatsApp] {_business(business)} (app): {context_prefix(kind, msg)}{body}", media
    )


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
    body, media = message_body(kind, msg)
    who = f"{_business(business)} (app)" if business is not None else (sanitize_name(name) or FALLBACK_NAME)
    return RenderedComment(
        f"[WhatsApp history {_utc_minute(sent_at)}] {who}: {context_prefix(kind, msg)}{body}{referral_suffix(msg)}",
        media,
    )


def _message_and_kind(kind: object, raw: object) -> tuple[dict[str, Any], str]:
    msg = raw if isinstance(raw, dict) else {}
    if not isinstance(kind, str) or not kind:
        stated = msg.get("type")
        kind = (stated.strip() if isinstance(stated, str) else "") or "unknown"
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
