"""How long to wait before trying again: exponential, capped, with jitter so a fleet of
workers (or instances) that failed together does not retry together."""

from __future__ import annotations

import random


def retry_delay(
    failures: int, *, base: float, cap: float, jitter: float = 0.2, rng: random.Random | None = None
) -> float:
    """Delay after the `failures`-th consecutive failure (1-based): base·2^(n-1), at most cap, ±jitter."""
    n = max(1, failures)
    raw = min(cap, base * (2.0 ** min(n - 1, 32)))
    spread = raw * jitter
    return max(0.0, raw + (rng or random).uniform(-spread, spread))


def honour_retry_after(retry_after: float | None, fallback: float, *, cap: float) -> float:
    """Jira's `Retry-After` wins when it gave one (never shorter than asked); else our own back-off."""
    if retry_after is None:
        return min(cap, fallback)
    return max(retry_after, 0.5)
