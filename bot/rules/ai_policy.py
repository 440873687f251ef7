"""Whether the AI answers a ticket now, later, or not at all.

The AI job (`jobs/ai.py`) gathers the facts from our own records (the comments the poll job
handled, the AI turns and their tokens) and asks `decide_turn`; this module only weighs them.
The tuning (`AiPolicy`) has no defaults here: the job builds it from the service's `[assistant]`
settings, whose defaults `bot/config` documents. The order of the checks is the policy:

1. `answered`  - an AI reply already follows the last customer message (a re-poll, a restart).
2. `handoff`   - a human (an agent in Jira, or the team in the WhatsApp Business App) spoke within
                 `handoff_seconds`: the ticket is theirs, the AI stays quiet until it has been
                 quiet for that long. Measured from the human's message, so it covers a human
                 answering after the customer, and a customer writing again shortly after a human.
3. `hourly_limit`, `budget_exhausted` - the caller posts one internal note per reason, so they
                 are distinct and come before waiting (waiting would not lift them).
4. `debounce`  - the customer wrote less than `debounce_seconds` ago: wait, so a burst of messages
                 gets one reply after the last of them.
5. `reply`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

REPLY: Final = "reply"
WAIT: Final = "wait"
SKIP: Final = "skip"

REASON_ANSWERED = "answered"
REASON_HANDOFF = "handoff"
REASON_HOURLY_LIMIT = "hourly_limit"
REASON_BUDGET = "budget_exhausted"
REASON_DEBOUNCE = "debounce"
REASON_REPLY = "reply"

Action = Literal["reply", "wait", "skip"]


@dataclass(frozen=True)
class TurnFacts:
    now: float
    last_customer_at: float
    """Epoch seconds of the newest customer message on the ticket."""
    last_human_at: float | None
    """Newest agent public comment or echo; None if no human ever spoke."""
    replies_last_hour: int
    """AI replies sent on this ticket in the last hour."""
    tokens_today: int
    """Tokens spent today (the scope the caller counts: service or ticket)."""
    ai_reply_exists_after_last_customer: bool


@dataclass(frozen=True)
class AiPolicy:
    """The assistant's tuning; no defaults of its own, so it cannot disagree with the config's."""

    debounce_seconds: float
    max_replies_per_hour: int
    daily_token_budget: int
    handoff_seconds: float

    def __post_init__(self) -> None:
        for name in ("debounce_seconds", "max_replies_per_hour", "daily_token_budget", "handoff_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    wait_seconds: float = 0


def decide_turn(facts: TurnFacts, policy: AiPolicy) -> Decision:
    """Reply, wait `wait_seconds` and ask again, or skip (with a reason the caller can report)."""
    if facts.ai_reply_exists_after_last_customer:
        return Decision(SKIP, REASON_ANSWERED)
    if facts.last_human_at is not None and facts.now - facts.last_human_at < policy.handoff_seconds:
        # A human time in the future (clock skew between Jira and us) also pauses: when unsure
        # whether a person is on the ticket, the AI keeps out of their way.
        return Decision(SKIP, REASON_HANDOFF)
    if facts.replies_last_hour >= policy.max_replies_per_hour:
        return Decision(SKIP, REASON_HOURLY_LIMIT)
    if facts.tokens_today >= policy.daily_token_budget:
        return Decision(SKIP, REASON_BUDGET)
    quiet_for = facts.now - facts.last_customer_at
    if quiet_for < policy.debounce_seconds:
        # Capped at the debounce: a customer timestamp ahead of our clock must not stall the ticket.
        remaining = min(policy.debounce_seconds - quiet_for, policy.debounce_seconds)
        return Decision(WAIT, REASON_DEBOUNCE, remaining)
    return Decision(REPLY, REASON_REPLY)
