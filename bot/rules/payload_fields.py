"""The parts of a webhook body every field's parser reads the same way: ids, Meta's
timestamps, `metadata`, kinds, conversation keys, and raw events for what is kept whole.

Each raises `PayloadError` with a path pointing at the culprit; nothing here does I/O.
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
    PayloadError,
    StatusEvent,
)
from bot.rules.phones import conversation_key_for_phone, conversation_key_for_user

# Epoch seconds fit in 11 digits until the year 5138; a cap keeps int() cheap on hostile input
# (and below Python's int-from-str digit limit).
MAX_TIMESTAMP_DIGITS = 18


@dataclasses.dataclass
class Records:
    messages: list[InboundMessage] = dataclasses.field(default_factory=list)
    statuses: list[StatusEvent] = dataclasses.field(default_factory=list)
    others: list[OtherEvent] = dataclasses.field(default_factory=list)
    contacts: list[ContactSync] = dataclasses.field(default_factory=list)


def optional_list(value: dict[str, Any], key: str, vpath: str) -> list[Any]:
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise PayloadError(f"{vpath}.{key}", "must be a list")
    return items


def other_event(field: str, value: dict[str, Any], path: str) -> OtherEvent:
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


def metadata(value: dict[str, Any], vpath: str) -> tuple[str, str | None]:
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        raise PayloadError(f"{vpath}.metadata", "must be an object")
    pnid = metadata.get("phone_number_id")
    # Routing to a service depends on it; storing a message we cannot route would strand it.
    if not isinstance(pnid, str) or not pnid:
        raise PayloadError(f"{vpath}.metadata.phone_number_id", "missing or not a string")
    display = metadata.get("display_phone_number")
    return pnid, display if isinstance(display, str) and display else None


def str_or_none(obj: dict[str, Any], key: str) -> str | None:
    v = obj.get(key)
    return v if isinstance(v, str) and v else None


def message_id(obj: dict[str, Any], path: str) -> str:
    wamid = obj.get("id")
    if not isinstance(wamid, str) or not wamid:
        raise PayloadError(f"{path}.id", "missing or not a string")
    return wamid


def timestamp(obj: dict[str, Any], path: str) -> int:
    ts = obj.get("timestamp")
    tpath = f"{path}.timestamp"
    if isinstance(ts, bool):
        raise PayloadError(tpath, "must be epoch seconds")
    if isinstance(ts, int):
        if not 0 <= ts < 10**MAX_TIMESTAMP_DIGITS:
            raise PayloadError(tpath, "out of range")
        return ts
    if not isinstance(ts, str):
        raise PayloadError(tpath, "missing or not a string")
    digits = ts.strip()
    if not digits.isascii() or not digits.isdigit() or len(digits) > MAX_TIMESTAMP_DIGITS:
        raise PayloadError(tpath, "not numeric epoch seconds")
    return int(digits)


def conversation_key(wa_id: str | None, user_id: str | None, path: str) -> str:
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


def kind(msg: dict[str, Any], path: str) -> str:
    kind = msg.get("type")
    if not isinstance(kind, str) or not kind:
        raise PayloadError(f"{path}.type", "missing or not a string")
    return kind


def dialable(number: str | None) -> str | None:
    # Echoes name the customer as the Send API takes it (`+16505551234`); messages' `from` is
    # bare digits. One spelling keeps `wa_id` comparable whichever webhook opened a ticket.
    if number is None:
        return None
    return number.strip().removeprefix("+") or None


def message_header(msg: object, path: str) -> tuple[dict[str, Any], str, int, str]:
    """(the message, its id, Meta's timestamp, its kind): what every message-shaped item has."""
    if not isinstance(msg, dict):
        raise PayloadError(path, "must be an object")
    return msg, message_id(msg, path), timestamp(msg, path), kind(msg, path)


def inbound_message(
    msg: dict[str, Any],
    path: str,
    *,
    wamid: str,
    sent_at: int,
    msg_kind: str,
    wa_id: str | None,
    user_id: str | None,
    phone_number_id: str,
    display: str | None,
    profile_name: str | None = None,
    origin: str = "customer",
    from_business: bool = False,
) -> InboundMessage:
    """The record for one message-shaped item; `path` points at whoever names the customer."""
    return InboundMessage(
        wamid=wamid,
        conversation_key=conversation_key(wa_id, user_id, path),
        wa_id=wa_id,
        user_id=user_id,
        phone_number_id=phone_number_id,
        display_phone_number=display,
        profile_name=profile_name,
        timestamp=sent_at,
        kind=msg_kind,
        raw=msg,
        origin=origin,
        from_business=from_business,
    )
