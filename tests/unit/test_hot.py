import pytest

from bot.rules.hot import hot_due, hot_jql, hot_since


def test_hot_since_reaches_back_hot_minutes():
    assert hot_since(10_000.0, 15) == 10_000.0 - 900
    assert hot_since(10_000.0, 0.5) == 9970.0
    assert hot_since(10_000.0, 0) == 10_000.0


@pytest.mark.parametrize(
    ("keys", "jql"),
    [
        (["SUP-12", "SUP-1"], "issue in (SUP-1, SUP-12) ORDER BY updated ASC"),
        (["SUP-2", "SUP-10", "SUP-1"], "issue in (SUP-1, SUP-2, SUP-10) ORDER BY updated ASC"),
        (["sup-7"], "issue in (SUP-7) ORDER BY updated ASC"),
        (["B2B_X-3", "ABC-9", "AB-100"], "issue in (AB-100, ABC-9, B2B_X-3) ORDER BY updated ASC"),
        (["SUP-1", "sup-1", "SUP-1"], "issue in (SUP-1) ORDER BY updated ASC"),
        (iter(["SUP-5", "SUP-4"]), "issue in (SUP-4, SUP-5) ORDER BY updated ASC"),
    ],
)
def test_hot_jql_names_the_keys_sorted(keys, jql):
    assert hot_jql(keys) == jql


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "SUP",
        "SUP-",
        "-1",
        "1SUP-1",
        "_SUP-1",
        "SUP-0",
        "SUP-01",
        "SU P-1",
        " SUP-1",
        "SUP-1 ",
        "SUP-1)",
        "SUP-1) OR project = HR ORDER BY key",
        'SUP-1" OR "1"="1',
        "SUP-1, HR-1",
        "SUP-1\n",
        "SÜP-1",
        "ſUP-1",  # long s: uppercases to S, but is no ASCII letter
        "\u212aEY-1",  # Kelvin sign
        "SUP-١٢",  # Arabic-Indic digits
        "SUP-" + "9" * 19,
        None,
        12,
        b"SUP-1",
    ],
)
def test_anything_but_an_issue_key_is_dropped(bad):
    assert hot_jql([bad]) is None
    assert hot_jql([bad, "OK-1"]) == "issue in (OK-1) ORDER BY updated ASC"


def test_no_keys_no_query():
    assert hot_jql([]) is None


def test_the_cut_keeps_the_callers_first_keys_then_sorts():
    most_recent_first = ["Z-9", "A-5", "M-1", "A-1", "B-2"]
    assert hot_jql(most_recent_first, max_keys=3) == "issue in (A-5, M-1, Z-9) ORDER BY updated ASC"


def test_invalid_and_duplicate_keys_take_no_place_in_the_cut():
    keys = ["bad key", "A-1", "a-1", "A-1", "B-1"]
    assert hot_jql(keys, max_keys=2) == "issue in (A-1, B-1) ORDER BY updated ASC"


def test_the_default_cut_is_100():
    jql = hot_jql([f"SUP-{n}" for n in range(1, 151)])
    assert jql is not None
    assert jql.count("SUP-") == 100 and "SUP-100)" in jql and "SUP-101" not in jql


@pytest.mark.parametrize("max_keys", [0, -1])
def test_a_cut_of_nothing_is_no_query(max_keys):
    assert hot_jql(["SUP-1"], max_keys=max_keys) is None


def test_since_ms_bounds_the_search_like_the_full_poll():
    assert hot_jql(["SUP-1"], since_ms=1_796_000_000_000) == (
        "issue in (SUP-1) AND updated >= 1796000000000 ORDER BY updated ASC"
    )


@pytest.mark.parametrize("since_ms", [-1, 1.5, "0", True])
def test_since_ms_must_be_epoch_milliseconds(since_ms):
    with pytest.raises(ValueError):
        hot_jql(["SUP-1"], since_ms=since_ms)


@pytest.mark.parametrize(
    ("last", "now", "interval", "due"),
    [
        (None, 100.0, 3, True),
        (100.0, 100.0, 3, False),
        (100.0, 102.9, 3, False),
        (100.0, 103.0, 3, True),
        (100.0, 500.0, 3, True),
        (100.0, 50.0, 3, True),  # our clock went back: do not wait for a run stamped in the future
        (100.0, 100.0, 0, True),
    ],
)
def test_hot_due(last, now, interval, due):
    assert hot_due(last, now, interval) is due
