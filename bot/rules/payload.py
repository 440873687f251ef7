"""Turn one WhatsApp webhook body (already JSON-decoded) into records we can store.

The webhook answers 200 only after storing what this returns, and 400 on `PayloadError`, so the
rules are: everything Meta sent becomes a record (messages, statuses, or an `OtherEvent` for the
rest), and anything we could not store faithfully is rejected with a path pointing at the culprit.
Only `PayloadError` ever escapes, whatever JSON value comes in: the webhook relies on that.

Coexistence fields (Meta's webhook reference pages; the v23 OpenAPI file lacks them):
- `smb_message_echoes`: `message_echoes[]`, shaped like messages, `from` the business number and
  `to` the customer. Read as strictly as messages: they are live conversation.
- `history`: `history[].threads[].messages[]`, a thread per customer (`id`), each message with
  `from` (business or customer), `to` only on the business's own messages, `history_context`.
- `smb_app_state_sync`: `state_sync[]` of `{type: contact, contact: {full_name, first_name,
  phone_number}, action: add|remove, metadata: {timestamp}}`.
History and contact syncs are bulk imports, one chunk holding thousands of items: an item we
cannot read must not bounce the chunk (Meta would redeliver it for days, then drop it). What
reads becomes records; when anything did not (or sharing was declined: `errors[]`), the whole
change is also kept raw as an `OtherEvent`, so nothing is lost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from bot.rules.events import (
    ContactSync,
    InboundMessage,
    OtherEvent,
    ParsedBatch,
    PayloadError,
    StatusEvent,
)
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
    out = _Records()
    for e, entry in enumerate(entries):
        epath = f"entry[{e}]"
        if not isinstance(entry, dict):
            raise PayloadError(epath, "must be an object")
        changes = entry.get("changes")
        if not isinstance(changes, list):
            raise PayloadError(f"{epath}.changes", "must be a list")
        for c, change in enumerate(changes):
            _parse_change(change, f"{epath}.changes[{c}]", out)
    return ParsedBatch(tuple(out.messages), tuple(out.statuses), tuple(out.others),
                       tuple(out.contacts))


@dataclasses.dataclass
class _Records:
    messages: list[InboundMessage] = dataclasses.field(default_factory=list)
    statuses: list[StatusEvent] = dataclasses.field(default_factory=list)
    others: list[OtherEvent] = dataclasses.field(default_factory=list)
    contacts: list[ContactSync] = dataclasses.field(default_factory=list)


def _parse_change(change: object, path: str, out: _Records) -> None:
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
        _history(value, path, out)
        return
    if field == "smb_app_state_sync" and value.get("state_sync") is not None:
        _state_sync(value, path, out)
        return
    raw_messages = _optional_list(value, "messages", vpath) if field == "messages" else []
    raw_statuses = _optional_list(value, "statuses", vpath) if field == "messages" else []
    raw_echoes = (_optional_list(value, "message_echoes", vpath)
                  if field == "smb_message_echoes" else [])
    if not raw_messages and not raw_statuses and not raw_echoes:
        # Errors-only changes, fields Meta adds later: kept whole so nothing is dropped.
        out.others.append(_other_event(field, value, path))
        return

    phone_number_id, display = _metadata(value, vpath)
    contacts = _contacts(value)
    for i, msg in enumerate(raw_messages):
        out.messages.append(
            _message(msg, f"{vpath}.messages[{i}]", phone_number_id, display, contacts)
        )
    for i, st in enumerate(raw_statuses):
        out.statuses.append(_status(st, f"{vpath}.statuses[{i}]", phone_number_id))
    for i, echo in enumerate(raw_echoes):
        out.messages.append(_echo(echo, f"{vpath}.message_echoes[{i}]", phone_number_id, display))


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
    kind = _kind(msg, path)

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

    key = _conversation_key(wa_id, user_id, f"{path}.from")
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


def _conversation_key(wa_id: str | None, user_id: str | None, path: str) -> str:
    if wa_id is not None:
        try:
            return conversation_key_for_phone(wa_id)
        except ValueError as exc:
            # One odd number must not bounce a batch of up to 1000 updates when Meta also gave
            # us a stable id for the person.
            if user_id is None:
                raise PayloadError(path, str(exc)) from None
    if user_id is not None:
        return conversation_key_for_user(user_id)
    raise PayloadError(path, "neither a phone number nor a user id")


def _kind(msg: dict[str, Any], path: str) -> str:
    kind = msg.get("type")
    if not isinstance(kind, str) or not kind:
        raise PayloadError(f"{path}.type", "missing or not a string")
    return kind


def _dialable(number: str | None) -> str | None:
    # Echoes name the customer as the Send API takes it (`+16505551234`); messages' `from` is
    # bare digits. One spelling keeps `wa_id` comparable whichever webhook opened a ticket.
    if number is None:
        return None
    return number.strip().removeprefix("+") or None


def _echo(msg: object, path: str, phone_number_id: str, display: str | None) -> InboundMessage:
    """A message the team sent from the WhatsApp Business App: its conversation is `to`'s."""
    if not isinstance(msg, dict):
        raise PayloadError(path, "must be an object")
    wamid = _message_id(msg, path)
    timestamp = _timestamp(msg, path)
    kind = _kind(msg, path)
    to = msg.get("to")
    if to is not None and not isinstance(to, str):
        raise PayloadError(f"{path}.to", "must be a string")
    wa_id = _dialable(to)
    user_id = _str_or_none(msg, "to_user_id")
    return InboundMessage(
        wamid=wamid,
        conversation_key=_conversation_key(wa_id, user_id, f"{path}.to"),
        wa_id=wa_id,
        user_id=user_id,
        phone_number_id=phone_number_id,
        display_phone_number=display,
        profile_name=None,
        timestamp=timestamp,
        kind=kind,
        raw=msg,
        origin="echo",
        from_business=True,
    )


