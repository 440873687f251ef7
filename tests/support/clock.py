"""The one fake clock: epoch seconds that move only when a test says so.

Storage, jobs and the fakes take a `clock` callable returning epoch seconds; this is it, for
every test (`tests/fakes.py` re-exports it, and the `clock` fixture gives a fresh one).
"""

from __future__ import annotations

START = 1_800_000_000.0  # 2027-01-15T08:00Z: far from any real "now", so a leak shows


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
