"""Who "the person" of an access or erasure request is: every name storage may know them by.

An operator types what the customer gave them: a phone number in any spelling
(`+52 1 55 1234 5678`, `5215512345678`, `525512345678`) or a business-scoped user id (BSUID,
Meta's `from_user_id`/`user_id`, e.g. `US.13491208655302741918`, also accepted as `user:…`).
Storage keys a conversation by the folded phone (`bot.rules.phones`) or `user:<id>`, possibly
with a service suffix (`+52…#sales`, `bot.rules.routing`), and keeps Meta's own spelling of the
number (`wa_id`, `to_wa_id`, `recipient_id`). Mexico, Argentina and Brazil write one mobile two
ways, so one person has up to two digit spellings, each with or without `+`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.rules.phones import conversation_key_for_phone, conversation_key_for_user

USER_PREFIX = "user:"
# Meta's business-scoped ids are a country and an opaque id (`US.1349…`); an explicit `user:`
# accepts any other shape Meta may adopt, but never whitespace or control characters.
_BSUID = re.compile(r"[A-Za-z]{2,8}\.[A-Za-z0-9]{1,64}")
_EXPLICIT_USER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_BR_OLD_MOBILE_FIRST = frozenset("6789")


class NotAPerson(ValueError):
    """The argument is neither a phone number nor a business-scoped user id."""


@dataclass(frozen=True)
class Person:
    """Every identity of one customer, as storage may hold it; sorted, so output is stable.

    Attributes:
        conversation_keys: bare keys (`+525512345678`, `user:US.1…`); routed keys extend them
            with `#service`.
        wa_ids: Meta's spellings of the number: digits, and digits with `+` (echoes use it).
        user_ids: business-scoped user ids.
    """

    conversation_keys: tuple[str, ...]
    wa_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = field(default=())

    def widened(self, *, wa_ids: tuple[str, ...] = (), user_ids: tuple[str, ...] = ()) -> Person:
        """This person with more identities storage linked to them (a phone's BSUID, a BSUID's phone).

        Values that are not a plausible number or id are ignored: storage may hold odd ones.
        """
        keys, numbers, users = set(self.conversation_keys), set(self.wa_ids), set(self.user_ids)
        for wa_id in wa_ids:
            try:
                key = conversation_key_for_phone(wa_id)
            except ValueError:
                continue
            keys.add(key)
            numbers.update(number_spellings(key))
        for user_id in user_ids:
            if user_id and _EXPLICIT_USER_ID.fullmatch(user_id):
                keys.add(conversation_key_for_user(user_id))
                users.add(user_id)
        return Person(tuple(sorted(keys)), tuple(sorted(numbers)), tuple(sorted(users)))

    def as_json(self) -> dict[str, list[str]]:
        return {
            "conversation_keys": list(self.conversation_keys),
            "wa_ids": list(self.wa_ids),
            "user_ids": list(self.user_ids),
        }


def person_from_argument(text: str) -> Person:
    """The person an operator named on the command line.

    Args:
        text: a phone number in any spelling, a BSUID, or `user:<BSUID>`.

    Returns:
        Their conversation key(s), every spelling of their number, or their user id.

    Raises:
        NotAPerson: with a sentence the operator can act on.
    """
    value = text.strip() if isinstance(text, str) else ""
    if not value:
        raise NotAPerson("give a phone number (e.g. +52 1 55 1234 5678) or a business-scoped user id")
    if value.lower().startswith(USER_PREFIX):
        user_id = value[len(USER_PREFIX) :]
        if not _EXPLICIT_USER_ID.fullmatch(user_id):
            raise NotAPerson(f"{value!r} is not a business-scoped user id")
        return Person((), ()).widened(user_ids=(user_id,))
    if _BSUID.fullmatch(value):
        return Person((), ()).widened(user_ids=(value,))
    try:
        key = conversation_key_for_phone(value)
    except ValueError as exc:
        raise NotAPerson(
            f"{value!r} is neither a phone number ({exc}) nor a business-scoped user id (like US.1234)"
        ) from None
    return Person((key,), number_spellings(key))


def number_spellings(key: str) -> tuple[str, ...]:
    """Meta's possible spellings of the number behind a phone conversation key, sorted.

    `+525512345678` → `+5215512345678`, `+525512345678`, `5215512345678`, `525512345678`.
    Only spellings that fold back to `key` are given, so no other person's number slips in.
    """
    digits = key.removeprefix("+")
    candidates = {digits}
    if len(digits) == 12 and digits.startswith("52"):
        candidates.add("521" + digits[2:])
    if len(digits) == 12 and digits.startswith("54"):
        candidates.add("549" + digits[2:])
    if len(digits) == 12 and digits.startswith("55") and digits[4] in _BR_OLD_MOBILE_FIRST:
        candidates.add(digits[:4] + "9" + digits[4:])
    same = set()
    for candidate in candidates:
        try:
            if conversation_key_for_phone(candidate) == key:
                same.add(candidate)
        except ValueError:
            continue
    return tuple(sorted(same | {"+" + d for d in same}))
