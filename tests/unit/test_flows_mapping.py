"""bot.flows.templates and bot.flows.mapping: a completed flow → the fields of its ticket."""

from __future__ import annotations

import json

import pytest

from bot.config.model import FlowDefinition, ServiceSettings
from bot.flows.mapping import (
    TicketFields,
    definition_for,
    description_table,
    jira_label,
    ticket_fields_for,
    ticket_fields_from_flow,
)
from bot.flows.templates import as_text, fill, placeholders
from sandbox import whatsapp_payloads as wa

ORDER = FlowDefinition(
    id="order-issue",
    flow_token_prefix="order-issue:",
    summary="Order issue: {order_id} ({problem})",
    description_fields=("order_id", "problem", "details", "photo_ok"),
    labels=("flow-order", "problem-{problem}", "{missing}"),
    custom_fields={"customfield_10010": "{order_id}", "customfield_10011": "{missing}"},
)


# -- templates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template, names",
    [
        ("plain", ()),
        ("Order {order_id}: {problem} / {order_id}", ("order_id", "problem")),
        ("{{literal}} {a_1}", ("a_1",)),
        ("", ()),
    ],
)
def test_placeholders(template, names) -> None:
    assert placeholders(template) == names


@pytest.mark.parametrize(
    "template, shown",
    [
        ("{}", "{}"),
        ("{0}", "{0}"),
        ("{a.b}", "{a.b}"),
        ("{a[0]}", "{a[0]}"),
        ("{a!r}", "{a!r}"),
        ("{a:>9}", "{a:>9}"),
        ("{1a}", "{1a}"),
    ],
)
def test_placeholders_must_be_bare_names(template, shown) -> None:
    with pytest.raises(ValueError, match="must be a bare field name") as info:
        placeholders(template)
    assert shown in str(info.value)


@pytest.mark.parametrize("template", ["{open", "close}"])
def test_unbalanced_braces_are_refused(template) -> None:
    with pytest.raises(ValueError, match="literal braces"):
        placeholders(template)


@pytest.mark.parametrize(
    "value, text",
    [
        (None, ""),
        ("text", "text"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.5, "2.5"),
        (float("nan"), ""),
        (["a", 1, None, "b"], "a, 1, b"),
        ({"k": "v"}, '{"k": "v"}'),
    ],
)
def test_as_text(value, text) -> None:
    assert as_text(value) == text


def test_fill_is_safe() -> None:
    values = {"a": "{b}", "b": "B", "obj": {"__class__": 1}}
    # A value is never read as a template; missing names are "".
    assert fill("<{a}|{b}|{gone}|{{x}}>", values) == "<{b}|B||{x}>"
    # Templates config validation refuses still never raise or reach attributes.
    assert fill("{obj.__class__}{0}{open", values) == "{obj.__class__}{0}{open"
    assert fill("{b!r:>5}", values) == "B"


# -- which definition -------------------------------------------------------------------------


def _definition(prefix: str, id: str = "x") -> FlowDefinition:
    return FlowDefinition(id=id, flow_token_prefix=prefix)


def test_the_longest_matching_prefix_wins_whatever_the_order() -> None:
    short, long = _definition("order", "short"), _definition("order-issue:", "long")
    for flows in ([short, long], [long, short]):
        assert definition_for(flows, "order-issue:42").id == "long"
        assert definition_for(flows, "order-other").id == "short"
        assert definition_for(flows, "refund:1") is None
        assert definition_for(flows, None) is None
        assert definition_for(flows, "") is None


# -- ticket fields ----------------------------------------------------------------------------


def test_fields_are_filled_from_the_answers() -> None:
    answers = {
        "flow_token": "order-issue:1",
        "order_id": "A-17",
        "problem": "late  delivery",
        "details": "Box was\r\nwet",
        "photo_ok": True,
    }
    fields = ticket_fields_from_flow(ORDER, json.dumps(answers))
    assert fields == TicketFields(
        summary="Order issue: A-17 (late delivery)",
        description_rows=(
            ("order_id", "A-17"),
            ("problem", "late  delivery"),
            ("details", "Box was\nwet"),
            ("photo_ok", "true"),
        ),
        labels=("flow-order", "problem-late_delivery"),
        custom_fields={"customfield_10010": "A-17"},
    )
    assert ticket_fields_from_flow(ORDER, answers) == fields  # an already parsed object too


@pytest.mark.parametrize("response", ["{not json", "[1, 2]", "null", 42, None])
def test_no_answers_gives_empty_fields(response) -> None:
    fields = ticket_fields_from_flow(ORDER, response)
    assert fields.summary == "Order issue: ()"  # whitespace runs collapse
    assert [v for _, v in fields.description_rows] == ["", "", "", ""]
    # "problem-" stays (its literal part is a label); "{missing}" alone gives "" and is dropped.
    assert fields.labels == ("flow-order", "problem-")
    assert fields.custom_fields == {}


def test_summary_is_one_line_of_at_most_255_characters() -> None:
    fields = ticket_fields_from_flow(ORDER, {"order_id": "x\n\u0007y" * 200, "problem": "p"})
    assert "\n" not in fields.summary and "\u0007" not in fields.summary
    assert len(fields.summary) == 255
    assert len(fields.custom_fields["customfield_10010"]) == 255


@pytest.mark.parametrize(
    "text, label",
    [
        ("problem-late delivery", "problem-late_delivery"),
        ("  tabs\tand\nlines ", "tabs_and_lines"),
        ("ctrl\u0000x", "ctrlx"),
        ("   ", ""),
        ("é" * 300, "é" * 255),
    ],
)
def test_jira_label(text, label) -> None:
    assert jira_label(text) == label


def test_labels_are_deduplicated() -> None:
    definition = FlowDefinition(id="d", flow_token_prefix="d", labels=("{a}", "{b}", "x"))
    assert ticket_fields_from_flow(definition, {"a": "x", "b": "x y"}).labels == ("x", "x_y")


def test_description_table() -> None:
    rows = (("order_id", "A-17"), ("details", "Box was\nwet"), ("photo", ""))
    assert (
        description_table(rows)
        == "Flow answers:\norder_id: A-17\ndetails: Box was\n    wet\nphoto: (no answer)"
    )
    assert description_table(()) == ""


# -- from a stored message --------------------------------------------------------------------

SERVICE = ServiceSettings(id="support", project_key="SUP", flows=(ORDER,))
PHONE = "5215512345678"


def test_a_matching_flow_reply_gives_fields() -> None:
    message = wa.nfm_reply(PHONE, {"order_id": "A-17", "problem": "late"}, flow_token="order-issue:abc")
    fields = ticket_fields_for(message, SERVICE)
    assert fields is not None and fields.summary == "Order issue: A-17 (late)"


@pytest.mark.parametrize(
    "message",
    [
        wa.nfm_reply(PHONE, {"order_id": "A-17"}, flow_token="refund:1"),  # no definition for it
        wa.nfm_reply(PHONE, "{not json"),
        wa.text(PHONE, "order-issue: hello"),
        wa.button_reply(PHONE, "Yes"),
        {"type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": "odd"}},
    ],
)
def test_other_messages_give_none(message) -> None:
    assert ticket_fields_for(message, SERVICE) is None


def test_a_service_without_flows_gives_none() -> None:
    message = wa.nfm_reply(PHONE, {"order_id": "A-17"}, flow_token="order-issue:abc")
    assert ticket_fields_for(message, ServiceSettings(id="s", project_key="SUP")) is None
