"""Business hours: parsing the operator's day strings, and open/closed at real instants.

The DST cases use 2026's changes: Europe/Berlin 2026-03-29 (02:00 -> 03:00) and 2026-10-25
(03:00 -> 02:00); America/New_York 2026-03-08 and 2026-11-01. The property test compares
`is_open` with a reference that computes local time by the published rules (EU: last Sunday of
March/October at 01:00 UTC; US: second Sunday of March/first Sunday of November at 02:00 local)
instead of through zoneinfo, over a week of random ranges.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rules.hours import WEEKDAYS, Week, check_zone, is_open, local_day, parse_day, week


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()


def open_minutes(hours: Week, start: float, end: float) -> int:
    """How many of the minutes in [start, end) are open (sampled at each minute's start)."""
    return sum(is_open(hours, t) for t in range(int(start), int(end), 60))


# ---- parse_day -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("", ()),
        ("   ", ()),
        ("09:00-18:00", ((540, 1080),)),
        ("09:00-12:30, 13:30-18:00", ((540, 750), (810, 1080))),
        (" 13:30 - 18:00 ,09:00-12:30 ", ((540, 750), (810, 1080))),  # sorted, spaces allowed
        ("00:00-24:00", ((0, 1440),)),
        ("9:00-17:00", ((540, 1020),)),  # a one-digit hour is forgiven
        ("09:00-12:00, 12:00-13:00", ((540, 720), (720, 780))),  # touching is not overlapping
        ("23:59-24:00", ((1439, 1440),)),
    ],
)
def test_parse_day_accepts(text: str, ranges: tuple[tuple[int, int], ...]) -> None:
    assert parse_day(text) == ranges


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9-5", 'expected "HH:MM-HH:MM" ranges separated by commas, got "9-5"'),
        ("09:00", 'expected "HH:MM-HH:MM" ranges separated by commas, got "09:00"'),
        ("09:00-12:00-13:00", 'got "09:00-12:00-13:00"'),
        ("09:00-12:00,", 'got ""'),  # a stray comma
        ("09:00-12:00;13:00-14:00", 'got "09:00-12:00;13:00-14:00"'),
        ("0900-1800", 'got "0900-1800"'),
        ("09:0-18:00", 'got "09:0-18:00"'),
        ("009:00-18:00", 'got "009:00-18:00"'),
        ("+9:00-18:00", 'got "+9:00-18:00"'),
        ("09:00–18:00", 'got "09:00–18:00"'),  # an en dash is not a hyphen
        ("٠٩:٠٠-18:00", "got"),  # digits, but not ASCII ones
        ("09:00-18:00 pm", 'got "09:00-18:00 pm"'),
        ("25:00-26:00", 'no such time "25:00" (hours 00-23, minutes 00-59; 24:00 only as an end)'),
        ("09:60-10:00", 'no such time "09:60"'),
        ("09:00-24:01", 'no such time "24:01"'),
        ("24:00-24:00", '24:00 can only end a range, in "24:00-24:00"'),
        (
            "09:00-08:00",
            "end 08:00 is not after start 09:00 (a range cannot pass midnight: split it across two days)",
        ),
        ("22:00-02:00", "end 02:00 is not after start 22:00"),
        ("09:00-09:00", "end 09:00 is not after start 09:00"),
        ("11:00-13:00, 09:00-12:00", "ranges 09:00-12:00 and 11:00-13:00 overlap"),
        ("09:00-12:00, 09:00-12:00", "ranges 09:00-12:00 and 09:00-12:00 overlap"),
        ("00:00-24:00, 10:00-11:00", "ranges 00:00-24:00 and 10:00-11:00 overlap"),
        ("09:00-18:00" + " " * 190, "longer than 200 characters"),
    ],
)
def test_parse_day_refuses_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_day(text)
    assert reason in str(caught.value)


def test_parse_day_at_the_length_cap() -> None:
    text = "09:00-18:00".ljust(200)
    assert parse_day(text) == ((540, 1080),)
    with pytest.raises(ValueError, match="longer than 200"):
        parse_day(text + " ")


@pytest.mark.parametrize(
    "hostile",
    [
        "0" * 1_000_000,
        "09:00-" * 200_000,
        "," * 199,
        "-" * 199,
        ":" * 199,
        "9" * 199,
        ("09:00-09:01," * 16)[:199],
        "0:00-0:01," * 19,
    ],
)
def test_parse_day_is_fast_on_hostile_input(hostile: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError):
        parse_day(hostile)
    assert time.perf_counter() - started < 0.05