def _history(value: dict[str, Any], path: str, out: _Records) -> None:
    vpath = f"{path}.value"
    try:
        phone_number_id, display = _metadata(value, vpath)
    except PayloadError:
        out.others.append(_other_event("history", value, path))
        return
    read: list[InboundMessage] = []
    whole = True
    chunks = value.get("history")
    for c, chunk in enumerate(chunks if isinstance(chunks, list) else ()):
        # `errors[]` instead of threads: the business declined to share its history.
        if not isinstance(chunk, dict) or chunk.get("errors"):
            whole = False
            continue
        threads = chunk.get("threads")
        if threads is None:
            continue  # a progress-only chunk
        for t, thread in enumerate(threads if isinstance(threads, list) else ()):
            items = thread.get("messages") if isinstance(thread, dict) else None
            if not isinstance(items, list):
                whole = False
                continue
            customer = _str_or_none(thread, "id")
            for i, msg in enumerate(items):
                mpath = f"{vpath}.history[{c}].threads[{t}].messages[{i}]"
                try:
                    read.append(_history_message(msg, mpath, phone_number_id, display, customer))
                except PayloadError:
                    whole = False
        whole = whole and isinstance(threads, list)
    out.messages.extend(read)
    if not whole or not isinstance(chunks, list):
        out.others.append(_other_event("history", value, path))


def _history_message(msg: object, path: str, phone_number_id: str, display: str | None,
                     customer: str | None) -> InboundMessage:
    if not isinstance(msg, dict):
        raise PayloadError(path, "must be an object")
    wamid = _message_id(msg, path)
    timestamp = _timestamp(msg, path)
    kind = _kind(msg, path)
    sender, to = _str_or_none(msg, "from"), _str_or_none(msg, "to")
    # Meta puts `to` only on the business's own messages; the thread id is the customer.
    if to is not None:
        from_business = True
    elif sender is not None and display is not None:
        from_business = _same_number(sender, display)
    elif sender is not None and customer is not None:
        from_business = not _same_number(sender, customer)
    else:
        from_business = False
    peer = customer or to or (None if from_business else sender)
    wa_id = _dialable(peer)
    user_id = None if from_business else _str_or_none(msg, "from_user_id")
    return InboundMessage(
        wamid=wamid,
        conversation_key=_conversation_key(wa_id, user_id, f"{path}.from"),
        wa_id=wa_id,
        user_id=user_id,
        phone_number_id=phone_number_id,
        display_phone_number=display,
        profile_name=None,
        timestamp=timestamp,
        kind=kind,
        raw=msg,
        origin="history",
        from_business=from_business,
    )


def _same_number(a: str, b: str) -> bool:
    # Keys fold Mexico's 521/52 and the like; digits alone decide for odd spellings.
    try:
        return conversation_key_for_phone(a) == conversation_key_for_phone(b)
    except ValueError:
        return _digits_of(a) == _digits_of(b) != ""


def _digits_of(number: str) -> str:
    return "".join(ch for ch in number if ch.isascii() and ch.isdigit())


def _state_sync(value: dict[str, Any], path: str, out: _Records) -> None:
    vpath = f"{path}.value"
    items = value.get("state_sync")
    try:
        phone_number_id, _ = _metadata(value, vpath)
    except PayloadError:
        items = None
    read: list[ContactSync] = []
    whole = isinstance(items, list)
    for i, item in enumerate(items if isinstance(items, list) else ()):
        try:
            read.append(_contact_sync(item, f"{vpath}.state_sync[{i}]", phone_number_id))
        except PayloadError:
            whole = False  # another state type (only contacts exist today) or a broken item
    out.contacts.extend(read)
    if not whole:
        out.others.append(_other_event("smb_app_state_sync", value, path))


def _contact_sync(item: object, path: str, phone_number_id: str) -> ContactSync:
    if not isinstance(item, dict) or item.get("type") != "contact":
        raise PayloadError(f"{path}.type", "not a contact")
    contact = item.get("contact")
    if not isinstance(contact, dict):
        raise PayloadError(f"{path}.contact", "must be an object")
    number = contact.get("phone_number")
    if not isinstance(number, str):
        raise PayloadError(f"{path}.contact.phone_number", "missing or not a string")
    action = item.get("action")
    if not isinstance(action, str) or not action:
        raise PayloadError(f"{path}.action", "missing or not a string")
    metadata = item.get("metadata")
    timestamp = _timestamp(metadata if isinstance(metadata, dict) else {}, f"{path}.metadata")
    return ContactSync(
        phone_number_id=phone_number_id,
        conversation_key=_conversation_key(number, None, f"{path}.contact.phone_number"),
        full_name=_str_or_none(contact, "full_name"),
        first_name=_str_or_none(contact, "first_name"),
        action=action,
        timestamp=timestamp,
        raw=item,
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
