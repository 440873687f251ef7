import pytest

from bot.rules.phones import (
    conversation_key_for_phone,
    conversation_key_for_user,
    display_phone,
    mask_phone,
)


@pytest.mark.parametrize(
    ("one", "other", "key"),
    [
        # Mexico: legacy mobile "1" after the country code.
        ("5215512345678", "525512345678", "+525512345678"),
        ("5213312345678", "523312345678", "+523312345678"),
        # Argentina: mobile "9" after the country code.
        ("5491123456789", "541123456789", "+541123456789"),
        ("5493515551234", "543515551234", "+543515551234"),
        # Brazil: ninth digit on mobiles.
        ("5511987654321", "551187654321", "+551187654321"),
        ("5521998765432", "552198765432", "+552198765432"),
    ],
    ids=["mx-cdmx", "mx-gdl", "ar-baires", "ar-cordoba", "br-sp", "br-rio"],
)
def test_double_spellings_share_one_key(one, other, key):
    assert conversation_key_for_phone(one) == key
    assert conversation_key_for_phone(other) == key


@pytest.mark.parametrize(
    ("wa_id", "key"),
    [
        ("16505551234", "+16505551234"),  # US
        ("447911123456", "+447911123456"),  # UK mobile
        ("919876543210", "+919876543210"),  # India
        ("4915112345678", "+4915112345678"),  # Germany mobile
        ("493012345678", "+493012345678"),  # Germany Berlin landline
        ("551133334444", "+551133334444"),  # Brazil landline: no ninth digit to fold
        ("5511387654321", "+5511387654321"),  # 13 digits but not a mobile pattern: untouched
    ],
)
def test_other_numbers_are_untouched(wa_id, key):
    assert conversation_key_for_phone(wa_id) == key


@pytest.mark.parametrize(
    "spelling",
    ["+5215512345678", " 52 1 55 1234 5678 ", "+52-155-1234-5678", "525512345678"],
)
def test_formatting_noise_is_tolerated(spelling):
    assert conversation_key_for_phone(spelling) == "+525512345678"


def test_unvalidated_numbers_keep_their_digits():
    assert conversation_key_for_phone("99912345") == "+99912345"
    assert conversation_key_for_phone("12345") == "+12345"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "+",
        "abc",
        "12ab34",
        "١٢٣٤٥٦٧٨",
        "user:123",
        "12",
        "1234567890123456",
        "++15551234",
        None,
        15551234,
    ],
)
def test_garbage_is_rejected(garbage):
    with pytest.raises(ValueError):
        conversation_key_for_phone(garbage)


def test_user_key():
    assert conversation_key_for_user("US.13491208655302741918") == "user:US.13491208655302741918"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+525512345678", "+52********78"),
        ("16505551234", "+1********34"),
        ("+447911123456", "+44********56"),
        ("+5511987654321", "+55*********21"),
        ("user:US.13491208655302741918", "user:US*******************18"),
        ("user:abc", "user:***"),
        ("not a phone", "***"),
        ("", "***"),
    ],
)
def test_mask_phone(value, masked):
    assert mask_phone(value) == masked


def test_mask_never_shows_the_middle():
    masked = mask_phone("+525512345678")
    assert "551234" not in masked and len(masked) == len("+525512345678")


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("+525512345678", "+52 55 1234 5678"),
        ("+16505551234", "+1 650-555-1234"),
        ("+447911123456", "+44 7911 123456"),
        ("+99912345", "+99912345"),
        ("user:US.1349", "user:US.1349"),
    ],
)
def test_display_phone(key, shown):
    assert display_phone(key) == shown
