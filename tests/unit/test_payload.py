import copy
import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.rules.events import InboundMessage, OtherEvent, ParsedBatch, PayloadError, StatusEvent
from bot.rules.payload import parse_webhook
from sandbox import whatsapp_payloads as wa

PHONE = "5215512345678"


def _one(doc) -> InboundMessage:
    batch = parse_webhook(doc)
    assert len(batch.messages) == 1 and not batch.statuses and not batch.others
    return batch.messages[0]


def test_text_message_becomes_an_inbound_message():
    msg = wa.text(PHONE, "hola", wamid="wamid.A", timestamp=1749416383)
    doc = wa.message_payload([msg], contacts=[wa.contact("Ana", PHONE)])
    got = _one(doc)
    assert got == InboundMessage(
        wamid="wamid.A",
        conversation_key="+525512345678",
        wa_id=PHONE,
        user_id=None,
        phone_number_id=wa.PHONE_NUMBER_ID,
        display_phone_number=wa.DISPLAY_PHONE,
        profile_name="Ana",
        timestamp=1749416383,
        kind="text",
        raw=msg,
    )


def test_every_entry_change_message_and_status_becomes_a_record():
    first = wa.message_payload([wa.text("16505551234", "a"), wa.image("16505551234")])
    second = wa.status_payload("wamid.S1", "delivered", "16505551234")
    third = wa.echo_payload("16505551234", "sent from the app")
    change = lambda d: d["entry"][0]["changes"][0]  # noqa: E731 - local shorthand
    doc = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "1", "changes": [change(first), change(second)]},
            {"id": "2", "changes": [change(third), change(copy.deepcopy(first))]},
        ],
    }
    batch = parse_webhook(doc)
    assert [m.kind for m in batch.messages] == ["text", "image", "text", "text", "image"]
    assert [m.origin for m in batch.messages] == ["customer", "customer", "echo", "customer", "customer"]
    assert [s.status for s in batch.statuses] == ["delivered"]
    assert batch.others == ()


def test_a_change_with_messages_and_statuses_yields_both():
    doc = wa.message_payload([wa.text("16505551234", "hi")])
    status = wa.status_payload("wamid.S", "read", "16505551234")
    doc["entry"][0]["changes"][0]["value"]["statuses"] = status["entry"][0]["changes"][0]["value"]["statuses"]
    batch = parse_webhook(doc)
    assert len(batch.messages) == 1 and len(batch.statuses) == 1


def test_business_scoped_user_id_when_from_is_absent():
    msg = wa.text(None, "hi", user_id="US.13491208655302741918")
    doc = wa.message_payload([msg], contacts=[wa.contact("Zed", None, "US.13491208655302741918")])
    got = _one(doc)
    assert got.conversation_key == "user:US.13491208655302741918"
    assert got.wa_id is None and got.user_id == "US.13491208655302741918"
    assert got.profile_name == "Zed"


def test_user_id_from_contacts_when_message_has_none():
    msg = wa.text(None, "hi")
    got = _one(wa.message_payload([msg], contacts=[wa.contact("Zed", None, "BR.777")]))
    assert got.conversation_key == "user:BR.777" and got.user_id == "BR.777"


def test_phone_wins_over_user_id_but_user_id_is_kept():
    msg = wa.text("16505551234", "hi")
    got = _one(wa.message_payload([msg], contacts=[wa.contact("Al", "16505551234", "US.1")]))
    assert got.conversation_key == "+16505551234" and got.user_id == "US.1"


def test_unparseable_from_falls_back_to_the_user_id():
    got = _one(
        wa.message_payload([wa.text("US.13491208655302741918", "hi", user_id="US.13491208655302741918")])
    )
    assert got.conversation_key == "user:US.13491208655302741918"
    assert got.wa_id == "US.13491208655302741918"


def test_profile_name_comes_from_the_matching_contact():
    msgs = [wa.text("16505551234", "a"), wa.text("447911123456", "b")]
    contacts = [wa.contact("Al", "16505551234"), wa.contact("Bo", "447911123456")]
    batch = parse_webhook(wa.message_payload(msgs, contacts=contacts))
    assert [m.profile_name for m in batch.messages] == ["Al", "Bo"]


def test_profile_name_falls_back_to_the_first_contact():
    got = _one(wa.message_payload([wa.text("16505551234", "a")], contacts=[wa.contact("Cy", "999")]))
    assert got.profile_name == "Cy"


