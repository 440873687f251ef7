"""The time window one poll (or a catch-up) searches Jira over.

Jira's JQL has minute precision on dates and reads a zone-less date in the searching user's time
zone. Epoch milliseconds avoid the zone question altogether (JQL takes an unquoted number as
milliseconds since 1970); the minute precision is handled by flooring the start to a whole minute,
and an overlap plus de-duplication by comment id absorbs search-index lag.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from bot.rules.jql import quoted_list

MINUTE_MS = 60_000

_DURATION = re.compile(r"(?P<n>\d{1,9})(?P<unit>[smhd])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def poll_jql(*, project_keys: list[str], labels: list[str], since_ms: int) -> str:
    """JQL for the managed tickets updated since `since_ms`, oldest update first.

    An empty `labels` leaves the label clause out: every ticket of the projects is watched.
    """
    if isinstance(since_ms, bool) or not isinstance(since_ms, int) or since_ms < 0:
        raise ValueError(f"since_ms must be a non-negative int, got {since_ms!r}")
    projects = quoted_list("project key", project_keys)
    if not projects:
        raise ValueError("at least one project key is needed")
    clauses = [f"project in ({projects})"]
    if labels:
        clauses.append(f"labels in ({quoted_list('label', labels)})")
    clauses.append(f"updated >= {since_ms}")  # unquoted: a quoted number would be a date string
    return " AND ".join(clauses) + " ORDER BY updated ASC"


def window_start_ms(
    watermark_ms: int | None,
    overlap_seconds: int,
    now_ms: int,
    first_run_lookback_seconds: int = 3600,
) -> int:
    """Where the next search starts: the watermark minus the overlap, floored to the minute.

    Flooring: JQL compares `updated` at minute precision, so a bound of 12:03:49 may be read as
    12:04 and skip an update made at 12:03:55. Starting at 12:03:00 can only fetch more, and
    duplicates are dropped by comment id anyway. Without a watermark (first run), the search looks
    back `first_run_lookback_seconds`. Never before the epoch, never after now.
    """
    if overlap_seconds < 0 or first_run_lookback_seconds < 0:
        raise ValueError("overlap_seconds and first_run_lookback_seconds must be >= 0")
    if watermark_ms is None:
        start = now_ms - first_run_lookback_seconds * 1000
    else:
        start = min(watermark_ms, now_ms) - overlap_seconds * 1000
    start = max(start, 0)
    return start - start % MINUTE_MS


def advance_watermark(current_ms: int | None, seen_updated_ms: list[int], now_ms: int) -> int:
    """The newest `updated` seen, never moving backwards and never beyond our clock.

    A Jira clock ahead of ours must not push the watermark into our future, where the next
    window would start after updates we have not seen yet. With no watermark and nothing seen
    (a first run over a quiet window), now becomes the watermark: the overlap covers index lag.
    """
    newest = max(seen_updated_ms, default=None)
    if newest is None:
        return current_ms if current_ms is not None else now_ms
    candidate = min(newest, now_ms)
    return candidate if current_ms is None else max(current_ms, candidate)


def catch_up_since(spec: str, now: datetime) -> datetime:
    """The start of a catch-up window: `90s`, `30m`, `2h`, `1d`, or an ISO 8601 time (naive = UTC).

    Returns an aware UTC datetime. Raises ValueError with a message fit for the command line.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    text = (spec or "").strip() if isinstance(spec, str) else ""
    duration = _DURATION.fullmatch(text)
    if duration:
        seconds = int(duration["n"]) * _UNIT_SECONDS[duration["unit"].lower()]
        try:
            return (now - timedelta(seconds=seconds)).astimezone(timezone.utc)
        except OverflowError:
            raise ValueError(f"--since {spec!r} reaches back before year 1") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {spec!r} is neither a duration (90s, 30m, 2h, 1d) nor an ISO 8601 time "
            "(2026-11-21T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError(f"--since {spec!r} is out of range") from None
    if moment > now:
        raise ValueError(f"--since {spec!r} is in the future")
    return moment
