from datetime import datetime, timezone

import pytest

from bot.rules.commands import (
    AI_OFF,
    AI_ON,
    HELP,
    TEMPLATE,
    WINDOW,
    Command,
    help_note,
    is_command_text,
    parse_command,
    window_note,
)


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


# --- is_command_text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["/ai off", "  /ai off", "\n\n  \t/window", "/", "/help\nplease tell me", "/foo", " \u00a0/ai on"],
)
def test_a_first_line_starting_with_a_slash_is_a_command(text):
    assert is_command_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t",
        "[WhatsApp] Ana: /ai off",
        "please /ai off",
        "hello\n/ai off",
        "> /ai off",
        "```\n/ai off\n```",
        "\\/ai off",
        None,
        42,
    ],
)
def test_anything_else_is_not_a_command(text):
    assert not is_command_text(text)
    assert parse_command(text) is None


# --- parse_command ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ai off", Command(AI_OFF)),
        ("/AI   Off", Command(AI_OFF)),
        ("/Ai\toFF", Command(AI_OFF)),
        ("  \n /ai off  \n", Command(AI_OFF)),
        ("/ai on", Command(AI_ON)),
        ("/ai \t ON", Command(AI_ON)),
        ("/ ai off", Command(AI_OFF)),
        ("/ai off\nthe customer asked for a human", Command(AI_OFF)),
        ("/ai off\r\nremark", Command(AI_OFF)),
        ("/window", Command(WINDOW)),
        ("/WINDOW  ", Command(WINDOW)),
        ("/window\nis it open?", Command(WINDOW)),
        ("/help", Command(HELP)),
        ("/HELP me please", Command(HELP)),
        ("/template order_update", Command(TEMPLATE, argument="order_update")),
        ("/TEMPLATE   Order_Update", Command(TEMPLATE, argument="order_update")),
        ("/template\thello_world_2", Command(TEMPLATE, argument="hello_world_2")),
        ("/template x\nsecond line is a remark", Command(TEMPLATE, argument="x")),
        ("/template " + "a" * 512, Command(TEMPLATE, argument="a" * 512)),
    ],
)
def test_commands_are_read_whatever_the_case_and_spacing(text, expected):
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "problem_part"),
    [
        ("/ai", '/ai needs "on" or "off"'),
        ("/ai off please", '/ai takes only "on" or "off", not "off please"'),
        ("/ai maybe", 'not "maybe"'),
        ("/ai-off", 'unknown command "/ai-off"'),
        ("/aioff", 'unknown command "/aioff"'),
        ("/foo bar", 'unknown command "/foo"'),
        ("/", 'unknown command "/"'),
        ("/template", "/template needs a template name"),
        ("/template  \nname on the next line", "/template needs a template name"),
        ("/template two words", '/template takes one template name, not "two words"'),
        ("/template order-update", '"order-update" is not a template name'),
        ("/template bestellung_ä", "is not a template name"),
        ("/template " + "a" * 513, "is not a template name"),
        ("/window now", '/window takes nothing after it, not "now"'),
    ],
)
def test_what_is_not_understood_is_help_with_the_problem(text, problem_part):
    command = parse_command(text)
    assert command is not None and command.name == HELP
    assert problem_part in command.problem
    assert command.argument == ""


def test_a_plain_help_has_no_problem():
    assert parse_command("/help") == Command(HELP, problem="")


def test_echoed_words_are_clipped_to_40_characters():
    command = parse_command("/" + "x" * 5000)
    assert command is not None and command.name == HELP
    shown = command.problem.split('"')[1]
    assert len(shown) == 40 and shown.endswith("…")
    long_name = parse_command("/template " + "B-" * 300)
    assert long_name is not None and len(long_name.problem) < 200


@pytest.mark.parametrize(
    "text",
    [
        "/ai " + " \t" * 50_000 + "x",
        "/" + "a" * 100_000,
        "/template " + "a_" * 50_000 + "!",
        "/ai off" + "\n" * 100_000,
        "\n" * 50_000 + "/window" + " x" * 50_000,
        ("/" + "/ " * 50_000),
    ],
)
def test_long_hostile_input_is_read(text):
    # Linear by construction (split, a single bounded character class); this only has to finish.
    command = parse_command(text)
    assert command is not None