def test_system_message_without_contacts():
    got = _one(wa.message_payload([wa.system("16505551234", "12195555358")]))
    assert got.kind == "system" and got.profile_name is None


@pytest.mark.parametrize("label,msg", wa.ALL_KINDS, ids=[k for k, _ in wa.ALL_KINDS])
def test_every_kind_is_stored(label, msg):
    got = _one(wa.message_payload([msg]))
    assert got.kind == msg["type"] and got.raw == msg


def test_statuses_become_status_events():
    errors = [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {"details": "More than 24 hours have passed"},
        }
    ]
    doc = wa.status_payload("wamid.F", "failed", "16505551234", errors=errors, timestamp="1750000000")
    batch = parse_webhook(doc)
    assert batch.statuses == (
        StatusEvent(
            wamid="wamid.F",
            status="failed",
            timestamp=1750000000,
            recipient_id="16505551234",
            phone_number_id=wa.PHONE_NUMBER_ID,
            errors=tuple(errors),
            raw=doc["entry"][0]["changes"][0]["value"]["statuses"][0],
        ),
    )


def test_status_to_a_user_id_has_no_phone():
    doc = wa.status_payload("wamid.U", "sent", "x")
    item = doc["entry"][0]["changes"][0]["value"]["statuses"][0]
    del item["recipient_id"]
    item["recipient_user_id"] = "US.1"
    assert parse_webhook(doc).statuses[0].recipient_id == "US.1"


def _dedupe(field, value):
    canonical = json.dumps({"field": field, "value": value}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    "doc",
    [
        wa.change_body(
            "smb_message_echoes", {"errors": [{"code": 1}]}, phone_number_id="1", display_phone="2"
        ),
        wa.history_declined_payload(),
        wa.errors_payload(),
        wa.change_body(
            "smb_app_state_sync",
            {"state_sync": [{"type": "contact", "action": "add"}]},
            phone_number_id="1",
            display_phone="2",
        ),
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {"event": "VERIFIED"}}]}],
        },
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "brand_new_field", "value": {}}]}],
        },
        wa.message_payload([]),
    ],
    ids=[
        "echoes-errors-only",
        "history-declined",
        "errors-only",
        "app-state-sync",
        "account-update",
        "unknown-field",
        "no-messages",
    ],
)
def test_other_changes_are_kept_whole(doc):
    change = doc["entry"][0]["changes"][0]
    batch = parse_webhook(doc)
    assert not batch.messages and not batch.statuses
    (other,) = batch.others
    assert other == OtherEvent(
        field=change["field"],
        dedupe_key=_dedupe(change["field"], change["value"]),
        phone_number_id=change["value"].get("metadata", {}).get("phone_number_id"),
        raw={"field": change["field"], "value": change["value"]},
    )


def test_dedupe_key_ignores_key_order_and_is_stable():
    doc = wa.history_declined_payload()
    value = doc["entry"][0]["changes"][0]["value"]
    reordered = copy.deepcopy(doc)
    reordered["entry"][0]["changes"][0]["value"] = dict(reversed(list(value.items())))
    assert parse_webhook(doc).others[0].dedupe_key == parse_webhook(reordered).others[0].dedupe_key


def test_empty_entry_list_is_an_empty_batch():
    assert parse_webhook({"object": "whatsapp_business_account", "entry": []}).empty


def _valid():
    return wa.message_payload([wa.text("16505551234", body) for body in "abcd"])


def _mutate(path, new):
    doc = _valid()
    *parents, last = path
    node = doc
    for key in parents:
        node = node[key]
    if new is KeyError:
        del node[last]
    else:
        node[last] = new
    return doc


V = ("entry", 0, "changes", 0, "value")
M3 = V + ("messages", 3)


