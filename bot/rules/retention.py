"""Bounded storage: which finished rows are old enough to delete (`[storage] retention_days`). Pure.

`retention_days` says how long finished rows are kept; 0 keeps them for ever. Some rows guard
exactly-once for longer than an operator may choose, so no row is deleted before it is
`MIN_KEEP_DAYS` old whatever the setting:

- Meta redelivers a webhook for up to 7 days: the stored wamid (and a status's wamid + status,
  an event's dedupe key) is what makes a redelivery add nothing;
- a CSAT rating without a quoted message answers the conversation's survey of the last 7 days
  (`jobs.csat.UNQUOTED_RATING_DAYS`);
- an agent's comment is sent only within a day of being written (`jobs.poll.STALE_AGENT_SECONDS`),
  so a handled-comment row deleted a week later cannot make the poll send it again.

What never goes whatever its age (the storage side, `storage.retention`, says how): rows not
finished, the customer's latest message of a conversation (the 24-hour window runs from it),
`ack:` outbound rows (a ticket's acknowledgement, once per ticket), handled command comments,
the newest handled comment of each route on a ticket, a conversation's newest template, and the
highest id of each table (SQLite would otherwise hand that id out again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DAY_SECONDS = 86400
MIN_KEEP_DAYS = 8
"""Meta's 7 days of redeliveries, and a day's margin for clocks and late retries."""
ONCE_ONLY_PREFIXES = ("ack:",)
"""Outbound dedupe keys that guard a notice sent once per ticket for ever: kept."""


def retention_cutoff(now: float, retention_days: int) -> float | None:
    """Epoch seconds before which a finished row may be deleted; None: keep everything.

    Args:
        now: epoch seconds.
        retention_days: `[storage] retention_days` (0 = keep for ever).

    Returns:
        `now` minus the larger of `retention_days` and `MIN_KEEP_DAYS`, in seconds.

    Raises:
        ValueError: a negative number of days.
    """
    if isinstance(retention_days, bool) or retention_days < 0:
        raise ValueError(f"retention_days must be 0 or more, got {retention_days!r}")
    if retention_days == 0:
        return None
    return now - max(retention_days, MIN_KEEP_DAYS) * DAY_SECONDS


def once_only(dedupe_key: str) -> bool:
    """Whether an outbound row's key guards a once-only notice (so the row is kept for ever)."""
    return dedupe_key.startswith(ONCE_ONLY_PREFIXES)


@dataclass(frozen=True)
class RetentionReport:
    """What one housekeeping pass deleted."""

    deleted: Mapping[str, int] = field(default_factory=dict)
    """Rows deleted per table, every table the pass looked at named (zeros included)."""
    complete: bool = True
    """False when the pass stopped at its time budget with rows left (the next pass goes on)."""

    @property
    def total(self) -> int:
        return sum(self.deleted.values())