@given(st.text(max_size=260))
@settings(max_examples=300)
def test_parse_day_only_ever_raises_value_error(text: str) -> None:
    try:
        ranges = parse_day(text)
    except ValueError:
        return
    assert list(ranges) == sorted(ranges)
    assert all(0 <= start < end <= 1440 for start, end in ranges)


# ---- zones and week ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/Sao_Paulo", "Pacific/Kiritimati"]
)
def test_check_zone_accepts_iana_names(name: str) -> None:
    check_zone(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Mars/Base",
        "../x",
        "/etc/localtime",
        "America",  # a directory of the database
        "Europe/",
        "Europe/berlin",
        "UTC ",
        "zone.tab",  # a file of the database that is not a zone
        "a\x00b",
        "x" * 300,
    ],
)
def test_check_zone_refuses(name: str) -> None:
    with pytest.raises(ValueError, match=r"^unknown time zone .* \(an IANA name like 'Europe/Berlin'\)$"):
        check_zone(name)


def test_check_zone_message() -> None:
    with pytest.raises(ValueError) as caught:
        check_zone("Mars/Base")
    assert str(caught.value) == "unknown time zone 'Mars/Base' (an IANA name like 'Europe/Berlin')"


def test_week_fills_missing_days_as_closed() -> None:
    hours = week("Europe/Berlin", {"mon": "09:00-18:00", "sat": "10:00-12:00", "sun": ""})
    assert hours == Week(
        zone="Europe/Berlin",
        days=(((540, 1080),), (), (), (), (), ((600, 720),), ()),
    )
    assert len(WEEKDAYS) == len(hours.days) == 7


@pytest.mark.parametrize(
    ("zone", "days", "message"),
    [
        ("UTC", {"tue": "9-5"}, 'tue: expected "HH:MM-HH:MM" ranges separated by commas, got "9-5"'),
        ("UTC", {"sun": "10:00-09:00"}, "sun: end 09:00 is not after start 10:00"),
        ("UTC", {"monday": "09:00-18:00"}, "unknown day 'monday' (use mon, tue, wed, thu, fri, sat, sun)"),
        ("UTC", {"Mon": "09:00-18:00"}, "unknown day 'Mon'"),
        ("UTC", {"wed": 9}, 'wed: expected a string like "09:00-18:00"'),
        ("Mars/Base", {"mon": "09:00-18:00"}, "unknown time zone 'Mars/Base'"),
    ],
)
def test_week_refuses(zone: str, days: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        week(zone, days)  # type: ignore[arg-type]
    assert message in str(caught.value)


# ---- is_open ---------------------------------------------------------------------------------

WEEKDAY_HOURS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "09:00-18:00")


def test_no_hours_means_always_open() -> None:
    assert is_open(None, utc(2026, 1, 4, 3, 0))  # a Sunday night


def test_utc_friday_end_is_exclusive_and_sunday_closed() -> None:
    hours = week("UTC", WEEKDAY_HOURS)
    assert not is_open(hours, utc(2026, 1, 9, 8, 59, 59))  # Friday
    assert is_open(hours, utc(2026, 1, 9, 9, 0, 0))
    assert is_open(hours, utc(2026, 1, 9, 17, 59, 59))
    assert is_open(hours, utc(2026, 1, 9, 17, 59, 59) + 0.999)
    assert not is_open(hours, utc(2026, 1, 9, 18, 0, 0))
    assert not is_open(hours, utc(2026, 1, 10, 12, 0))  # Saturday
    assert not is_open(hours, utc(2026, 1, 11, 12, 0))  # Sunday


def test_whole_day() -> None:
    hours = week("UTC", {"wed": "00:00-24:00"})
    assert not is_open(hours, utc(2026, 1, 6, 23, 59, 59))  # Tuesday
    assert is_open(hours, utc(2026, 1, 7, 0, 0))
    assert is_open(hours, utc(2026, 1, 7, 23, 59, 59) + 0.999)
    assert not is_open(hours, utc(2026, 1, 8, 0, 0))  # Thursday


def test_split_day() -> None:
    hours = week("UTC", {"mon": "09:00-12:30, 13:30-18:00"})
    assert is_open(hours, utc(2026, 1, 5, 12, 29))
    assert not is_open(hours, utc(2026, 1, 5, 12, 30))
    assert not is_open(hours, utc(2026, 1, 5, 13, 29, 59))
    assert is_open(hours, utc(2026, 1, 5, 13, 30))


def test_kolkata_half_hour_offset() -> None:
    hours = week("Asia/Kolkata", WEEKDAY_HOURS)
    assert not is_open(hours, utc(2026, 1, 5, 3, 29, 59))  # Monday 08:59:59 IST
    assert is_open(hours, utc(2026, 1, 5, 3, 30))  # 09:00 IST
    assert is_open(hours, utc(2026, 1, 5, 12, 29, 59))
    assert not is_open(hours, utc(2026, 1, 5, 12, 30))  # 18:00 IST