@pytest.mark.parametrize(
    ("doc", "path", "reason"),
    [
        ([], "$", "object"),
        ("x", "$", "object"),
        (None, "$", "object"),
        ({"object": "page", "entry": []}, "object", "whatsapp_business_account"),
        ({"object": "whatsapp_business_account"}, "entry", "list"),
        ({"object": "whatsapp_business_account", "entry": {}}, "entry", "list"),
        (_mutate(("entry", 0), 7), "entry[0]", "object"),
        (_mutate(("entry", 0, "changes"), KeyError), "entry[0].changes", "list"),
        (_mutate(("entry", 0, "changes", 0, "field"), KeyError), "entry[0].changes[0].field", "string"),
        (_mutate(("entry", 0, "changes", 0, "field"), 3), "entry[0].changes[0].field", "string"),
        (_mutate(V, []), "entry[0].changes[0].value", "object"),
        (_mutate(V + ("messages",), {}), "entry[0].changes[0].value.messages", "list"),
        (
            _mutate(V + ("metadata", "phone_number_id"), KeyError),
            "entry[0].changes[0].value.metadata.phone_number_id",
            "missing",
        ),
        (_mutate(V + ("metadata",), KeyError), "entry[0].changes[0].value.metadata", "object"),
        (_mutate(M3, "text"), "entry[0].changes[0].value.messages[3]", "object"),
        (_mutate(M3 + ("id",), KeyError), "entry[0].changes[0].value.messages[3].id", "missing"),
        (_mutate(M3 + ("id",), 12), "entry[0].changes[0].value.messages[3].id", "string"),
        (
            _mutate(M3 + ("timestamp",), KeyError),
            "entry[0].changes[0].value.messages[3].timestamp",
            "missing",
        ),
        (_mutate(M3 + ("timestamp",), "soon"), "entry[0].changes[0].value.messages[3].timestamp", "numeric"),
        (_mutate(M3 + ("timestamp",), "-5"), "entry[0].changes[0].value.messages[3].timestamp", "numeric"),
        (_mutate(M3 + ("timestamp",), 1.5), "entry[0].changes[0].value.messages[3].timestamp", "string"),
        (_mutate(M3 + ("timestamp",), True), "entry[0].changes[0].value.messages[3].timestamp", "epoch"),
        (
            _mutate(M3 + ("timestamp",), "9" * 40),
            "entry[0].changes[0].value.messages[3].timestamp",
            "numeric",
        ),
        (_mutate(M3 + ("type",), KeyError), "entry[0].changes[0].value.messages[3].type", "missing"),
        (_mutate(M3 + ("from",), KeyError), "entry[0].changes[0].value.messages[3].from", "neither"),
        (_mutate(M3 + ("from",), "not-a-phone"), "entry[0].changes[0].value.messages[3].from", "digits"),
        (_mutate(M3 + ("from",), 16505551234), "entry[0].changes[0].value.messages[3].from", "string"),
    ],
)
def test_structure_errors_name_the_path(doc, path, reason):
    with pytest.raises(PayloadError) as err:
        parse_webhook(doc)
    assert err.value.path == path
    assert reason in err.value.reason


@pytest.mark.parametrize(
    ("field", "new", "path"),
    [
        ("id", KeyError, "id"),
        ("status", None, "status"),
        ("timestamp", "x", "timestamp"),
        ("errors", "boom", "errors"),
    ],
)
def test_status_errors_name_the_path(field, new, path):
    doc = wa.status_payload("wamid.S", "sent", "1")
    item = doc["entry"][0]["changes"][0]["value"]["statuses"][0]
    if new is KeyError:
        del item[field]
    else:
        item[field] = new
    with pytest.raises(PayloadError) as err:
        parse_webhook(doc)
    assert err.value.path == f"entry[0].changes[0].value.statuses[0].{path}"


def test_unknown_message_type_is_not_an_error():
    assert _one(wa.message_payload([wa.unknown_type("16505551234", "hologram")])).kind == "hologram"


def test_deep_nesting_is_a_payload_error():
    deep: object = "bottom"
    for _ in range(100_000):
        deep = [deep]
    doc = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "history", "value": {"x": deep}}]}],
    }
    with pytest.raises(PayloadError):
        parse_webhook(doc)


def test_huge_batch():
    msgs = [wa.text("16505551234", str(i), timestamp=i) for i in range(1000)]
    assert len(parse_webhook(wa.message_payload(msgs)).messages) == 1000


# --- fuzzing: whatever JSON arrives, only PayloadError or a batch comes out --------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_reject(doc):
    try:
        result = parse_webhook(doc)
    except PayloadError as exc:
        assert isinstance(exc.path, str) and isinstance(exc.reason, str)
        return None
    assert isinstance(result, ParsedBatch)
    return result


@FUZZ
@given(json_values)
def test_arbitrary_json_only_raises_payload_error(doc):
    _parse_or_reject(doc)


