"""Turn one WhatsApp webhook body (already JSON-decoded) into records we can store.

The webhook answers 200 only after storing what this returns, and 400 on `PayloadError`, so the
rules are: everything Meta sent becomes a record (messages, statuses, or an `OtherEvent` for the
rest), and anything we could not store faithfully is rejected with a path pointing at the culprit.
Only `PayloadError` ever escapes, whatever JSON value comes in: the webhook relies on that.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bot.rules.events import InboundMessage, OtherEvent, ParsedBatch, PayloadError, StatusEvent
from bot.rules.phones import conversation_key_for_phone, conversation_key_for_user

_OBJECT = "whatsapp_business_account"
# Epoch seconds fit in 11 digits until the year 5138; a cap keeps int() cheap on hostile input
# (and below Python's int-from-str digit limit).
_MAX_TIMESTAMP_DIGITS = 18


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
    messages: list[InboundMessage] = []
    statuses: list[StatusEvent] = []
    others: list[OtherEvent] = []
    for e, entry in enumerate(entries):
        epath = f"entry[{e}]"
        if not isinstance(entry, dict):
            raise PayloadError(epath, "must be an object")
        changes = entry.get("changes")
        if not isinstance(changes, list):
            raise PayloadError(f"{epath}.changes", "must be a list")
        for c, change in enumerate(changes):
            _parse_change(change, f"{epath}.changes[{c}]", messages, statuses, others)
    return ParsedBatch(tuple(messages), tuple(statuses), tuple(others))


def _parse_change(
    change: object,
    path: str,
    messages: list[InboundMessage],
    statuses: list[StatusEvent],
    others: list[OtherEvent],
) -> None:
    if not isinstance(change, dict):
        raise PayloadError(path, "must be an object")
    field = change.get("field")
    if not isinstance(field, str) or not field:
        raise PayloadError(f"{path}.field", "must be a non-empty string")
    value = change.get("value")
    vpath = f"{path}.value"
    if not isinstance(value, dict):
        raise PayloadError(vpath, "must be an object")

    raw_messages = _optional_list(value, "messages", vpath) if field == "messages" else []
    raw_statuses = _optional_list(value, "statuses", vpath) if field == "messages" else []
    if not raw_messages and not raw_statuses:
        # Echoes, history, app state sync, errors-only changes, fields Meta adds later: kept
        # whole so nothing is dropped; acting on them is the inbox job's business.
        others.append(_other_event(field, value, path))
        return

    phone_number_id, display = _metadata(value, vpath)
    contacts = _contacts(value)
    for i, msg in enumerate(raw_messages):
        messages.append(
            _message(msg, f"{vpath}.messages[{i}]", phone_number_id, display, contacts)
        )
    for i, st in enumerate(raw_statuses):
        statuses.append(_status(st, f"{vpath}.statuses[{i}]", phone_number_id))


def _optional_list(value: dict[str, Any], key: str, vpath: str) -> list[Any]:
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise PayloadError(f"{vpath}.{key}", "must be a list")
    return items


def _other_event(field: str, value: dict[str, Any], path: str) -> OtherEvent:
    raw = {"field": field, "value": value}
    try:
        # ensure_ascii keeps lone surrogates (valid in JSON, invalid in UTF-8) encodable.
        canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{path}.value", f"not serialisable: {exc}") from None
    metadata = value.get("metadata")
    pnid = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    return OtherEvent(
        field=field,
        dedupe_key=hashlib.sha256(canonical.encode("ascii")).hexdigest(),
        phone_number_id=pnid if isinstance(pnid, str) and pnid else None,
        raw=raw,
    )


def _metadata(value: dict[str, Any], vpath: str) -> tuple[str, str | None]:
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        raise PayloadError(f"{vpath}.metadata", "must be an object")
    pnid = metadata.get("phone_number_id")
    # Routing to a service depends on it; storing a message we cannot route would strand it.
    if not isinstance(pnid, str) or not pnid:
        raise PayloadError(f"{vpath}.metadata.phone_number_id", "missing or not a string")
    display = metadata.get("display_phone_number")
    return pnid, display if isinstance(display, str) and display else None


def _contacts(value: dict[str, Any]) -> list[dict[str, Any]]:
    # contacts[] only decorates messages with a profile name (system messages have none), so a
    # malformed one costs us the name, not the message.
    contacts = value.get("contacts")
    if not isinstance(contacts, list):
        return []
    return [c for c in contacts if isinstance(c, dict)]


def _str_or_none(obj: dict[str, Any], key: str) -> str | None:
    v = obj.get(key)
    return v if isinstance(v, str) and v else None


def _message_id(obj: dict[str, Any], path: str) -> str:
    wamid = obj.get("id")
    if not isinstance(wamid, str) or not wamid:
        raise PayloadError(f"{path}.id", "missing or not a string")
    return wamid


def _timestamp(obj: dict[str, Any], path: str) -> int:
    ts = obj.get("timestamp")
    tpath = f"{path}.timestamp"
    if isinstance(ts, bool):
        raise PayloadError(tpath, "must be epoch seconds")
    if isinstance(ts, int):
        if not 0 <= ts < 10**_MAX_TIMESTAMP_DIGITS:
            raise PayloadError(tpath, "out of range")
        return ts
    if not isinstance(ts, str):
        raise PayloadError(tpath, "missing or not a string")
    digits = ts.strip()
    if not digits.isascii() or not digits.isdigit() or len(digits) > _MAX_TIMESTAMP_DIGITS:
        raise PayloadError(tpath, "not numeric epoch seconds")
    return int(digits)


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
    return _str_or_none(profile, "name") if isinstance(profile, dict) else None


def _message(
    msg: object,
    path: str,
    phone_number_id: str,
    display: str | None,
    contacts: list[dict[str, Any]],
) -> InboundMessage:
    if not isinstance(msg, dict):
        raise PayloadError(path, "must be an object")
    wamid = _message_id(msg, path)
    timestamp = _timestamp(msg, path)
    kind = msg.get("type")
    if not isinstance(kind, str) or not kind:
        raise PayloadError(f"{path}.type", "missing or not a string")

    sender = msg.get("from")
    if sender is not None and not isinstance(sender, str):
        raise PayloadError(f"{path}.from", "must be a string")
    wa_id = sender or None
    user_id = _str_or_none(msg, "from_user_id")
    contact = _find_contact(contacts, wa_id, user_id)
    if user_id is None and contact is not None:
        # Take a contact's user id only from the sender's own entry (same wa_id) or, for a
        # message without `from`, from the change's contact: never from someone else's entry.
        if wa_id is None or contact.get("wa_id") == wa_id:
            user_id = _str_or_none(contact, "user_id")

    if wa_id is not None:
        try:
            key = conversation_key_for_phone(wa_id)
        except ValueError as exc:
            # One odd sender must not bounce a batch of up to 1000 updates when Meta also gave
            # us a stable id for them.
            if user_id is None:
                raise PayloadError(f"{path}.from", str(exc)) from None
            key = conversation_key_for_user(user_id)
    elif user_id is not None:
        key = conversation_key_for_user(user_id)
    else:
        raise PayloadError(f"{path}.from", "neither from nor a user id")

    return InboundMessage(
        wamid=wamid,
        conversation_key=key,
        wa_id=wa_id,
        user_id=user_id,
        phone_number_id=phone_number_id,
        display_phone_number=display,
        profile_name=_profile_name(contact),
        timestamp=timestamp,
        kind=kind,
        raw=msg,
    )


def _status(st: object, path: str, phone_number_id: str) -> StatusEvent:
    if not isinstance(st, dict):
        raise PayloadError(path, "must be an object")
    wamid = _message_id(st, path)
    status = st.get("status")
    if not isinstance(status, str) or not status:
        raise PayloadError(f"{path}.status", "missing or not a string")
    timestamp = _timestamp(st, path)
    errors = st.get("errors")
    if errors is not None and not isinstance(errors, list):
        raise PayloadError(f"{path}.errors", "must be a list")
    return StatusEvent(
        wamid=wamid,
        status=status,
        timestamp=timestamp,
        # A status for a message sent to a business-scoped user id carries no phone.
        recipient_id=_str_or_none(st, "recipient_id") or _str_or_none(st, "recipient_user_id"),
        phone_number_id=phone_number_id,
        errors=tuple(e for e in errors or () if isinstance(e, dict)),
        raw=st,
    )