def test_sao_paulo() -> None:
    hours = week("America/Sao_Paulo", WEEKDAY_HOURS)  # UTC-3 all year (no DST since 2019)
    for month in (1, 7):
        monday = 5 if month == 1 else 6
        assert not is_open(hours, utc(2026, month, monday, 11, 59))
        assert is_open(hours, utc(2026, month, monday, 12, 0))
        assert is_open(hours, utc(2026, month, monday, 20, 59))
        assert not is_open(hours, utc(2026, month, monday, 21, 0))
    # Friday evening in São Paulo is already Saturday in UTC, and still Friday's hours.
    late = week("America/Sao_Paulo", {"fri": "20:00-24:00"})
    assert is_open(late, utc(2026, 1, 10, 1, 0))  # Saturday 01:00 UTC, Friday 22:00 local
    assert not is_open(late, utc(2026, 1, 10, 3, 0))  # Saturday 00:00 local


def test_berlin_follows_summer_time() -> None:
    hours = week("Europe/Berlin", WEEKDAY_HOURS)
    winter_monday, summer_monday = (2026, 1, 5), (2026, 7, 6)
    assert is_open(hours, utc(*winter_monday, 8, 30))  # 09:30 CET
    assert is_open(hours, utc(*summer_monday, 8, 30))  # 10:30 CEST
    assert not is_open(hours, utc(*winter_monday, 7, 30))  # 08:30 CET
    assert is_open(hours, utc(*summer_monday, 7, 30))  # 09:30 CEST
    assert is_open(hours, utc(*winter_monday, 16, 30))  # 17:30 CET
    assert not is_open(hours, utc(*summer_monday, 16, 30))  # 18:30 CEST
    # The Mondays either side of the spring change.
    assert not is_open(hours, utc(2026, 3, 23, 7, 30))
    assert is_open(hours, utc(2026, 3, 30, 7, 30))


def test_berlin_skipped_hour_never_opens() -> None:
    day = utc(2026, 3, 28, 23, 0)  # Sunday 2026-03-29 00:00 CET
    assert open_minutes(week("Europe/Berlin", {"sun": "02:00-03:00"}), day, day + 23 * 3600) == 0
    around = week("Europe/Berlin", {"sun": "01:00-02:00, 03:00-04:00"})
    assert is_open(around, utc(2026, 3, 29, 0, 59, 59))  # 01:59:59 CET
    assert is_open(around, utc(2026, 3, 29, 1, 0))  # 03:00 CEST, a second later
    assert open_minutes(around, day, day + 23 * 3600) == 120


def test_berlin_repeated_hour_counts_twice() -> None:
    hours = week("Europe/Berlin", {"sun": "02:00-03:00"})
    assert not is_open(hours, utc(2026, 10, 24, 23, 59, 59))  # 01:59:59 CEST
    assert is_open(hours, utc(2026, 10, 25, 0, 30))  # 02:30 CEST, the first time
    assert is_open(hours, utc(2026, 10, 25, 1, 30))  # 02:30 CET, the second time
    assert not is_open(hours, utc(2026, 10, 25, 2, 0))  # 03:00 CET
    day = utc(2026, 10, 24, 22, 0)  # Sunday 00:00 CEST
    assert open_minutes(hours, day, day + 25 * 3600) == 120


def test_new_york_changes() -> None:
    spring = week("America/New_York", {"sun": "02:00-03:00"})
    day = utc(2026, 3, 8, 5, 0)  # Sunday 00:00 EST
    assert open_minutes(spring, day, day + 23 * 3600) == 0
    autumn = week("America/New_York", {"sun": "01:00-02:00"})
    assert is_open(autumn, utc(2026, 11, 1, 5, 30))  # 01:30 EDT
    assert is_open(autumn, utc(2026, 11, 1, 6, 30))  # 01:30 EST
    assert not is_open(autumn, utc(2026, 11, 1, 7, 0))  # 02:00 EST
    day = utc(2026, 11, 1, 4, 0)  # Sunday 00:00 EDT
    assert open_minutes(autumn, day, day + 25 * 3600) == 120
    weekdays = week("America/New_York", WEEKDAY_HOURS)
    assert not is_open(weekdays, utc(2026, 3, 9, 12, 59))  # Monday 08:59 EDT
    assert is_open(weekdays, utc(2026, 3, 9, 13, 0))
    assert not is_open(weekdays, utc(2026, 3, 2, 13, 30))  # the Monday before: 08:30 EST


