"""`[openai] turn_lease_seconds`: how long a claimed AI turn is an instance's own."""

from __future__ import annotations

import pytest

from bot.config import ConfigError
from bot.config.model import TURN_LEASE_MARGIN_SECONDS
from tests.unit.test_config import error_of, minimal, parse, with_value


def test_the_default_lease_outlasts_the_default_openai_timeout_by_the_margin():
    s = parse(minimal())
    assert (s.openai.turn_lease_seconds, s.openai.timeout_seconds) == (90.0, 60.0)
    assert s.openai.turn_lease_seconds >= s.openai.timeout_seconds + TURN_LEASE_MARGIN_SECONDS


@pytest.mark.parametrize(
    "openai, ok",
    [
        ({"turn_lease_seconds": 300}, True),
        ({"timeout_seconds": 10, "turn_lease_seconds": 40}, True),
        ({"timeout_seconds": 10, "turn_lease_seconds": 39.5}, False),
        ({"turn_lease_seconds": 60}, False),  # no longer than the call it must outlast
        ({"timeout_seconds": 120}, False),  # a longer timeout needs a longer lease too
        ({"timeout_seconds": 120, "turn_lease_seconds": 150}, True),
    ],
)
def test_the_lease_must_outlast_one_openai_call(openai, ok):
    data = minimal()
    data["openai"].update(openai)
    if ok:
        assert parse(data).openai.turn_lease_seconds == openai.get("turn_lease_seconds", 90)
        return
    error = error_of(data)
    assert error.key == "openai.turn_lease_seconds"
    assert "openai.timeout_seconds + 30" in error.reason


@pytest.mark.parametrize("value", ["90", 0, -5, True])
def test_the_lease_is_a_positive_number(value):
    with pytest.raises(ConfigError) as info:
        parse(with_value(minimal(), "openai.turn_lease_seconds", value))
    assert info.value.key == "openai.turn_lease_seconds"