# --- help_note -----------------------------------------------------------------------------------


def test_help_lists_every_command_on_a_line_of_its_own():
    note = help_note()
    lines = note.splitlines()
    for command in ("/ai off", "/ai on", "/template NAME", "/window", "/help"):
        assert sum(line.startswith(command + " — ") for line in lines) == 1
    assert "never sent to the customer" in note


def test_help_starts_with_the_problem_as_a_sentence():
    note = help_note('unknown command "/foo"')
    assert note.splitlines()[0] == 'Unknown command "/foo".'
    assert help_note("/ai needs a word.").splitlines()[0] == "/ai needs a word."
    assert help_note("").splitlines()[0].startswith("Commands")


# --- window_note ---------------------------------------------------------------------------------


def test_an_open_window_says_until_when_in_the_agents_zone_and_in_utc():
    last = _at("2026-12-05T13:03:00")
    now = _at("2026-12-05T13:51:00")
    note = window_note(last, now, "Europe/Berlin")
    assert note.startswith(
        "The customer's 24-hour window is open until 2026-12-06 14:03 (Europe/Berlin), 13:03 UTC"
        " — 23 h 12 min from now."
    )
    assert "/template" in note


def test_the_utc_date_is_shown_when_it_differs_from_the_local_one():
    last = _at("2026-12-05T20:30:00")
    note = window_note(last, last + 60, "Asia/Tokyo")
    assert "2026-12-07 05:30 (Asia/Tokyo), 2026-12-06 20:30 UTC" in note


@pytest.mark.parametrize(
    "zone",
    [
        None,
        "",
        "Mars/Olympus",
        "../../etc/passwd",
        "/etc/localtime",
        "a\x00b",
        "UTC",
        "Etc/UTC",
        "x" * 5000,
        5,
    ],
)
def test_without_a_known_zone_only_utc_is_shown(zone):
    last = _at("2026-12-05T13:03:00")
    note = window_note(last, last + 3600, zone)
    assert "open until 2026-12-06 13:03 UTC — 23 h from now" in note
    assert "(" not in note.split("—")[0]


def test_a_closed_window_says_since_when_and_that_only_a_template_reaches_them():
    last = _at("2026-12-01T08:00:00")
    now = _at("2026-12-04T10:30:00")
    note = window_note(last, now, "America/New_York")
    assert note.startswith(
        "The customer's 24-hour window closed at 2026-12-02 03:00 (America/New_York), 08:00 UTC — 2 d 2 h ago."
    )
    assert "Only an approved template can reach them now (/template NAME)" in note


@pytest.mark.parametrize(
    ("elapsed", "state"),
    [(0, "open"), (24 * 3600 - 1, "open"), (24 * 3600, "closed"), (24 * 3600 + 1, "closed"), (-600, "open")],
)
def test_the_window_closes_at_exactly_24_hours(elapsed, state):
    last = _at("2026-12-05T13:03:00")
    note = window_note(last, last + elapsed, None)
    assert f"window is {state}" in note if state == "open" else "window closed at" in note


@pytest.mark.parametrize(
    ("remaining", "words"),
    [
        (30, "less than a minute from now"),
        (60, "1 min from now"),
        (3600, "1 h from now"),
        (3600 + 59, "1 h from now"),
        (3 * 3600 + 5 * 60, "3 h 5 min from now"),
    ],
)
def test_durations_are_rounded_down_to_the_two_largest_units(remaining, words):
    last = _at("2026-12-05T13:03:00")
    now = last + 24 * 3600 - remaining
    assert words in window_note(last, now, None)


def test_long_closed_windows_count_days():
    last = _at("2026-01-01T00:00:00")
    assert "— 10 d ago" in window_note(last, last + 11 * 86400, None)


def test_a_customer_who_never_wrote_has_no_window():
    note = window_note(None, _at("2026-12-05T13:03:00"), "Europe/Berlin")
    assert "has not written" in note and "/template NAME" in note


@pytest.mark.parametrize("last", [1e300, -1e300, float("nan"), float("inf")])
def test_absurd_timestamps_do_not_raise(last):
    assert "window" in window_note(last, 1_800_000_000.0, "Europe/Berlin")
