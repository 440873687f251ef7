import json

import pytest

from bot.rules import comment_property as cp
from bot.rules.comment_property import CommentMark

# -- builders: exactly the JSON sent before the protocol had a module of its own -----------------


@pytest.mark.parametrize(
    ("built", "sent"),
    [
        (cp.customer_value("wamid.A"), '{"kind": "customer", "wamid": "wamid.A"}'),
        (
            cp.customer_value("wamid.A", history=True),
            '{"kind": "customer", "wamid": "wamid.A", "history": true}',
        ),
        (cp.echo_value("wamid.E"), '{"kind": "echo", "wamid": "wamid.E"}'),
        (cp.echo_value("wamid.E", history=True), '{"kind": "echo", "wamid": "wamid.E", "history": true}'),
        (cp.ai_value(7), '{"kind": "ai", "turn": 7}'),
        (cp.note_value("ai-failed:7"), '{"kind": "note", "ref": "ai-failed:7"}'),
        (cp.auto_value("ack:+4915"), '{"kind": "auto", "ref": "ack:+4915"}'),
        (cp.csat_value("wamid.C", 5), '{"kind": "csat", "wamid": "wamid.C", "rating": 5}'),
        (cp.wamid_match("wamid.A"), '{"wamid": "wamid.A"}'),
        (cp.conversation_match("+4915"), '{"conversation": "+4915"}'),
        (cp.conversation_match("+4915", previous="WA-1"), '{"conversation": "+4915", "previous": "WA-1"}'),
    ],
)
def test_values_are_the_json_sent(built, sent):
    assert json.dumps(built) == sent


@pytest.mark.parametrize(
    ("previous", "sent"),
    [
        (
            None,
            '{"wajira": {"conversation": "+4915", "wa_id": "4915", "user_id": null, "service": "de", '
            '"phone_number_id": "111"}}',
        ),
        (
            "",  # no ticket before: nothing said, as before
            '{"wajira": {"conversation": "+4915", "wa_id": "4915", "user_id": null, "service": "de", '
            '"phone_number_id": "111"}}',
        ),
        (
            "WA-1",
            '{"wajira": {"conversation": "+4915", "wa_id": "4915", "user_id": null, "service": "de", '
            '"phone_number_id": "111", "previous": "WA-1"}}',
        ),
    ],
)
def test_ticket_properties(previous, sent):
    built = cp.ticket_properties(
        conversation="+4915",
        wa_id="4915",
        user_id=None,
        service="de",
        phone_number_id="111",
        previous=previous,
    )
    assert json.dumps(built) == sent


@pytest.mark.parametrize(
    ("internal", "sent"),
    [
        (False, '[{"key": "wajira", "value": {"kind": "ai", "turn": 1}}]'),
        (
            True,
            '[{"key": "wajira", "value": {"kind": "ai", "turn": 1}}, '
            '{"key": "sd.public.comment", "value": {"internal": true}}]',
        ),
    ],
)
def test_comment_properties_are_entity_properties(internal, sent):
    built = cp.comment_properties(cp.ai_value(1), internal=internal)
    assert json.dumps(built) == sent
    # Jira's EntityProperty: an object with a string `key` (1-255 chars) and any JSON `value`.
    assert all(set(p) == {"key", "value"} and 0 < len(p["key"]) <= 255 for p in built)


def test_entity_properties_keeps_order():
    assert cp.entity_properties({"wajira": {"v": 1}, "other": [3]}) == [
        {"key": "wajira", "value": {"v": 1}},
        {"key": "other", "value": [3]},
    ]


def test_builders_return_fresh_dicts():
    first = cp.customer_value("w")
    first["history"] = True
    assert cp.customer_value("w") == {"kind": "customer", "wamid": "w"}


# -- readers ---------------------------------------------------------------------------------------


def as_list(value):
    return [{"key": "wajira", "value": value}]


def as_map(value):
    return {"wajira": value}


