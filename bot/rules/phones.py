"""Phone numbers as conversation keys, for logs and for humans.

One customer must map to one conversation (and so one Jira ticket) even when Meta or the customer
writes the number two ways. Three countries have well-known double spellings of mobiles:

* Mexico: `521` + 10 digits (the pre-2019 mobile `1`) and `52` + 10 digits.
* Argentina: `549` + 10 digits (the mobile `9`) and `54` + 10 digits.
* Brazil: `55 DD 9XXXXXXXX` (ninth digit) and `55 DD XXXXXXXX` for accounts created before it.

We always key on the shorter spelling; `InboundMessage.wa_id` keeps what Meta sent, which is the
address replies must go to, so the key never needs to be dialable.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

_USER_PREFIX = "user:"
# Whitespace, dashes and dots are how people and spreadsheets write numbers; anything else means
# the value is not a phone number and must not silently become a key.
_SEPARATORS = re.compile(r"[\s\-.]+")
_E164_MAX_DIGITS = 15
_MIN_DIGITS = 4
# Before the ninth digit, Brazilian mobiles began with 6-9 and landlines with 2-5; only a mobile
# can have an old 8-digit spelling, so only those lose the 9 (a landline must never collide).
_BR_OLD_MOBILE_FIRST = frozenset("6789")


def _digits(wa_id: str) -> str:
    if not isinstance(wa_id, str):
        raise ValueError("phone number must be a string")
    compact = _SEPARATORS.sub("", wa_id)
    if compact.startswith("+"):
        compact = compact[1:]
    if not compact.isascii() or not compact.isdigit():
        raise ValueError("phone number must contain only digits")
    if not _MIN_DIGITS <= len(compact) <= _E164_MAX_DIGITS:
        raise ValueError(f"phone number must have {_MIN_DIGITS}-{_E164_MAX_DIGITS} digits")
    return compact


def _parse(digits: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None


def _is_brazil_ninth_digit_mobile(digits: str) -> bool:
    if len(digits) != 13 or not digits.startswith("55"):
        return False
    area, ninth, first = digits[2:4], digits[4], digits[5]
    if "0" in area or ninth != "9" or first not in _BR_OLD_MOBILE_FIRST:
        return False
    number = _parse(digits)
    if number is None or not phonenumbers.is_valid_number(number):
        return False
    return phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def _fold_double_spellings(digits: str) -> str:
    if len(digits) == 13 and digits.startswith("521"):
        return "52" + digits[3:]
    if len(digits) == 13 and digits.startswith("549"):
        return "54" + digits[3:]
    if _is_brazil_ninth_digit_mobile(digits):
        return digits[:4] + digits[5:]
    return digits


@functools.lru_cache(maxsize=4096)  # libphonenumber's parse is the costliest step of a webhook
def conversation_key_for_phone(wa_id: str) -> str:
    """Canonical E.164 key for Meta's `from`/`wa_id` (digits, `+` and spaces tolerated).

    Raises:
        ValueError: the value is not a plausible phone number.
    """
    digits = _fold_double_spellings(_digits(wa_id))
    number = _parse(digits)
    if number is not None and phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # Numbering plans change faster than libraries; an unknown but well-formed number still
    # deserves a stable key rather than a rejected message.
    return "+" + digits


def conversation_key_for_user(user_id: str) -> str:
    """Key for a business-scoped user id, used when Meta sends no phone number."""
    return f"{_USER_PREFIX}{user_id}"


def _country_code_len(digits: str) -> int:
    number = _parse(digits)
    if number is not None and number.country_code:
        return len(str(number.country_code))
    for size in (1, 2, 3):
        if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return size
    return 1


def mask_phone(s: str) -> str:
    """Mask a phone number or conversation key for logs: `+525512345678` -> `+52********78`.

    Never raises: logging must not fail because a value was odd.
    """
    if not isinstance(s, str) or not s:
        return "***"
    s, _, service = s.partition("#")  # a routed key: `+52…#sales` (bot.rules.routing)
    if service:
        return f"{mask_phone(s)}#{service}"
    if s.startswith(_USER_PREFIX):
        ident = s[len(_USER_PREFIX) :]
        # Business-scoped ids start with a country (`US.`), which helps triage; keep 2 + 2 chars.
        if len(ident) <= 6:
            return _USER_PREFIX + "*" * len(ident)
        return _USER_PREFIX + ident[:2] + "*" * (len(ident) - 4) + ident[-2:]
    try:
        digits = _digits(s)
    except ValueError:
        return "***"
    cc = _country_code_len(digits)
    hidden = max(len(digits) - cc - 2, 0)
    return "+" + digits[:cc] + "*" * hidden + digits[cc + hidden :]


def display_phone(key: str) -> str:
    """Human form of a conversation key (`+52 55 1234 5678`); other keys come back unchanged.

    A routed key (`+52…#sales`, see bot.rules.routing) shows its customer part only.
    """
    if not isinstance(key, str):
        return key
    key = key.partition("#")[0]
    if key.startswith(_USER_PREFIX):
        return key
    try:
        digits = _digits(key)
    except ValueError:
        return key
    number = _parse(digits)
    if number is None or not phonenumbers.is_valid_number(number):
        return "+" + digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
