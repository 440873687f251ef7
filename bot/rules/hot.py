"""Live chats: tickets whose customer wrote within the last minutes are searched more often. Pure.

One JQL `issue in (…)` call covers every hot ticket, so the Jira traffic a live chat costs does not
grow with the number of chats; with no hot ticket there is no call at all. Issue keys come from
our own storage, but each is checked against the shape of a Jira issue key before it is written
into JQL: no stored value can ever become JQL syntax.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A project key (a letter, then letters, digits or underscores), a dash, an issue number without
# leading zeros. ASCII only, and no IGNORECASE: that flag would let "ſ" and the Kelvin sign in.
_ISSUE_KEY = re.compile(r"(?P<project>[A-Za-z][A-Za-z0-9_]{0,254})-(?P<number>[1-9][0-9]{0,17})")


def hot_since(now: float, hot_minutes: float) -> float:
    """Epoch seconds after which a customer's message makes the ticket hot."""
    return now - hot_minutes * 60


def hot_due(last_run_at: float | None, now: float, interval_seconds: float) -> bool:
    """Whether a hot pass is due: never run, `interval_seconds` passed, or our clock went back
    (waiting for a last run stamped in the future could stall live chats for hours)."""
    if last_run_at is None:
        return True
    return now < last_run_at or now - last_run_at >= interval_seconds


def hot_jql(issue_keys: Iterable[str], *, max_keys: int = 100, since_ms: int | None = None) -> str | None:
    """`issue in (SUP-1, SUP-12) ORDER BY updated ASC` for the hot tickets; None when there are none.

    `issue_keys` comes most recent first: invalid keys are dropped, duplicates counted once, the
    first `max_keys` kept, and those sorted by project and number (a stable query text).
    `since_ms` (epoch milliseconds) adds `AND updated >= since_ms`, as the full poll's JQL does.
    """
    if since_ms is not None and (isinstance(since_ms, bool) or not isinstance(since_ms, int) or since_ms < 0):
        raise ValueError(f"since_ms must be a non-negative int, got {since_ms!r}")
    kept: dict[tuple[str, int], None] = {}
    for value in issue_keys:
        if len(kept) >= max_keys:
            break
        key = _issue_key(value)
        if key is not None:
            kept[key] = None
    if not kept:
        return None
    keys = ", ".join(f"{project}-{number}" for project, number in sorted(kept))
    clauses = [f"issue in ({keys})"]
    if since_ms is not None:
        clauses.append(f"updated >= {since_ms}")  # unquoted: a quoted number would be a date string
    return " AND ".join(clauses) + " ORDER BY updated ASC"


def _issue_key(value: object) -> tuple[str, int] | None:
    """(PROJECT, number) when `value` is a Jira issue key; None otherwise."""
    if not isinstance(value, str):
        return None
    match = _ISSUE_KEY.fullmatch(value)
    if match is None:
        return None
    return match["project"].upper(), int(match["number"])
