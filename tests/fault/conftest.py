"""Fault suite fixtures: the end-to-end ones (real daemon, loopback sandboxes), plus the budget.

`WAJIRA_FAULT_BUDGET` sizes every scenario: "small" (default, CI: a few cycles, the whole
suite in about two minutes) or "large" (manual runs: more phones, messages, faults and
kill -9 cycles). `WAJIRA_FAULT_SEED` replays a kill -9 run (the seed is printed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import (  # noqa: F401  (re-exported fixtures)
    JIRA_EMAIL,
    JIRA_TOKEN,
    daemon,
    daemon_port,
    graph_sandbox,
    jira,
    make_daemon,
    meta,
    openai_sandbox,
)


@dataclass(frozen=True)
class Budget:
    name: str
    phones: int  # customers writing at once
    messages: int  # messages per customer per burst
    storm_seconds: float  # length of a Jira 503 storm
    jira_429s: int  # Jira requests answered 429 (Retry-After: 1)
    graph_throttles: int  # sends answered 130429, and as many 131056
    agent_comments: int  # agent comments per ticket
    openai_500s: int
    kill_cycles: int
    settle_timeout: float  # seconds to wait for everything to land


BUDGETS = {
    "small": Budget(
        "small",
        phones=3,
        messages=4,
        storm_seconds=3,
        jira_429s=6,
        graph_throttles=2,
        agent_comments=2,
        openai_500s=2,
        kill_cycles=2,
        settle_timeout=60,
    ),
    "large": Budget(
        "large",
        phones=8,
        messages=10,
        storm_seconds=8,
        jira_429s=25,
        graph_throttles=6,
        agent_comments=4,
        openai_500s=3,
        kill_cycles=8,
        settle_timeout=180,
    ),
}


@pytest.fixture(scope="session")
def budget() -> Budget:
    name = os.environ.get("WAJIRA_FAULT_BUDGET", "small").strip().lower() or "small"
    if name not in BUDGETS:
        raise pytest.UsageError(f"WAJIRA_FAULT_BUDGET={name!r}: expected one of {sorted(BUDGETS)}")
    return BUDGETS[name]
