"""Business hours: when the out-of-hours notice applies.

Hours are written as the operator reads a wall clock in the business's own time zone
(`[services.hours]`), so every check converts the instant to that zone's local time with zoneinfo
before comparing: a fixed UTC offset would be an hour wrong for half the year wherever clocks
change. Around a change the local clock is taken as it reads: the hour that is skipped in spring
never comes, and the hour that repeats in autumn counts twice.

The day strings come from the operator's file and are parsed by hand, not with a regex, so that
a pasted megabyte costs nothing but a length check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Range = tuple[int, int]
"""Minutes after local midnight, 0 <= start < end <= 1440; the end is exclusive."""

MAX_DAY_CHARS = 200
MINUTES_PER_DAY = 24 * 60
_DIGITS = frozenset("0123456789")
_SHAPE = 'expected "HH:MM-HH:MM" ranges separated by commas, got "{}"'


@dataclass(frozen=True)
class Week:
    """Opening hours in one time zone.

    `zone` is an IANA name; `days` holds 7 entries, Monday first, each the day's sorted,
    non-overlapping ranges (empty = closed that day).
    """

    zone: str
    days: tuple[tuple[Range, ...], ...]


def parse_day(text: str) -> tuple[Range, ...]:
    """One day's ranges from e.g. "09:00-12:30, 13:30-18:00"; "" means closed.

    Raises:
        ValueError: with a reason the operator can act on.
    """
    if len(text) > MAX_DAY_CHARS:
        raise ValueError(f"longer than {MAX_DAY_CHARS} characters")
    if not text.strip():
        return ()
    ranges = sorted(_parse_range(part.strip()) for part in text.split(","))
    for before, after in pairwise(ranges):
        # End is exclusive, so 09:00-12:00 and 12:00-13:00 touch without overlapping.
        if after[0] < before[1]:
            raise ValueError(f"ranges {_show(before)} and {_show(after)} overlap")
    return tuple(ranges)


def _parse_range(part: str) -> Range:
    pieces = part.split("-")
    if len(pieces) != 2:
        raise ValueError(_SHAPE.format(part))
    start = _parse_time(pieces[0].strip(), part, is_end=False)
    end = _parse_time(pieces[1].strip(), part, is_end=True)
    if end <= start:
        raise ValueError(
            f"end {_clock(end)} is not after start {_clock(start)}"
            " (a range cannot pass midnight: split it across two days)"
        )
    return (start, end)


def _parse_time(clock: str, part: str, *, is_end: bool) -> int:
    """Minutes after midnight for "HH:MM" (a one-digit hour is forgiven); "24:00" only as an end."""
    hours, colon, minutes = clock.partition(":")
    well_formed = (
        colon == ":"
        and len(hours) in (1, 2)
        and len(minutes) == 2
        and set(hours) <= _DIGITS
        and set(minutes) <= _DIGITS
    )
    if not well_formed:
        raise ValueError(_SHAPE.format(part))
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        if is_end:
            return MINUTES_PER_DAY
        raise ValueError(f'24:00 can only end a range, in "{part}"')
    if h > 23 or m > 59:
        raise ValueError(f'no such time "{clock}" (hours 00-23, minutes 00-59; 24:00 only as an end)')
    return h * 60 + m


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _show(r: Range) -> str:
    return f"{_clock(r[0])}-{_clock(r[1])}"


def check_zone(name: str) -> None:
    """Refuse a time zone name zoneinfo cannot load (typos, paths, directories like "America").

    Raises:
        ValueError: naming the zone and the expected shape.
    """
    try:
        if not isinstance(name, str) or not name or len(name) > 100:
            raise ValueError(name)
        ZoneInfo(name)
    # Not found is a KeyError; bad keys ("../x", "/etc/localtime", non-TZif files) are ValueErrors;
    # a directory or an over-long name is an OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        shown = name[:100] if isinstance(name, str) else name
        raise ValueError(f"unknown time zone {shown!r} (an IANA name like 'Europe/Berlin')") from None


def week(zone: str, days: Mapping[str, str]) -> Week:
    """A checked `Week` from the zone and the day strings keyed by `WEEKDAYS` (missing = closed).

    Raises:
        ValueError: "<day>: <reason>" for a bad day, an unknown day name, or a bad zone.
    """
    check_zone(zone)
    # A misspelt day ("monday", "Tue") would otherwise silently mean closed.
    unknown = sorted(str(key) for key in days if key not in WEEKDAYS)
    if unknown:
        raise ValueError(f"unknown day {unknown[0]!r} (use {', '.join(WEEKDAYS)})")
    parsed = []
    for day in WEEKDAYS:
        text = days.get(day, "")
        if not isinstance(text, str):
            raise ValueError(f'{day}: expected a string like "09:00-18:00" ("" = closed)')
        try:
            parsed.append(parse_day(text))
        except ValueError as exc:
            raise ValueError(f"{day}: {exc}") from None
    return Week(zone=zone, days=tuple(parsed))


def _local(zone: str, at: float) -> datetime:
    # Whole seconds, floored: `fromtimestamp` rounds to the microsecond, which carries a
    # float a hair before midnight (…59.9999998) into the next day.
    return datetime.fromtimestamp(math.floor(at), ZoneInfo(zone))


def is_open(hours: Week | None, at: float) -> bool:
    """Whether the business is open at epoch second `at` (None = no hours configured = always)."""
    if hours is None:
        return True
    local = _local(hours.zone, at)
    # Ranges start and end on whole minutes, so comparing the minute the seconds fall in is exact.
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in hours.days[local.weekday()])


def local_day(zone: str, at: float) -> str:
    """The zone's calendar date at `at`, "YYYY-MM-DD": the unit of "at most once a day"."""
    return _local(zone, at).date().isoformat()
