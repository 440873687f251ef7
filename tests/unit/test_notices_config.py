"""Config for the customer's journey: `[services.notify]`, `[services.hours]`, `[services.csat]`,
`[services.assistant] outside_hours` and `[flows] unavailable_message`."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import ConfigError, parse_config
from bot.config.model import CsatSettings, HoursSettings, NotifySettings
from bot.rules.hours import is_open
from tests.unit.test_config import minimal, with_value


def parse(data: dict[str, Any]):
    return parse_config(data, {})


def error_of(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return info.value


def test_defaults_send_nothing_and_are_always_open() -> None:
    service = parse(minimal()).services[0]
    assert service.notify == NotifySettings(on_create="", on_status={}, out_of_hours="")
    assert service.hours is None
    assert service.csat == CsatSettings()
    assert service.csat.enabled is False
    assert service.assistant.outside_hours is True
    assert parse(minimal()).flows.unavailable_message.startswith("Sorry")


def test_a_complete_service_parses() -> None:
    data = with_value(
        minimal(),
        "services[0].notify",
        {
            "on_create": "Hi {name}, ticket {issue_key}.",
            "on_status": {"Done": "{issue_key} is {status}.", "In Progress": "Working on it."},
            "out_of_hours": "Closed, {name}.",
        },
    )
    data = with_value(
        data, "services[0].hours", {"timezone": "Europe/Berlin", "fri": "09:00-12:30, 13:30-16:00", "sat": ""}
    )
    data = with_value(
        data,
        "services[0].csat",
        {"enabled": True, "on_status": "Resolved", "question": "How was {issue_key}?", "button": "Rate"},
    )
    data = with_value(data, "services[0].assistant.outside_hours", False)
    service = parse(data).services[0]
    assert service.notify.on_status == {"Done": "{issue_key} is {status}.", "In Progress": "Working on it."}
    assert service.hours == HoursSettings(timezone="Europe/Berlin", fri="09:00-12:30, 13:30-16:00")
    assert service.csat.on_status == "Resolved" and service.csat.button == "Rate"
    assert service.assistant.outside_hours is False
    # Monday 2026-12-07 10:00 Berlin (09:00 UTC): the default weekday hours apply.
    assert service.hours is not None and is_open(service.hours.week(), 1796634000.0)
    # Saturday: closed.
    assert not is_open(service.hours.week(), 1796634000.0 - 2 * 86400)


@pytest.mark.parametrize(
    ("dotted", "value", "key", "reason"),
    [
        ("services[0].notify.on_create", "Hi {ticket}", "services[0].notify.on_create", "{ticket}"),
        ("services[0].notify.on_create", "Hi {name!r}", "services[0].notify.on_create", ""),
        ("services[0].notify.on_create", "Hi {0}", "services[0].notify.on_create", ""),
        ("services[0].notify.on_create", "Hi {name", "services[0].notify.on_create", ""),
        ("services[0].notify.out_of_hours", "{status}", "services[0].notify.out_of_hours", "{status}"),
        ("services[0].notify.on_create", "x" * 4097, "services[0].notify.on_create", "4096"),
        ("services[0].notify.on_status", {"Done": "{nope}"}, "services[0].notify.on_status.Done", "{nope}"),
        ("services[0].notify.on_status", {"Done": 3}, "services[0].notify.on_status.Done", "string"),
        ("services[0].notify.on_status", {" ": "x"}, "services[0].notify.on_status", "empty"),
        (
            "services[0].notify.on_status",
            {"Done": "a", "done": "b"},
            "services[0].notify.on_status.done",
            "same status",
        ),
        ("services[0].hours", {"timezone": "Mars/Olympus"}, "services[0].hours.timezone", "Mars/Olympus"),
        ("services[0].hours", {"timezone": ""}, "services[0].hours.timezone", ""),
        ("services[0].hours", {"mon": "9-5"}, "services[0].hours.mon", ""),
        ("services[0].hours", {"tue": "18:00-09:00"}, "services[0].hours.tue", "midnight"),
        ("services[0].hours", {"sun": 9}, "services[0].hours.sun", "string"),
        ("services[0].hours", {"holidays": []}, "services[0].hours.holidays", "unknown key"),
        ("services[0].csat", {"question": "{issue}?"}, "services[0].csat.question", "{issue}"),
        ("services[0].csat", {"question": "q" * 1025}, "services[0].csat.question", "1024"),
        ("services[0].csat", {"button": "b" * 21}, "services[0].csat.button", "20"),
        ("services[0].csat", {"labels": ["a", "b"]}, "services[0].csat.labels", "exactly 5"),
        ("services[0].csat", {"labels": ["a", "b", "c", "d", "e" * 25]}, "services[0].csat.labels[4]", "24"),
        ("services[0].csat", {"labels": ["a", " ", "c", "d", "e"]}, "services[0].csat.labels[1]", ""),
        ("services[0].csat", {"enabled": "yes"}, "services[0].csat.enabled", "boolean"),
        ("services[0].assistant.outside_hours", "no", "services[0].assistant.outside_hours", "boolean"),
        ("flows.unavailable_message", "", "flows.unavailable_message", ""),
    ],
)
def test_errors_name_the_key(dotted: str, value: Any, key: str, reason: str) -> None:
    error = error_of(with_value(minimal(), dotted, value))
    assert error.key == key
    assert reason in error.reason


def test_literal_braces_are_text_not_placeholders() -> None:
    data = with_value(minimal(), "services[0].notify.on_create", "Use {{code}} on {issue_key}")
    assert parse(data).services[0].notify.on_create == "Use {{code}} on {issue_key}"


def test_hours_table_present_but_empty_takes_weekday_defaults() -> None:
    hours = parse(with_value(minimal(), "services[0].hours", {})).services[0].hours
    assert hours == HoursSettings()
    assert (hours.mon, hours.fri, hours.sat, hours.sun) == ("09:00-18:00", "09:00-18:00", "", "")
