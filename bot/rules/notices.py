"""What wajira says to customers on its own: notices, and the CSAT question and its answer.

Notice texts are operator-written templates with a few named placeholders. They are checked when
the configuration loads, so a typo is a startup error and not a half-filled message to a customer;
the check refuses everything of `str.format` beyond plain `{name}` fields (attributes, indexes,
conversions, format specs), so a template can never reach into an object. Filling is our own loop,
not `str.format`, and inserts values verbatim: a customer named "{issue_key}" stays so named.

The CSAT answer is a tap on a list row (or a button) whose id we chose; only our exact ids count,
whatever else arrives in the webhook.

Refs that name a conversation (e.g. the once-a-day out-of-hours marker) end up in Jira properties
and in logs, so they carry a hash of the conversation key, never the phone number in it. The hash
is unkeyed and phone numbers are few, so this keeps numbers out of sight, not out of reach of
someone who sets out to brute-force them.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping, Sequence
from typing import Any

from bot.rules.render import FALLBACK_NAME, sanitize_name

NOTICE_PLACEHOLDERS: tuple[str, ...] = ("name", "issue_key")
STATUS_PLACEHOLDERS: tuple[str, ...] = ("name", "issue_key", "status")

CSAT_ID_PREFIX = "csat:"
CSAT_SCALE = 5
# Meta's interactive list row: `title` is required, at most 24 characters
# (specs/whatsapp-business-messaging-v23.openapi.yaml, the `rows` items of a list section).
CSAT_TITLE_MAX_CHARS = 24
_CSAT_IDS = {f"{CSAT_ID_PREFIX}{n}": n for n in range(1, CSAT_SCALE + 1)}
_REPLY_TYPES = ("list_reply", "button_reply")


def check_placeholders(text: str, allowed: Sequence[str]) -> None:
    """Refuse `text` unless it is a plain template over `allowed` ("{{" and "}}" are literal braces).

    Raises:
        ValueError: the reason, naming the offending placeholder.
    """
    names = ", ".join(f"{{{name}}}" for name in allowed)
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f'malformed braces ({exc}); write "{{{{" or "}}}}" for a literal brace') from None
    for _literal, field, spec, conversion in pieces:
        if field is None:
            continue
        shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if not field or field.isdigit():
            raise ValueError(f"positional placeholder {shown} (use a name: {names})")
        if "." in field or "[" in field:
            raise ValueError(f"placeholder {shown} may not use attributes or indexes (allowed: {names})")
        if conversion:
            raise ValueError(f"placeholder {shown} may not have a conversion (write {{{field}}})")
        if spec:
            raise ValueError(f"placeholder {shown} may not have a format spec (write {{{field}}})")
        if field not in allowed:
            raise ValueError(f"unknown placeholder {shown} (allowed: {names})")


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with each `{field}` replaced by `values[field]`, verbatim (never expanded again).

    Only for texts `check_placeholders` accepted; a field missing from `values` raises KeyError
    (the caller's bug, not the operator's).
    """
    out: list[str] = []
    for literal, field, _spec, _conversion in string.Formatter().parse(text):
        out.append(literal)
        if field is not None:
            out.append(values[field])
    return "".join(out)


def _status_key(name: str) -> str:
    return name.strip().casefold()


def same_status(a: str, b: str) -> bool:
    """Whether two status names are the same: Jira shows "Done", an operator may write " done "."""
    return _status_key(a) == _status_key(b)


def status_text(on_status: Mapping[str, str], status_name: str) -> str | None:
    """The configured text for `status_name` (the first match in `on_status`), None when not listed."""
    wanted = _status_key(status_name)
    for configured, text in on_status.items():
        if _status_key(configured) == wanted:
            return text
    return None


def csat_rows(labels: Sequence[str]) -> list[dict[str, str]]:
    """The rows of the CSAT list message, "csat:1" (labels[0]) to "csat:5".

    Raises:
        ValueError: unless there are exactly 5 labels, each non-blank and at most 24 characters.
    """
    if len(labels) != CSAT_SCALE:
        raise ValueError(f"expected {CSAT_SCALE} labels, got {len(labels)}")
    for label in labels:
        if not label.strip() or len(label) > CSAT_TITLE_MAX_CHARS:
            raise ValueError(f"label {label!r} must be 1 to {CSAT_TITLE_MAX_CHARS} characters")
    return [{"id": f"{CSAT_ID_PREFIX}{n}", "title": label} for n, label in enumerate(labels, start=1)]


def csat_choice(kind: str, message: Mapping[str, Any]) -> int | None:
    """The rating (1-5) a customer's interactive reply gives, else None. Never raises on garbage."""
    if kind != "interactive" or not isinstance(message, Mapping):
        return None
    interactive = message.get("interactive")
    if not isinstance(interactive, Mapping):
        return None
    reply_type = interactive.get("type")
    if reply_type not in _REPLY_TYPES:
        return None
    reply = interactive.get(reply_type)
    row_id = reply.get("id") if isinstance(reply, Mapping) else None
    # Exact lookup: "csat:05", " csat:4", "csat:4 " and a megabyte of text simply miss.
    return _CSAT_IDS.get(row_id) if isinstance(row_id, str) else None


def csat_context(message: Mapping[str, Any]) -> str | None:
    """The wamid of the message this one answers (`context.id`), when it is a non-empty string."""
    context = message.get("context") if isinstance(message, Mapping) else None
    wamid = context.get("id") if isinstance(context, Mapping) else None
    return wamid if isinstance(wamid, str) and wamid else None


def csat_comment(name: str, rating: int) -> str:
    """`[CSAT] {name} rated {rating}/5`; the name on one line, at most 100 characters."""
    return f"[CSAT] {sanitize_name(name) or FALLBACK_NAME} rated {rating}/{CSAT_SCALE}"


def auto_comment(text: str) -> str:
    """How a notice we sent appears in Jira."""
    return f"[Auto] {text}"


def conversation_tag(conversation_key: str) -> str:
    """12 hex characters of sha256 of the key: stable, short, and free of the phone number."""
    return hashlib.sha256(conversation_key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def out_of_hours_ref(conversation_key: str, day: str) -> str:
    """The ref of a conversation's out-of-hours notice on one local day (at most one per day)."""
    return f"ooh:{conversation_tag(conversation_key)}:{day}"
