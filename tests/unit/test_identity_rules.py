"""Who a customer is: one key per person however Meta spells the number, and business-scoped ids.

Pure rules only (payload parsing and phone keys), plus the sandbox's own addressing rule, which
stands in for what Meta's Cloud API accepts for each kind of addressee.
"""

from __future__ import annotations

import pytest

from bot.rules.payload import parse_webhook
from bot.rules.phones import conversation_key_for_phone, conversation_key_for_user, display_phone, mask_phone
from sandbox import whatsapp_payloads as wa
from sandbox.graph import validate
from sandbox.graph.errors import GraphError

# (one spelling, the other spelling, the single conversation key both must share)
PAIRS = [
    pytest.param("5215512345678", "525512345678", "+525512345678", id="mx-521-vs-52"),
    pytest.param("5491123456789", "541123456789", "+541123456789", id="ar-549-vs-54"),
    pytest.param("5511987654321", "551187654321", "+551187654321", id="br-ninth-digit"),
]
BSUID = "US.13491208655302741918"
PARENT_BSUID = "US.ENT.11815799212886844830"


def _parsed(messages, contacts):
    return parse_webhook(wa.message_payload(messages, contacts=contacts)).messages


# -- double spellings --------------------------------------------------------------------------


@pytest.mark.parametrize(("one", "other", "key"), PAIRS)
def test_both_spellings_share_one_key(one, other, key):
    assert conversation_key_for_phone(one) == conversation_key_for_phone(other) == key


@pytest.mark.parametrize(("one", "other", "key"), PAIRS)
def test_parsed_messages_share_the_key_and_keep_the_wa_id_meta_sent(one, other, key):
    # One batch with both spellings, each with its own contacts[] entry: one person, two messages.
    first, second = _parsed(
        [wa.text(one, "first"), wa.text(other, "second")],
        [wa.contact("Ana", one), wa.contact("Ana", other)],
    )
    assert first.conversation_key == second.conversation_key == key
    # The key never needs to be dialable: what Meta sent is kept to reply to.
    assert (first.wa_id, second.wa_id) == (one, other)
    assert first.profile_name == second.profile_name == "Ana"


@pytest.mark.parametrize(("one", "other", "key"), PAIRS)
def test_spellings_with_plus_and_spaces_still_fold(one, other, key):
    spaced = f"+{one[:2]} {one[2:5]} {one[5:]}"
    assert conversation_key_for_phone(spaced) == key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # Brazil: a landline (first digit 2-5) after a 9 is not an old mobile spelling.
        pytest.param("5511933334444", "551133334444", id="br-landline-not-folded"),
        # Mexico/Argentina: only 13-digit 521/549 forms fold; a different person stays apart.
        pytest.param("5215512345678", "525512345679", id="mx-different-number"),
        pytest.param("5491123456789", "541123456788", id="ar-different-number"),
        # Same national digits in another country are another person.
        pytest.param("525512345678", "545512345678", id="mx-vs-ar"),
    ],
)
def test_different_people_keep_different_keys(a, b):
    assert conversation_key_for_phone(a) != conversation_key_for_phone(b)


@pytest.mark.parametrize(("one", "other", "key"), PAIRS)
def test_logs_and_tickets_show_the_key_not_the_digits(one, other, key):
    masked = mask_phone(key)
    assert key[-8:-2] not in masked and masked.endswith(key[-2:])
    assert display_phone(key).startswith("+" + key[1:3])


# -- business-scoped user ids (no `from`) -------------------------------------------------------


def test_user_without_from_is_keyed_on_from_user_id():
    [msg] = _parsed([wa.text(None, "hi", user_id=BSUID)], [wa.contact("Zed", None, BSUID)])
    assert msg.conversation_key == conversation_key_for_user(BSUID) == f"user:{BSUID}"
    assert (msg.wa_id, msg.user_id, msg.profile_name) == (None, BSUID, "Zed")


def test_user_without_from_or_from_user_id_is_keyed_on_the_contacts_user_id():
    [msg] = _parsed([wa.text(None, "hi")], [wa.contact("Zed", None, BSUID)])
    assert (msg.conversation_key, msg.wa_id, msg.user_id) == (f"user:{BSUID}", None, BSUID)