# ---- local_day -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "at", "day"),
    [
        ("UTC", utc(2026, 1, 5, 23, 59, 59), "2026-01-05"),
        ("Pacific/Kiritimati", utc(2026, 1, 5, 9, 59, 59), "2026-01-05"),  # UTC+14
        ("Pacific/Kiritimati", utc(2026, 1, 5, 10, 0), "2026-01-06"),
        ("Pacific/Pago_Pago", utc(2026, 1, 5, 10, 59, 59), "2026-01-04"),  # UTC-11
        ("Pacific/Pago_Pago", utc(2026, 1, 5, 11, 0), "2026-01-05"),
        ("America/New_York", utc(2026, 11, 1, 4, 59), "2026-11-01"),
        ("America/New_York", utc(2026, 11, 2, 4, 59), "2026-11-01"),  # 25-hour day
    ],
)
def test_local_day(zone: str, at: float, day: str) -> None:
    assert local_day(zone, at) == day


def test_kiritimati_monday_starts_on_utc_sunday() -> None:
    hours = week("Pacific/Kiritimati", {"mon": "00:00-01:00"})
    assert is_open(hours, utc(2026, 1, 4, 10, 0))  # Sunday in UTC, Monday 00:00 in Kiritimati
    assert not is_open(hours, utc(2026, 1, 5, 10, 0))


# ---- agreement with an independent reference -------------------------------------------------


def _sunday(year: int, month: int, nth: int) -> date:
    """The nth Sunday of a month (nth = -1: the last)."""
    if nth > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth - 1))
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 6) % 7)


def _at(day: date, hour_utc: int) -> float:
    return utc(day.year, day.month, day.day, hour_utc)


def _offset_seconds(zone: str, at: float) -> int:
    """UTC offset by the published rules, valid 2020-2035, without zoneinfo."""
    year = datetime.fromtimestamp(at, timezone.utc).year
    if zone == "Europe/Berlin":
        summer = _at(_sunday(year, 3, -1), 1) <= at < _at(_sunday(year, 10, -1), 1)
        return 3600 * (2 if summer else 1)
    if zone == "America/New_York":
        summer = _at(_sunday(year, 3, 2), 7) <= at < _at(_sunday(year, 11, 1), 6)
        return -3600 * (4 if summer else 5)
    fixed = {"UTC": 0, "Asia/Kolkata": 19800, "America/Sao_Paulo": -10800, "Pacific/Kiritimati": 50400}
    return fixed[zone]


def _reference_open(zone: str, days: list[list[tuple[int, int]]], at: float) -> bool:
    local = int(at // 1) + _offset_seconds(zone, at)
    weekday = (local // 86400 + 3) % 7  # 1970-01-01 was a Thursday
    minute = (local % 86400) // 60
    open_set = {m for start, end in days[weekday] for m in range(start, end)}
    return minute in open_set


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def _day_ranges(draw: st.DrawFn) -> list[tuple[int, int]]:
    points = sorted(draw(st.sets(st.integers(0, 1440), max_size=8)))
    points = points[: len(points) // 2 * 2]
    return list(zip(points[0::2], points[1::2], strict=True))


ZONES = [
    "UTC",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Kiritimati",
    "Europe/Berlin",
    "America/New_York",
]


@given(
    zone=st.sampled_from(ZONES),
    days=st.lists(_day_ranges(), min_size=7, max_size=7),
    instants=st.lists(st.floats(utc(2020, 1, 1), utc(2035, 12, 31)), min_size=1, max_size=20),
    spaces=st.sampled_from(["", " ", "  "]),
)
@settings(max_examples=300, deadline=None)
def test_is_open_agrees_with_reference(
    zone: str, days: list[list[tuple[int, int]]], instants: list[float], spaces: str
) -> None:
    texts = {
        name: f"{spaces},{spaces}".join(f"{_clock(s)}-{_clock(e)}" for s, e in ranges)
        for name, ranges in zip(WEEKDAYS, days, strict=True)
    }
    hours = week(zone, texts)
    assert [list(d) for d in hours.days] == days
    for at in instants:
        assert is_open(hours, at) is _reference_open(zone, days, at), (zone, at, texts)


@given(at=st.floats(utc(2020, 1, 1), utc(2035, 12, 31)), zone=st.sampled_from(ZONES))
def test_local_day_agrees_with_reference(at: float, zone: str) -> None:
    local = int(at // 1) + _offset_seconds(zone, at)
    assert local_day(zone, at) == (date(1970, 1, 1) + timedelta(days=local // 86400)).isoformat()
