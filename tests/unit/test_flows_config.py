"""Config for Flows: `[[services.flows]]`, `[[flows.screens]]` and the private key file."""

from __future__ import annotations

import datetime

import pytest

from bot.config import ConfigError, parse_config
from bot.config.model import FlowDefinition, FlowScreen
from sandbox.flows_client import new_key_pair
from tests.unit.test_config import minimal, with_value

FLOW = {
    "id": "order-issue",
    "flow_token_prefix": "order-issue:",
    "summary": "Order issue: {order_id}",
    "description_fields": ["order_id", "details"],
    "labels": ["flow", "problem-{problem}"],
    "custom_fields": {"customfield_10010": "{order_id}"},
}
SCREEN = {
    "id": "INIT",
    "next_screen": "DETAILS",
    "data": {"title": "Hi {flow_token}", "items": [{"id": "a"}]},
}


def parse(data):
    return parse_config(data, {})


def error_of(data) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return info.value


def with_flow(**changes):
    return with_value(minimal(), "services[0].flows", [{**FLOW, **changes}])


def with_screens(*screens):
    return with_value(minimal(), "flows.screens", list(screens))


def test_flow_definitions_and_screens_parse() -> None:
    s = parse(with_value(with_flow(), "flows.screens", [SCREEN]))
    assert s.services[0].flows == (
        FlowDefinition(
            id="order-issue",
            flow_token_prefix="order-issue:",
            summary="Order issue: {order_id}",
            description_fields=("order_id", "details"),
            labels=("flow", "problem-{problem}"),
            custom_fields={"customfield_10010": "{order_id}"},
        ),
    )
    assert s.flows.screens == (FlowScreen(id="INIT", next_screen="DETAILS", data=SCREEN["data"]),)


def test_only_id_and_prefix_are_required() -> None:
    s = parse(with_value(minimal(), "services[0].flows", [{"id": "f", "flow_token_prefix": "f:"}]))
    assert s.services[0].flows == (FlowDefinition(id="f", flow_token_prefix="f:"),)
    assert parse(minimal()).services[0].flows == () and parse(minimal()).flows.screens == ()


@pytest.mark.parametrize(
    "data, key, reason",
    [
        (with_flow(colour="red"), "services[0].flows[0].colour", "unknown key"),
        (with_screens({**SCREEN, "colour": "red"}), "flows.screens[0].colour", "unknown key"),
        (with_value(minimal(), "services[0].flows", {"id": "x"}), "services[0].flows", "array of tables"),
        (with_flow(id="Order Issue"), "services[0].flows[0].id", "lower-case"),
        (with_flow(flow_token_prefix=""), "services[0].flows[0].flow_token_prefix", "must not be empty"),
        (
            with_value(minimal(), "services[0].flows", [{"id": "x"}]),
            "services[0].flows[0].flow_token_prefix",
            "missing",
        ),
        (with_flow(summary="Order {order.id}"), "services[0].flows[0].summary", "bare field name"),
        (with_flow(summary="Order {"), "services[0].flows[0].summary", "literal braces"),
        (
            with_flow(description_fields=["order id"]),
            "services[0].flows[0].description_fields",
            "Flow JSON name",
        ),
        (with_flow(labels=["has space"]), "services[0].flows[0].labels", "no whitespace"),
        (with_flow(labels=["{a!r}"]), "services[0].flows[0].labels", "bare field name"),
        (
            with_flow(custom_fields={"summary": "x"}),
            "services[0].flows[0].custom_fields.summary",
            "customfield_10010",
        ),
        (
            with_flow(custom_fields={"customfield_1": 5}),
            "services[0].flows[0].custom_fields.customfield_1",
            "got integer",
        ),
        (
            with_flow(custom_fields={"customfield_1": "{0}"}),
            "services[0].flows[0].custom_fields.customfield_1",
            "bare",
        ),
        (with_flow(custom_fields="x"), "services[0].flows[0].custom_fields", "expected a table"),
        (
            with_value(minimal(), "services[0].flows", [FLOW, {**FLOW, "flow_token_prefix": "other"}]),
            "services[0].flows[1].id",
            "duplicate flow id",
        ),
        (
            with_value(minimal(), "services[0].flows", [FLOW, {**FLOW, "id": "other"}]),
            "services[0].flows[1].flow_token_prefix",
            "already the prefix of flow 'order-issue'",
        ),
        (with_screens({**SCREEN, "id": "has space"}), "flows.screens[0].id", "Flow JSON name"),
        (with_screens({**SCREEN, "id": "SUCCESS"}), "flows.screens[0].id", "ends a flow"),
        (with_screens({**SCREEN, "next_screen": "a-b"}), "flows.screens[0].next_screen", "Flow JSON name"),
        (with_screens({"id": "INIT"}), "flows.screens[0].next_screen", "missing"),
        (with_screens(SCREEN, SCREEN), "flows.screens[1].id", "duplicate screen id"),
        (with_screens({**SCREEN, "data": {"t": "{x.y}"}}), "flows.screens[0].data.t", "bare field name"),
        (
            with_screens({**SCREEN, "data": {"d": [{"at": datetime.date(2024, 1, 2)}]}}),
            "flows.screens[0].data.d[0].at",
            "no JSON form",
        ),
        (with_screens({**SCREEN, "data": {"f": float("inf")}}), "flows.screens[0].data.f", "no JSON form"),
    ],
)
def test_flow_config_errors_name_the_dotted_key(data, key, reason) -> None:
    error = error_of(data)
    assert error.key == key and reason in error.reason, str(error)


# -- the private key --------------------------------------------------------------------------


def test_a_good_key_file_is_accepted(tmp_path) -> None:
    path = tmp_path / "flows.pem"
    path.write_bytes(new_key_pair("pem-pass")[0])
    data = with_value(minimal(), "flows.private_key_file", str(path))
    s = parse(with_value(data, "flows.private_key_passphrase", "pem-pass"))
    assert s.flows.private_key_file == str(path)
    assert s.redacted()["flows"]["private_key_passphrase"] == "***"


def test_key_file_errors_are_config_errors(tmp_path) -> None:
    encrypted = tmp_path / "enc.pem"
    encrypted.write_bytes(new_key_pair("pem-pass")[0])
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")

    missing = error_of(with_value(minimal(), "flows.private_key_file", str(tmp_path / "absent.pem")))
    assert missing.key == "flows.private_key_file" and "cannot read" in missing.reason
    bad = error_of(with_value(minimal(), "flows.private_key_file", str(junk)))
    assert bad.key == "flows.private_key_file" and "not a PEM private key" in bad.reason
    no_pass = error_of(with_value(minimal(), "flows.private_key_file", str(encrypted)))
    assert no_pass.key == "flows.private_key_passphrase" and "is encrypted" in no_pass.reason
    wrong = with_value(
        with_value(minimal(), "flows.private_key_file", str(encrypted)),
        "flows.private_key_passphrase",
        "nope-wrong",
    )
    error = error_of(wrong)
    assert error.key == "flows.private_key_file" and "passphrase is wrong" in error.reason
    assert "nope-wrong" not in str(error)