def test_parent_bsuid_is_a_key_too():
    [msg] = _parsed([wa.text(None, "hi", user_id=PARENT_BSUID)], [wa.contact("Zed", None, PARENT_BSUID)])
    assert msg.conversation_key == f"user:{PARENT_BSUID}" and msg.user_id == PARENT_BSUID


def test_two_bsuid_users_in_one_batch_keep_their_own_key_and_name():
    other = "BR.777000111222333"
    msgs = _parsed(
        [wa.text(None, "a", user_id=BSUID), wa.text(None, "b", user_id=other)],
        [wa.contact("Zed", None, BSUID), wa.contact("Yara", None, other)],
    )
    assert [(m.conversation_key, m.profile_name) for m in msgs] == [
        (f"user:{BSUID}", "Zed"),
        (f"user:{other}", "Yara"),
    ]


def test_phone_users_id_is_kept_but_the_phone_keys_the_conversation():
    [msg] = _parsed(
        [wa.text("5215512345678", "hi", user_id=BSUID)], [wa.contact("Ana", "5215512345678", BSUID)]
    )
    assert (msg.conversation_key, msg.wa_id, msg.user_id) == ("+525512345678", "5215512345678", BSUID)


def test_someone_elses_user_id_is_never_borrowed():
    # Bo has no user id of his own; Ana's contact entry must not lend him hers.
    msgs = _parsed(
        [wa.text("5215512345678", "a"), wa.text("16505551234", "b")],
        [wa.contact("Ana", "5215512345678", BSUID), wa.contact("Bo", "16505551234")],
    )
    assert [m.user_id for m in msgs] == [BSUID, None]


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: wa.reaction(None, "wamid.X", "👍", user_id=BSUID), id="reaction"),
        pytest.param(lambda: wa.edit(None, "wamid.X", "fixed", user_id=BSUID), id="edit"),
        pytest.param(lambda: wa.revoke(None, "wamid.X", user_id=BSUID), id="revoke"),
    ],
)
def test_follow_ups_from_a_bsuid_user_join_their_conversation(build):
    [msg] = _parsed([build()], [wa.contact("Zed", None, BSUID)])
    assert msg.conversation_key == f"user:{BSUID}" and msg.raw[msg.kind]


def test_status_for_a_send_to_a_user_id_names_that_user():
    doc = wa.status_payload("wamid.S", "delivered", "ignored")
    item = doc["entry"][0]["changes"][0]["value"]["statuses"][0]
    del item["recipient_id"]
    item["recipient_user_id"] = BSUID
    [status] = parse_webhook(doc).statuses
    assert status.recipient_id == BSUID


def test_user_keys_are_masked_in_logs():
    masked = mask_phone(f"user:{BSUID}")
    assert masked.startswith("user:US") and BSUID[4:-2] not in masked


# -- how a send addresses each kind of customer (the Graph sandbox, as Meta documents) -----------


def _body(**address):
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        **address,
        "type": "text",
        "text": {"body": "hi"},
    }


def test_a_phone_goes_in_to():
    sent = validate.parse(_body(to="5215512345678"))
    assert (sent.to, sent.wa_id, sent.user_id) == ("5215512345678", "5215512345678", None)


@pytest.mark.parametrize("user_id", [BSUID, PARENT_BSUID])
def test_a_bsuid_goes_in_recipient(user_id):
    sent = validate.parse(_body(recipient=user_id))
    assert (sent.to, sent.user_id) == (user_id, user_id)


def test_to_wins_when_both_are_given():
    sent = validate.parse(_body(to="16505551234", recipient=BSUID))
    assert (sent.wa_id, sent.user_id) == ("16505551234", None)


@pytest.mark.parametrize(
    "address",
    [
        pytest.param({"to": BSUID}, id="bsuid-in-to"),
        pytest.param({"recipient": "5215512345678"}, id="phone-in-recipient"),
        pytest.param({"recipient": "not a bsuid"}, id="garbage-recipient"),
        pytest.param({}, id="nobody"),
    ],
)
def test_misaddressed_sends_are_refused_with_code_100(address):
    with pytest.raises(GraphError) as caught:
        validate.parse(_body(**address))
    assert caught.value.code == 100
