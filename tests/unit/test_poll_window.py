from datetime import datetime, timedelta, timezone

import pytest

from bot.rules.poll_window import advance_watermark, catch_up_since, poll_jql, window_start_ms

UTC = timezone.utc
NOW = datetime(2026, 11, 21, 12, 3, 49, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000) + 123  # 12:03:49.123
MINUTE = 60_000


# --- poll_jql ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "labels", "since", "jql"),
    [
        (
            ["A", "B"],
            ["x"],
            1700000000000,
            'project in ("A", "B") AND labels in ("x") AND updated >= 1700000000000 ORDER BY updated ASC',
        ),
        (
            ["SUP"],
            ["whatsapp", "vip"],
            0,
            'project in ("SUP") AND labels in ("whatsapp", "vip") AND updated >= 0 ORDER BY updated ASC',
        ),
        (
            ["SUP", "SUP"],
            ["w", "w"],
            5,
            'project in ("SUP") AND labels in ("w") AND updated >= 5 ORDER BY updated ASC',
        ),
        (["SUP"], [], 5, 'project in ("SUP") AND updated >= 5 ORDER BY updated ASC'),
        (
            ["ÄÖ_1"],
            ["ñ-label.2"],
            5,
            'project in ("ÄÖ_1") AND labels in ("ñ-label.2") AND updated >= 5 ORDER BY updated ASC',
        ),
    ],
    ids=["two-projects", "two-labels", "deduped", "no-labels", "unicode"],
)
def test_poll_jql(keys, labels, since, jql):
    assert poll_jql(project_keys=keys, labels=labels, since_ms=since) == jql


@pytest.mark.parametrize(
    ("keys", "labels"),
    [
        ([], ["x"]),
        ([""], ["x"]),
        (['A") OR project is not EMPTY OR ("'], ["x"]),
        (["A'"], ["x"]),
        (["A B"], ["x"]),
        (["A\\"], ["x"]),
        (["A"], ["has space"]),
        (["A"], ["tab\tlabel"]),
        (["A"], ['x" OR 1=1']),
        (["A"], ["new\nline"]),
        (["A"], [""]),
        (["A"], [None]),
        ([7], ["x"]),
        (["A\x00"], ["x"]),
    ],
)
def test_poll_jql_rejects_unsafe_values(keys, labels):
    with pytest.raises(ValueError):
        poll_jql(project_keys=keys, labels=labels, since_ms=0)


@pytest.mark.parametrize("since", [-1, "1700000000000", 1.5, True, None])
def test_poll_jql_rejects_bad_since(since):
    with pytest.raises(ValueError):
        poll_jql(project_keys=["A"], labels=["x"], since_ms=since)


# --- window_start_ms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("watermark", "overlap", "lookback", "start"),
    [
        (NOW_MS, 120, 3600, NOW_MS - 120_000 - (NOW_MS - 120_000) % MINUTE),
        (NOW_MS, 0, 3600, NOW_MS - NOW_MS % MINUTE),
        (None, 120, 3600, (NOW_MS - 3_600_000) // MINUTE * MINUTE),
        (None, 120, 0, NOW_MS // MINUTE * MINUTE),
        (NOW_MS + 10 * MINUTE, 120, 3600, (NOW_MS - 120_000) // MINUTE * MINUTE),  # watermark in the future
        (30_000, 120, 3600, 0),  # never before the epoch
        (None, 0, 10**12, 0),
    ],
    ids=[
        "overlap",
        "no-overlap",
        "first-run",
        "first-run-no-lookback",
        "future-watermark",
        "epoch",
        "huge-lookback",
    ],
)
def test_window_start(watermark, overlap, lookback, start):
    got = window_start_ms(watermark, overlap, NOW_MS, first_run_lookback_seconds=lookback)
    assert got == start
    assert got % MINUTE == 0


def test_window_start_example():
    # 12:03:49.123 - 2 min = 12:01:49.123 -> 12:01:00.000
    start = window_start_ms(NOW_MS, 120, NOW_MS)
    assert datetime.fromtimestamp(start / 1000, UTC) == datetime(2026, 11, 21, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(("overlap", "lookback"), [(-1, 3600), (120, -1)])
def test_window_start_rejects_negative(overlap, lookback):
    with pytest.raises(ValueError):
        window_start_ms(NOW_MS, overlap, NOW_MS, first_run_lookback_seconds=lookback)


# --- advance_watermark ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "seen", "result"),
    [
        (1000, [2000, 1500], 2000),
        (5000, [2000], 5000),  # never backwards
        (1000, [], 1000),
        (None, [], NOW_MS),
        (None, [3000, 1000], 3000),
        (1000, [NOW_MS + 60_000], NOW_MS),  # Jira clock ahead: clamped to now
        (None, [NOW_MS + 1], NOW_MS),
        (NOW_MS + 5, [1], NOW_MS + 5),  # an existing watermark is not pulled back either
    ],
)
def test_advance_watermark(current, seen, result):
    assert advance_watermark(current, seen, NOW_MS) == result


# --- catch_up_since ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2h", NOW - timedelta(hours=2)),
        ("1d", NOW - timedelta(days=1)),
        (" 2H ", NOW - timedelta(hours=2)),
        ("0m", NOW),
        ("2026-11-21T10:00:00", datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("2026-11-21T10:00:00Z", datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("2026-11-21T07:00:00-03:00", datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("2026-11-21T10:00:00.5+0000", datetime(2026, 11, 21, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-21 10:00", datetime(2026, 11, 21, 10, tzinfo=UTC)),
    ],
)
def test_catch_up_since(spec, expected):
    got = catch_up_since(spec, NOW)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


def test_catch_up_since_naive_now_is_utc():
    assert catch_up_since("1h", NOW.replace(tzinfo=None)) == NOW - timedelta(hours=1)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "2",
        "h",
        "-2h",
        "2 h",
        "1w",
        "2h30m",
        "1.5h",
        "yesterday",
        "2026-11-22T00:00:00Z",
        "999999999d",
        "0001-01-01T00:00:00+01:00",
        "2h; DROP TABLE",
        None,
        5,
    ],
)
def test_catch_up_since_rejects(spec):
    with pytest.raises(ValueError, match="--since"):
        catch_up_since(spec, NOW)
