"""The `wajira` entity property: how the bot marks the issues and comments it writes.

Jira keeps entity properties next to an issue or comment, out of its text: only the bot sets
ours, so it (never the text, which anyone can type) says what the bot wrote. This module owns
the protocol: the key, the comment kinds, the builders of what is sent and the readers of what
comes back. Nothing else spells the key or builds the value.

On the wire (Jira's REST API, create issue and add comment) `properties` is a list of
EntityProperty objects, `[{"key": "wajira", "value": {...}}]`. Search and `get issue` hand
issue properties back as a map `{"wajira": {...}}`; comments come with the list. The readers
take either.

Comment values, by kind (key order is the order sent):

    customer  {"kind": "customer", "wamid": w}            (+ "history": true for imported history)
    echo      {"kind": "echo", "wamid": w}                (+ "history": true)
    ai        {"kind": "ai", "turn": turn_id}          (+ "sources": {"sections": […], "tickets": […]},
                                                       + "handover": true, "reason": r when handed over)
    note      {"kind": "note", "ref": ref}                (internal: JSM `sd.public.comment`)
    auto      {"kind": "auto", "ref": ref}
    csat      {"kind": "csat", "wamid": w, "rating": n}

The issue value: {"conversation", "wa_id", "user_id", "service", "phone_number_id"[, "previous"]}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROPERTY_KEY = "wajira"
"""Entity property on every issue and comment the bot writes."""

JSM_PUBLIC_KEY = "sd.public.comment"
"""Jira Service Management's comment property; `{"internal": true}` keeps a comment off the portal."""

KIND_CUSTOMER = "customer"
"""A customer's WhatsApp message, relayed."""
KIND_AI = "ai"
"""The AI assistant's reply."""
KIND_ECHO = "echo"
"""What the team sent from the WhatsApp Business App, mirrored."""
KIND_NOTE = "note"
"""An internal note for agents."""
KIND_AUTO = "auto"
"""An automatic message to the customer (acknowledgement, status notice, out of hours)."""
KIND_CSAT = "csat"
"""The customer's satisfaction rating."""
KINDS = (KIND_CUSTOMER, KIND_AI, KIND_ECHO, KIND_NOTE, KIND_AUTO, KIND_CSAT)
# Our property is present but its `kind` is missing or not a string: still ours, so still never
# relayed back (the safe way to fail), but it matches none of the kinds above.
KIND_UNKNOWN = "unknown"


# -- builders: what is sent ------------------------------------------------------------------


def customer_value(wamid: str, *, history: bool = False) -> dict[str, Any]:
    """A relayed customer message; `history` marks one imported from shared chat history."""
    return _with_history({"kind": KIND_CUSTOMER, "wamid": wamid}, history)


def echo_value(wamid: str, *, history: bool = False) -> dict[str, Any]:
    """A message the team sent from the WhatsApp Business App (now, or in imported history)."""
    return _with_history({"kind": KIND_ECHO, "wamid": wamid}, history)


# Jira caps an entity property at 32 KB; the audit trail stays far below it.
_MAX_SOURCES = 20
_MAX_SOURCE_CHARS = 200
_MAX_REASON_CHARS = 500


def ai_value(
    turn_id: int,
    *,
    sections: Sequence[str] = (),
    tickets: Sequence[str] = (),
    handover_reason: str | None = None,
) -> dict[str, Any]:
    """The AI's reply to one turn: the turn id lets a retry find the reply it already posted.

    Args:
        sections: knowledge sections ("file#title") the request carried, so agents can audit
            what the answer was based on; `tickets` likewise for resolved tickets.
        handover_reason: set when the model handed the conversation over to people; the reply
            is then the service's hand-over text, and a retry finishes the hand-over from here.
    """
    value: dict[str, Any] = {"kind": KIND_AI, "turn": turn_id}
    if sections or tickets:
        value["sources"] = {
            "sections": [s[:_MAX_SOURCE_CHARS] for s in sections[:_MAX_SOURCES]],
            "tickets": [t[:_MAX_SOURCE_CHARS] for t in tickets[:_MAX_SOURCES]],
        }
    if handover_reason is not None:
        value["handover"] = True
        value["reason"] = handover_reason[:_MAX_REASON_CHARS]
    return value


def note_value(ref: str) -> dict[str, Any]:
    """An internal note; `ref` names the event, so a retry finds the note instead of repeating it."""
    return {"kind": KIND_NOTE, "ref": ref}


def auto_value(ref: str) -> dict[str, Any]:
    """An automatic message; `ref` names the event it answers, for the same once-only search."""
    return {"kind": KIND_AUTO, "ref": ref}