@FUZZ
@given(json_values)
def test_arbitrary_json_inside_a_webhook_envelope(inner):
    _parse_or_reject({"object": "whatsapp_business_account", "entry": inner})
    _parse_or_reject({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": inner}]})


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _paths(child, prefix + (i,))


_TEMPLATES = [wa.message_payload([m]) for _, m in wa.ALL_KINDS] + [
    wa.status_payload("wamid.S", "failed", "1", errors=[{"code": 1}]),
    wa.echo_payload("16505551234", "x"),
    wa.history_payload(
        "16505551234",
        [wa.history_message("16505551234", "a"), wa.history_message("16505551234", "b", from_business=True)],
    ),
    wa.state_sync_payload(
        [wa.contact_sync("16505551234", "Ana García"), wa.contact_sync("16505551235", action="remove")]
    ),
]


@FUZZ
@given(st.data())
def test_any_field_of_a_real_payload_may_hold_any_json(data):
    doc = copy.deepcopy(data.draw(st.sampled_from(_TEMPLATES)))
    paths = list(_paths(doc))[1:]
    *parents, last = data.draw(st.sampled_from(paths))
    node = doc
    for key in parents:
        node = node[key]
    node[last] = data.draw(json_values)
    _parse_or_reject(doc)


def test_other_event_with_odd_but_valid_json_values():
    value = {"text": "lone \ud800 surrogate", "n": float("nan"), "big": 10**40}
    change = {"field": "x", "value": value}
    doc = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    assert len(parse_webhook(doc).others[0].dedupe_key) == 64


def test_values_json_cannot_hold_are_a_payload_error():
    doc = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "x", "value": {"s": {1, 2}}}]}],
    }
    with pytest.raises(PayloadError):
        parse_webhook(doc)


# -- coexistence: echoes, history, app state sync ----------------------------------------------


def test_echo_is_a_message_of_the_customers_conversation():
    doc = wa.echo_payload("+5215512345678", "Your order shipped", wamid="wamid.E1", timestamp=1749416400)
    got = _one(doc)
    echo = doc["entry"][0]["changes"][0]["value"]["message_echoes"][0]
    assert got == InboundMessage(
        wamid="wamid.E1",
        conversation_key="+525512345678",  # the customer's (`to`), folded like `from` is
        wa_id="5215512345678",  # bare digits, as messages' `from`
        user_id=None,
        phone_number_id=wa.PHONE_NUMBER_ID,
        display_phone_number=wa.DISPLAY_PHONE,
        profile_name=None,
        timestamp=1749416400,
        kind="text",
        raw=echo,
        origin="echo",
        from_business=True,
    )


def test_echo_of_media_keeps_the_message_shape():
    echo = wa.echo_of(wa.image(PHONE, caption="invoice", media_id="77"), PHONE)
    got = _one(wa.echo_payload(PHONE, "", echoes=[echo]))
    assert got.kind == "image" and got.raw["image"]["id"] == "77" and got.origin == "echo"


def test_echo_to_a_business_scoped_user():
    echo = {
        "from": wa.DISPLAY_PHONE,
        "to_user_id": "US.99",
        "id": "wamid.U",
        "timestamp": "1",
        "type": "text",
        "text": {"body": "hi"},
    }
    got = _one(wa.echo_payload(PHONE, "", echoes=[echo]))
    assert got.conversation_key == "user:US.99" and got.wa_id is None and got.user_id == "US.99"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda e: e.pop("id"), "message_echoes[0].id"),
        (lambda e: e.update(timestamp="soon"), "message_echoes[0].timestamp"),
        (lambda e: e.pop("type"), "message_echoes[0].type"),
        (lambda e: e.update(to=5), "message_echoes[0].to"),
        (lambda e: e.pop("to"), "message_echoes[0].to"),
        (lambda e: e.update(to="not a number"), "message_echoes[0].to"),
    ],
    ids=["no-id", "bad-timestamp", "no-type", "to-not-string", "no-to", "to-not-phone"],
)
def test_echoes_are_read_as_strictly_as_messages(mutate, path):
    doc = wa.echo_payload(PHONE, "x")
    mutate(doc["entry"][0]["changes"][0]["value"]["message_echoes"][0])
    with pytest.raises(PayloadError) as err:
        parse_webhook(doc)
    assert err.value.path == "entry[0].changes[0].value." + path


