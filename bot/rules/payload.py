"""Turn one WhatsApp webhook body (already JSON-decoded) into records we can store.

The webhook answers 200 only after storing what this returns, and 400 on `PayloadError`, so the
rules are: everything Meta sent becomes a record (messages, statuses, or an `OtherEvent` for the
rest), and anything we could not store faithfully is rejected with a path pointing at the culprit.
Only `PayloadError` ever escapes, whatever JSON value comes in: the webhook relies on that.

The Business App's fields (echoes, history, contact syncs) are read in `payload_business`.
"""

from __future__ import annotations

from typing import Any

from bot.rules import payload_business as business
from bot.rules.events import InboundMessage, ParsedBatch, PayloadError, StatusEvent
from bot.rules.payload_fields import (
    Records,
    inbound_message,
    message_header,
    message_id,
    metadata,
    optional_list,
    other_event,
    str_or_none,
    timestamp,
)

_OBJECT = "whatsapp_business_account"


def parse_webhook(doc: object) -> ParsedBatch:
    """Parse a decoded webhook body.

    Returns:
        The messages, statuses and other changes it carries, in payload order.

    Raises:
        PayloadError: the body is not a WhatsApp webhook we can store.
    """
    try:
        return _parse(doc)
    except RecursionError:
        # Absurdly deep nesting can only come from a forged or broken body.
        raise PayloadError("$", "nesting too deep") from None


def _parse(doc: object) -> ParsedBatch:
    if not isinstance(doc, dict):
        raise PayloadError("$", "body must be a JSON object")
    if doc.get("object") != _OBJECT:
        raise PayloadError("object", f"must be {_OBJECT!r}")
    entries = doc.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("entry", "must be a list")
    out = Records()
    for e, entry in enumerate(entries):
        epath = f"entry[{e}]"
        if not isinstance(entry, dict):
            raise PayloadError(epath, "must be an object")
        changes = entry.get("changes")
        if not isinstance(changes, list):
            raise PayloadError(f"{epath}.changes", "must be a list")
        for c, change in enumerate(changes):
            _parse_change(change, f"{epath}.changes[{c}]", out)
    return ParsedBatch(tuple(out.messages), tuple(out.statuses), tuple(out.others), tuple(out.contacts))


def _parse_change(change: object, path: str, out: Records) -> None:
    if not isinstance(change, dict):
        raise PayloadError(path, "must be an object")
    field = change.get("field")
    if not isinstance(field, str) or not field:
        raise PayloadError(f"{path}.field", "must be a non-empty string")
    value = change.get("value")
    vpath = f"{path}.value"
    if not isinstance(value, dict):
        raise PayloadError(vpath, "must be an object")

    if field == "history" and value.get("history") is not None:
        business.history(value, path, out)
        return
    if field == "smb_app_state_sync" and value.get("state_sync") is not None:
        business.state_sync(value, path, out)
        return
    raw_messages = optional_list(value, "messages", vpath) if field == "messages" else []
    raw_statuses = optional_list(value, "statuses", vpath) if field == "messages" else []
    raw_echoes = optional_list(value, "message_echoes", vpath) if field == "smb_message_echoes" else []
    if not raw_messages and not raw_statuses and not raw_echoes:
        # Errors-only changes, fields Meta adds later: kept whole so nothing is dropped.
        out.others.append(other_event(field, value, path))
        return

    phone_number_id, display = metadata(value, vpath)
    contacts = _contacts(value)
    for i, msg in enumerate(raw_messages):
        out.messages.append(_message(msg, f"{vpath}.messages[{i}]", phone_number_id, display, contacts))
    for i, st in enumerate(raw_statuses):
        out.statuses.append(_status(st, f"{vpath}.statuses[{i}]", phone_number_id))
    for i, echo in enumerate(raw_echoes):
        out.messages.append(business.echo(echo, f"{vpath}.message_echoes[{i}]", phone_number_id, display))


def _contacts(value: dict[str, Any]) -> list[dict[str, Any]]:
    # contacts[] only decorates messages with a profile name (system messages have none), so a
    # malformed one costs us the name, not the message.
    contacts = value.get("contacts")
    if not isinstance(contacts, list):
        return []
    return [c for c in contacts if isinstance(c, dict)]


def _find_contact(
    contacts: list[dict[str, Any]], wa_id: str | None, user_id: str | None
) -> dict[str, Any] | None:
    for contact in contacts:
        if wa_id is not None and contact.get("wa_id") == wa_id:
            return contact
        if user_id is not None and contact.get("user_id") == user_id:
            return contact
    return contacts[0] if contacts else None


def _profile_name(contact: dict[str, Any] | None) -> str | None:
    if contact is None:
        return None
    profile = contact.get("profile")
    return str_or_none(profile, "name") if isinstance(profile, dict) else None


def _message(
    msg: object,
    path: str,
    phone_number_id: str,
    display: str | None,
    contacts: list[dict[str, Any]],
) -> InboundMessage:
    msg, wamid, sent_at, msg_kind = message_header(msg, path)

    sender = msg.get("from")
    if sender is not None and not isinstance(sender, str):
        raise PayloadError(f"{path}.from", "must be a string")
    wa_id = sender or None
    user_id = str_or_none(msg, "from_user_id")
    contact = _find_contact(contacts, wa_id, user_id)
    # Take a contact's user id only from the sender's own entry (same wa_id) or, for a
    # message without `from`, from the change's contact: never from someone else's entry.
    if user_id is None and contact is not None and (wa_id is None or contact.get("wa_id") == wa_id):
        user_id = str_or_none(contact, "user_id")

    return inbound_message(
        msg,
        f"{path}.from",
        wamid=wamid,
        sent_at=sent_at,
        msg_kind=msg_kind,
        wa_id=wa_id,
        user_id=user_id,
        phone_number_id=phone_number_id,
        display=display,
        profile_name=_profile_name(contact),
    )


def _status(st: object, path: str, phone_number_id: str) -> StatusEvent:
    if not isinstance(st, dict):
        raise PayloadError(path, "must be an object")
    wamid = message_id(st, path)
    status = st.get("status")
    if not isinstance(status, str) or not status:
        raise PayloadError(f"{path}.status", "missing or not a string")
    sent_at = timestamp(st, path)
    errors = st.get("errors")
    if errors is not None and not isinstance(errors, list):
        raise PayloadError(f"{path}.errors", "must be a list")
    return StatusEvent(
        wamid=wamid,
        status=status,
        timestamp=sent_at,
        # A status for a message sent to a business-scoped user id carries no phone.
        recipient_id=str_or_none(st, "recipient_id") or str_or_none(st, "recipient_user_id"),
        phone_number_id=phone_number_id,
        errors=tuple(e for e in errors or () if isinstance(e, dict)),
        raw=st,
    )
