"""Fakes that remember what was done to them, for tests that need no network.

Each satisfies its port in `bot.ports` (mypy checks it in `tests/contract/port_typing.py`), and
`tests/contract/` runs the same cases against it and against the real adapter over `sandbox/`,
so a fake cannot drift from what it stands in for.
"""

from tests.fakes.ai import FakeAI
from tests.fakes.graph import FakeGraph
from tests.fakes.jira import FakeJira
from tests.support.clock import FakeClock

__all__ = ["FakeAI", "FakeClock", "FakeGraph", "FakeJira"]