def test_history_chunk_becomes_history_messages_in_payload_order():
    old = [
        wa.history_message(PHONE, "hello?", wamid="wamid.H1", timestamp=100),
        wa.history_message(PHONE, "hi! how can we help", from_business=True, wamid="wamid.H2", timestamp=160),
    ]
    other = [wa.history_message("16505551234", "thanks", wamid="wamid.H3", timestamp=90)]
    doc = wa.history_payload(
        PHONE,
        threads=[{"id": PHONE, "messages": old}, {"id": "16505551234", "messages": other}],
        phase=1,
        chunk_order=3,
        progress=40,
    )
    batch = parse_webhook(doc)
    assert not batch.others and not batch.statuses
    got = [
        (m.wamid, m.conversation_key, m.wa_id, m.origin, m.from_business, m.timestamp) for m in batch.messages
    ]
    assert got == [
        ("wamid.H1", "+525512345678", PHONE, "history", False, 100),
        ("wamid.H2", "+525512345678", PHONE, "history", True, 160),
        ("wamid.H3", "+16505551234", "16505551234", "history", False, 90),
    ]
    assert batch.messages[1].raw["history_context"] == {"status": "DELIVERED"}
    assert all(m.profile_name is None for m in batch.messages)


def test_history_tells_the_business_by_its_number_when_to_is_missing():
    # `to` marks the business's messages; without it, `from` is compared with the business number
    # (in another spelling, too) and, failing that, with the thread's customer.
    mine = wa.history_message(PHONE, "from us", wamid="wamid.B") | {"from": "+1 555 078 3881"}
    theirs = wa.history_message(PHONE, "from them", wamid="wamid.C")
    batch = parse_webhook(wa.history_payload(PHONE, [mine, theirs]))
    assert [m.from_business for m in batch.messages] == [True, False]
    doc = wa.history_payload(PHONE, [mine | {"from": "19995550000"}, theirs | {"from": "5215512345678"}])
    del doc["entry"][0]["changes"][0]["value"]["metadata"]["display_phone_number"]
    assert [m.from_business for m in parse_webhook(doc).messages] == [True, False]


def test_a_progress_only_history_chunk_is_nothing():
    doc = wa.history_payload(PHONE, progress=100)
    del doc["entry"][0]["changes"][0]["value"]["history"][0]["threads"]
    assert parse_webhook(doc).empty


def test_unreadable_history_items_keep_the_chunk_raw_and_the_rest_readable():
    good = wa.history_message(PHONE, "fine", wamid="wamid.OK")
    broken = [{"id": "wamid.X"}, "nope", wa.history_message(PHONE, "x") | {"timestamp": "later"}]
    doc = wa.history_payload(PHONE, [broken[0], good, broken[1], broken[2]])
    batch = parse_webhook(doc)
    assert [m.wamid for m in batch.messages] == ["wamid.OK"]
    (other,) = batch.others
    assert other.field == "history" and other.raw["value"] == doc["entry"][0]["changes"][0]["value"]


def test_history_without_metadata_is_kept_raw_not_bounced():
    doc = wa.history_payload(PHONE)
    del doc["entry"][0]["changes"][0]["value"]["metadata"]
    batch = parse_webhook(doc)
    assert not batch.messages and [o.field for o in batch.others] == ["history"]


def test_state_sync_becomes_contact_syncs():
    items = [
        wa.contact_sync(PHONE, "Ana García (VIP)", first_name="Ana", timestamp=50),
        wa.contact_sync("16505551234", action="remove", timestamp=51),
    ]
    batch = parse_webhook(wa.state_sync_payload(items))
    assert not batch.messages and not batch.others and not batch.empty
    assert [
        (c.conversation_key, c.full_name, c.first_name, c.action, c.timestamp) for c in batch.contacts
    ] == [
        ("+525512345678", "Ana García (VIP)", "Ana", "add", 50),
        ("+16505551234", None, None, "remove", 51),
    ]
    assert batch.contacts[0].phone_number_id == wa.PHONE_NUMBER_ID and batch.contacts[0].raw == items[0]


@pytest.mark.parametrize(
    "item",
    [
        {"type": "label", "label": {"name": "VIP"}, "action": "add", "metadata": {"timestamp": "1"}},
        {
            "type": "contact",
            "contact": {"full_name": "No Number"},
            "action": "add",
            "metadata": {"timestamp": "1"},
        },
        {"type": "contact", "contact": {"phone_number": PHONE}, "action": "add"},
        {
            "type": "contact",
            "contact": {"phone_number": "call me"},
            "action": "add",
            "metadata": {"timestamp": "1"},
        },
    ],
    ids=["other-state-type", "no-phone", "no-timestamp", "not-a-phone"],
)
def test_unreadable_state_sync_items_keep_the_change_raw(item):
    doc = wa.state_sync_payload([wa.contact_sync(PHONE, "Ana"), item])
    batch = parse_webhook(doc)
    assert [c.full_name for c in batch.contacts] == ["Ana"]
    assert [o.field for o in batch.others] == ["smb_app_state_sync"]