def csat_value(wamid: str, rating: int) -> dict[str, Any]:
    """The customer's rating, from the WhatsApp message (`wamid`) that carried their choice."""
    return {"kind": KIND_CSAT, "wamid": wamid, "rating": rating}


def wamid_match(wamid: str) -> dict[str, Any]:
    """What `find_comment_with_property` looks for: the comment relaying this WhatsApp message."""
    return {"wamid": wamid}


def conversation_match(conversation_key: str, *, previous: str | None = None) -> dict[str, Any]:
    """What `find_issue_with_property` looks for: the ticket opened for this conversation
    (with `previous`: the one that replaced that closed ticket)."""
    match: dict[str, Any] = {"conversation": conversation_key}
    if previous is not None:
        match["previous"] = previous
    return match


def ticket_properties(
    *,
    conversation: str,
    wa_id: str | None,
    user_id: str | None,
    service: str,
    phone_number_id: str | None,
    previous: str | None = None,
) -> dict[str, Any]:
    """The issue properties of a new ticket, `{"wajira": {...}}`; `previous` names the ticket it follows."""
    value: dict[str, Any] = {
        "conversation": conversation,
        "wa_id": wa_id,
        "user_id": user_id,
        "service": service,
        "phone_number_id": phone_number_id,
    }
    if previous:
        value["previous"] = previous
    return {PROPERTY_KEY: value}


def comment_properties(value: Mapping[str, Any], *, internal: bool = False) -> list[dict[str, Any]]:
    """The `properties` of a new comment: ours, and JSM's internal mark for an agents-only note."""
    props: dict[str, Any] = {PROPERTY_KEY: value}
    if internal:
        props[JSM_PUBLIC_KEY] = {"internal": True}
    return entity_properties(props)


def entity_properties(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A `{key: value}` map as the list of EntityProperty objects Jira's create calls take."""
    return [{"key": key, "value": value} for key, value in props.items()]


def _with_history(value: dict[str, Any], history: bool) -> dict[str, Any]:
    if history:
        value["history"] = True
    return value


# -- readers: what comes back ----------------------------------------------------------------


@dataclass(frozen=True)
class CommentMark:
    """Our property on a comment, read: what the bot wrote it as."""

    kind: str
    """One of `KINDS`, or `KIND_UNKNOWN` when the value is not a dict or names no kind."""
    wamid: str | None = None
    history: bool = False
    """`"history": true`: imported chat history, long past."""
    turn: int | None = None
    ref: str | None = None
    rating: int | None = None
    handover: bool = False
    """An AI reply that handed the conversation over to people."""
    reason: str | None = None


def properties_map(properties: object) -> dict[str, Any]:
    """Entity properties as `{key: value}`, from Jira's list or an already-made map; {} for anything else."""
    if isinstance(properties, dict):
        return properties
    found: dict[str, Any] = {}
    if isinstance(properties, list):
        for item in properties:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                found[item["key"]] = item.get("value")
    return found


def read_comment(properties: object) -> CommentMark | None:
    """Our mark on a comment from its `properties` (list or map); None when the bot did not write it.

    Never raises: a value that is not a dict, or fields of the wrong type, still say "ours" (so
    the comment is never relayed back) with the unreadable parts left out.
    """
    props = properties_map(properties)
    if PROPERTY_KEY not in props:
        return None
    value = props[PROPERTY_KEY]
    if not isinstance(value, dict):
        return CommentMark(KIND_UNKNOWN)
    kind = value.get("kind")
    return CommentMark(
        kind=kind if isinstance(kind, str) and kind else KIND_UNKNOWN,
        wamid=_text(value.get("wamid")),
        history=value.get("history") is True,
        turn=_int(value.get("turn")),
        ref=_text(value.get("ref")),
        rating=_int(value.get("rating")),
        handover=value.get("handover") is True,
        reason=_text(value.get("reason")),
    )


def our_value(properties: object) -> dict[str, Any] | None:
    """The raw value of our property among `properties` (list or map), when it is a dict."""
    value = properties_map(properties).get(PROPERTY_KEY)
    return value if isinstance(value, dict) else None


def issue_value(issue: object) -> dict[str, Any] | None:
    """The raw value of our property on an issue (search or `get issue` with `properties=wajira`)."""
    return our_value(issue.get("properties") if isinstance(issue, dict) else None)


def matches(value: Mapping[str, Any], match: Mapping[str, Any]) -> bool:
    """Whether a property value holds every field of `match` with the same value."""
    return all(value.get(key) == wanted for key, wanted in match.items())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
