"""What the WhatsApp Business App sends alongside the Cloud API (coexistence).

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

from typing import Any

from bot.rules.events import ContactSync, InboundMessage, PayloadError
from bot.rules.payload_fields import (
    Records,
    conversation_key,
    dialable,
    inbound_message,
    message_header,
    metadata,
    other_event,
    str_or_none,
    timestamp,
)
from bot.rules.phones import conversation_key_for_phone


def echo(msg: object, path: str, phone_number_id: str, display: str | None) -> InboundMessage:
    """A message the team sent from the WhatsApp Business App: its conversation is `to`'s."""
    msg, wamid, sent_at, msg_kind = message_header(msg, path)
    to = msg.get("to")
    if to is not None and not isinstance(to, str):
        raise PayloadError(f"{path}.to", "must be a string")
    wa_id = dialable(to)
    user_id = str_or_none(msg, "to_user_id")
    return inbound_message(
        msg,
        f"{path}.to",
        wamid=wamid,
        sent_at=sent_at,
        msg_kind=msg_kind,
        wa_id=wa_id,
        user_id=user_id,
        phone_number_id=phone_number_id,
        display=display,
        origin="echo",
        from_business=True,
    )


def history(value: dict[str, Any], path: str, out: Records) -> None:
    vpath = f"{path}.value"
    try:
        phone_number_id, display = metadata(value, vpath)
    except PayloadError:
        out.others.append(other_event("history", value, path))
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
            customer = str_or_none(thread, "id")
            for i, msg in enumerate(items):
                mpath = f"{vpath}.history[{c}].threads[{t}].messages[{i}]"
                try:
                    read.append(_history_message(msg, mpath, phone_number_id, display, customer))
                except PayloadError:
                    whole = False
        whole = whole and isinstance(threads, list)
    out.messages.extend(read)
    if not whole or not isinstance(chunks, list):
        out.others.append(other_event("history", value, path))


def _history_message(
    msg: object, path: str, phone_number_id: str, display: str | None, customer: str | None
) -> InboundMessage:
    msg, wamid, sent_at, msg_kind = message_header(msg, path)
    sender, to = str_or_none(msg, "from"), str_or_none(msg, "to")
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
    wa_id = dialable(peer)
    user_id = None if from_business else str_or_none(msg, "from_user_id")
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


def state_sync(value: dict[str, Any], path: str, out: Records) -> None:
    vpath = f"{path}.value"
    items = value.get("state_sync")
    try:
        phone_number_id, _ = metadata(value, vpath)
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
        out.others.append(other_event("smb_app_state_sync", value, path))


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
    meta = item.get("metadata")
    sent_at = timestamp(meta if isinstance(meta, dict) else {}, f"{path}.metadata")
    return ContactSync(
        phone_number_id=phone_number_id,
        conversation_key=conversation_key(number, None, f"{path}.contact.phone_number"),
        full_name=str_or_none(contact, "full_name"),
        first_name=str_or_none(contact, "first_name"),
        action=action,
        timestamp=sent_at,
        raw=item,
    )
