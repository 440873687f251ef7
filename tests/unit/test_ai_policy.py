import dataclasses

import pytest

from bot.rules.ai_policy import AiPolicy, Decision, TurnFacts, decide_turn

NOW = 1_800_000_000.0
# The values the tests were written against; AiPolicy has no defaults of its own.
POLICY = AiPolicy(
    debounce_seconds=3.0, max_replies_per_hour=10, daily_token_budget=200000, handoff_seconds=3600.0
)


def facts(**over):
    base = {
        "now": NOW,
        "last_customer_at": NOW - 10,
        "last_human_at": None,
        "replies_last_hour": 0,
        "tokens_today": 0,
        "ai_reply_exists_after_last_customer": False,
    }
    base.update(over)
    return TurnFacts(**base)


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({}, Decision("reply", "reply")),
        ({"last_customer_at": NOW - 3}, Decision("reply", "reply")),  # debounce boundary: quiet long enough
        ({"last_customer_at": NOW - 1}, Decision("wait", "debounce", 2.0)),
        ({"last_customer_at": NOW}, Decision("wait", "debounce", 3.0)),
        ({"last_customer_at": NOW + 100}, Decision("wait", "debounce", 3.0)),  # skewed clock: capped
        ({"ai_reply_exists_after_last_customer": True}, Decision("skip", "answered")),
        ({"last_human_at": NOW - 60}, Decision("skip", "handoff")),  # human answered after the customer
        ({"last_human_at": NOW - 20}, Decision("skip", "handoff")),  # human just before the customer
        ({"last_human_at": NOW - 3599}, Decision("skip", "handoff")),
        ({"last_human_at": NOW - 3600}, Decision("reply", "reply")),  # pause over
        ({"last_human_at": NOW - 86400}, Decision("reply", "reply")),
        ({"last_human_at": NOW + 30}, Decision("skip", "handoff")),  # skew: when unsure, stay out
        ({"replies_last_hour": 10}, Decision("skip", "hourly_limit")),
        ({"replies_last_hour": 9}, Decision("reply", "reply")),
        ({"tokens_today": 200000}, Decision("skip", "budget_exhausted")),
        ({"tokens_today": 199999}, Decision("reply", "reply")),
    ],
)
def test_decisions(over, expected):
    assert decide_turn(facts(**over), POLICY) == expected


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        (
            {"ai_reply_exists_after_last_customer": True, "last_human_at": NOW, "replies_last_hour": 99},
            "answered",
        ),
        ({"last_human_at": NOW - 5, "replies_last_hour": 99, "tokens_today": 10**9}, "handoff"),
        ({"replies_last_hour": 99, "tokens_today": 10**9, "last_customer_at": NOW}, "hourly_limit"),
        ({"tokens_today": 10**9, "last_customer_at": NOW}, "budget_exhausted"),
    ],
)
def test_precedence_skips_before_waiting(over, reason):
    decision = decide_turn(facts(**over), POLICY)
    assert (decision.action, decision.reason, decision.wait_seconds) == ("skip", reason, 0)


def test_burst_gets_one_reply_after_the_last_message():
    # messages at t=0, 1, 2; the poller asks at each arrival and after waiting
    timeline = []
    last = 0.0
    for now in (0.0, 1.0, 2.0, 4.0, 5.0):
        if now in (0.0, 1.0, 2.0):
            last = now
        timeline.append(decide_turn(facts(now=now, last_customer_at=last), POLICY).action)
    assert timeline == ["wait", "wait", "wait", "wait", "reply"]


@pytest.mark.parametrize(
    ("policy", "over", "action"),
    [
        (dataclasses.replace(POLICY, debounce_seconds=0), {"last_customer_at": NOW}, "reply"),
        (dataclasses.replace(POLICY, max_replies_per_hour=0), {}, "skip"),
        (dataclasses.replace(POLICY, daily_token_budget=0), {}, "skip"),
        (dataclasses.replace(POLICY, handoff_seconds=0), {"last_human_at": NOW}, "reply"),
    ],
)
def test_policy_extremes(policy, over, action):
    assert decide_turn(facts(**over), policy).action == action


@pytest.mark.parametrize(
    "bad",
    [
        {"debounce_seconds": -1},
        {"max_replies_per_hour": -1},
        {"daily_token_budget": "lots"},
        {"handoff_seconds": True},
        {"handoff_seconds": None},
    ],
)
def test_policy_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        dataclasses.replace(POLICY, **bad)


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        POLICY.debounce_seconds = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        facts().now = 1  # type: ignore[misc]
