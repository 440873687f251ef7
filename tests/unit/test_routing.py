import dataclasses

import pytest

from bot.rules.events import InboundMessage, ParsedBatch
from bot.rules.phones import display_phone, mask_phone
from bot.rules.routing import phone_of, route_batch, service_key


def message(key, pnid="A", user_id=None):
    return InboundMessage(
        wamid=f"w-{key}-{pnid}",
        conversation_key=key,
        wa_id=None,
        user_id=user_id,
        phone_number_id=pnid,
        display_phone_number=None,
        profile_name="Ana",
        timestamp=1,
        kind="text",
        raw={},
    )


SERVICES = {"A": ("support", True), "B": ("sales", False)}


@pytest.mark.parametrize(
    "key, pnid, expected",
    [
        ("+525512345678", "A", "+525512345678"),
        ("+525512345678", "B", "+525512345678#sales"),
        ("user:US.123", "B", "user:US.123#sales"),
    ],
)
def test_default_service_keeps_the_bare_key_others_get_their_own(key, pnid, expected):
    [routed] = route_batch(
        ParsedBatch(messages=(message(key, pnid),)), SERVICES.__getitem__, lambda u, s: None
    ).messages
    assert routed.conversation_key == expected


def test_a_user_who_hid_their_phone_goes_back_to_their_conversation():
    seen = []

    def known(user_id, service_id):
        seen.append((user_id, service_id))
        return "+525512345678"

    batch = ParsedBatch(
        messages=(message("user:US.9", "A", user_id="US.9"), message("+4477009", "A", user_id="US.8"))
    )
    first, second = route_batch(batch, SERVICES.__getitem__, known).messages
    assert first.conversation_key == "+525512345678"
    assert second.conversation_key == "+4477009"  # a phone key needs no lookup
    assert seen == [("US.9", "support")]


def test_keys_show_and_mask_their_customer_part():
    key = service_key("+525512345678", "sales", default=False)
    assert phone_of(key) == "+525512345678"
    assert display_phone(key) == display_phone("+525512345678")
    assert mask_phone(key).endswith("#sales") and "5512345" not in mask_phone(key)


def test_an_empty_batch_is_returned_as_is():
    batch = ParsedBatch()
    assert route_batch(batch, SERVICES.__getitem__, lambda u, s: None) is batch
    assert dataclasses.is_dataclass(batch)