@pytest.mark.parametrize("shape", [as_list, as_map])
@pytest.mark.parametrize(
    ("value", "mark"),
    [
        (cp.customer_value("w1"), CommentMark("customer", wamid="w1")),
        (cp.customer_value("w1", history=True), CommentMark("customer", wamid="w1", history=True)),
        (cp.echo_value("w2"), CommentMark("echo", wamid="w2")),
        (cp.echo_value("w2", history=True), CommentMark("echo", wamid="w2", history=True)),
        (cp.ai_value(3), CommentMark("ai", turn=3)),
        (cp.note_value("r"), CommentMark("note", ref="r")),
        (cp.auto_value("r2"), CommentMark("auto", ref="r2")),
        (cp.csat_value("w3", 4), CommentMark("csat", wamid="w3", rating=4)),
    ],
)
def test_every_kind_round_trips(shape, value, mark):
    assert cp.read_comment(shape(value)) == mark
    assert cp.our_value(shape(value)) == value


def test_every_kind_has_a_builder():
    built = {
        cp.customer_value("w")["kind"],
        cp.echo_value("w")["kind"],
        cp.ai_value(1)["kind"],
        cp.note_value("r")["kind"],
        cp.auto_value("r")["kind"],
        cp.csat_value("w", 1)["kind"],
    }
    assert built == set(cp.KINDS) == {"customer", "ai", "echo", "note", "auto", "csat"}


@pytest.mark.parametrize(
    "properties", [None, [], {}, "wajira", 3, [{"key": "other", "value": {"kind": "ai"}}]]
)
def test_not_ours(properties):
    assert cp.read_comment(properties) is None
    assert cp.our_value(properties) is None


@pytest.mark.parametrize(
    ("value", "mark"),
    [
        (None, CommentMark("unknown")),  # ours, unreadable: never relayed back
        ("customer", CommentMark("unknown")),
        ([1], CommentMark("unknown")),
        ({}, CommentMark("unknown")),
        ({"kind": ""}, CommentMark("unknown")),
        ({"kind": 1, "wamid": "w"}, CommentMark("unknown", wamid="w")),
        ({"kind": "customer", "wamid": 5, "history": "true"}, CommentMark("customer")),
        ({"kind": "customer", "wamid": ""}, CommentMark("customer")),
        ({"kind": "ai", "turn": "3"}, CommentMark("ai")),
        ({"kind": "ai", "turn": True}, CommentMark("ai")),
        ({"kind": "csat", "rating": 4.5, "ref": 9}, CommentMark("csat")),
        ({"kind": "later", "wamid": "w"}, CommentMark("later", wamid="w")),  # a kind from a newer version
    ],
)
def test_garbage_is_still_ours_but_unreadable(value, mark):
    assert cp.read_comment(as_list(value)) == mark


@pytest.mark.parametrize(
    "properties",
    [
        [
            None,
            "x",
            {"value": 1},
            {"key": 3, "value": {}},
            {"key": "wajira", "value": {"kind": "ai", "turn": 2}},
        ],
    ],
)
def test_odd_list_items_are_skipped(properties):
    assert cp.read_comment(properties) == CommentMark("ai", turn=2)
    assert cp.properties_map(properties) == {"wajira": {"kind": "ai", "turn": 2}}


@pytest.mark.parametrize(
    ("issue", "value"),
    [
        ({"properties": {"wajira": {"conversation": "+1"}}}, {"conversation": "+1"}),
        ({"properties": [{"key": "wajira", "value": {"conversation": "+1"}}]}, {"conversation": "+1"}),
        ({"properties": {"wajira": "+1"}}, None),
        ({"properties": {"wajira": None}}, None),
        ({"properties": None}, None),
        ({}, None),
        (None, None),
        ("WA-1", None),
    ],
)
def test_issue_value(issue, value):
    assert cp.issue_value(issue) == value


@pytest.mark.parametrize(
    ("value", "match", "expected"),
    [
        ({"kind": "note", "ref": "r"}, cp.note_value("r"), True),
        ({"kind": "note", "ref": "r"}, cp.note_value("s"), False),
        ({"kind": "customer", "wamid": "w", "history": True}, cp.wamid_match("w"), True),
        ({"conversation": "+1", "wa_id": "1"}, cp.conversation_match("+1"), True),
        ({"conversation": "+1"}, cp.conversation_match("+1", previous="WA-1"), False),
        ({}, {}, True),
    ],
)
def test_matches(value, match, expected):
    assert cp.matches(value, match) is expected
