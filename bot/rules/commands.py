"""Agents' commands, typed as the first line of a Jira comment (`/ai off`, `/template NAME`, …). Pure.

A command is recognised from the comment's text alone; whether the comment was written by a person
(and not relayed from a customer as `[WhatsApp] Name: /ai off`) is `classify.is_command`'s concern.
Only the first non-blank line counts: agents may add a remark below it. Parsing splits on
whitespace and never runs a backtracking pattern over the comment, so any text is read in linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.rules.window import CUSTOMER_WINDOW_SECONDS

AI_OFF = "ai_off"
AI_ON = "ai_on"
TEMPLATE = "template"
WINDOW = "window"
HELP = "help"

# Meta's rule for template names: lowercase letters, digits and underscores, at most 512 characters.
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LINE_END = re.compile(r"[\n\r\x0b\x0c\x85\u2028\u2029]")
_SHOWN_CHARS = 40
_UTC_NAMES = frozenset({"UTC", "ETC/UTC", "UCT", "ETC/UCT", "GMT", "ETC/GMT", "ZULU", "ETC/ZULU", "Z"})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_COMMAND_LINES = (
    (
        "/ai off",
        "stop the AI assistant answering on this ticket; it stays off, restarts included, until /ai on",
    ),
    ("/ai on", "let the AI assistant answer the customer again on this ticket"),
    (
        "/template NAME",
        "send the approved WhatsApp template NAME to the customer now; "
        "the way to reach them after their 24-hour window has closed",
    ),
    ("/window", "tell whether the customer's 24-hour window is open, and until when"),
    ("/help", "show this list"),
)


@dataclass(frozen=True)
class Command:
    """One parsed command; `name` is one of AI_OFF, AI_ON, TEMPLATE, WINDOW, HELP."""

    name: str
    argument: str = ""
    """The template name (lowercase) for TEMPLATE; "" otherwise."""
    problem: str = ""
    """For HELP: why the command was not understood; "" for a plain /help."""


def is_command_text(text: str) -> bool:
    """Whether the first non-blank line starts with `/` (leading whitespace ignored)."""
    return isinstance(text, str) and text.lstrip().startswith("/")


def parse_command(text: str) -> Command | None:
    """The command in `text`'s first non-blank line; None when `text` is not a command.

    Case and the amount of whitespace between words do not matter. Anything not understood
    becomes HELP with a `problem` saying why, so the agent learns what to type instead.
    """
    if not is_command_text(text):
        return None
    words = _first_line(text).split()
    if words[0] == "/" and len(words) > 1:
        words = ["/" + words[1], *words[2:]]  # "/ ai off": the slash typed apart from the word
    verb, args = words[0].lower(), words[1:]
    if verb == "/ai":
        return _ai(args)
    if verb == "/template":
        return _template(args)
    if verb == "/window":
        if args:
            return _help(f"/window takes nothing after it, not {_shown(' '.join(args))}")
        return Command(WINDOW)
    if verb == "/help":
        return Command(HELP)
    return _help(f"unknown command {_shown(words[0])}")


def _first_line(text: str) -> str:
    stripped = text.lstrip()
    end = _LINE_END.search(stripped)
    return stripped if end is None else stripped[: end.start()]


def _ai(args: list[str]) -> Command:
    switch = [word.lower() for word in args]
    if switch == ["off"]:
        return Command(AI_OFF)
    if switch == ["on"]:
        return Command(AI_ON)
    if not args:
        return _help('/ai needs "on" or "off"')
    return _help(f'/ai takes only "on" or "off", not {_shown(" ".join(args))}')


def _template(args: list[str]) -> Command:
    if not args:
        return _help("/template needs a template name, e.g. /template order_update")
    if len(args) > 1:
        return _help(f"/template takes one template name, not {_shown(' '.join(args))}")
    name = args[0].lower()
    if not _TEMPLATE_NAME.fullmatch(name):
        return _help(
            f"{_shown(args[0])} is not a template name: WhatsApp template names are lowercase letters, "
            "digits and underscores, at most 512 characters"
        )
    return Command(TEMPLATE, argument=name)


def _help(problem: str) -> Command:
    return Command(HELP, problem=problem)


def _shown(typed: str) -> str:
    """What the agent typed, quoted and clipped: it is echoed back in the note."""
    clipped = typed if len(typed) <= _SHOWN_CHARS else typed[: _SHOWN_CHARS - 1] + "…"
    return f'"{clipped}"'


def help_note(problem: str = "") -> str:
    """The internal note listing the commands, one line each; it starts with `problem` when given."""
    lines = []
    if problem:
        sentence = problem[:1].upper() + problem[1:]
        lines.append(sentence if sentence.endswith((".", "!", "?")) else sentence + ".")
    lines.append(
        "Commands for this ticket (type one as the first line of a comment, public or internal; "
        "it is never sent to the customer):"
    )
    lines.extend(f"{command} — {what}." for command, what in _COMMAND_LINES)
    return "\n".join(lines)


# --- /window ----------------------------------------------------------------------------------


def window_note(last_customer_at: float | None, now: float, zone: str | None) -> str:
    """Whether the customer's 24-hour window is open and until when, in `zone` and in UTC.

    The window runs 24 h from the customer's last message (Meta's timestamp). `zone` is the
    asking agent's IANA time zone; an unknown or missing one leaves only UTC.
    """
    if last_customer_at is None or isinstance(last_customer_at, bool):
        return (
            "The customer has not written on WhatsApp yet, so there is no 24-hour window: "
            "only an approved template can reach them (/template NAME)."
        )
    closes = float(last_customer_at) + CUSTOMER_WINDOW_SECONDS
    when = _moment(closes, _zone(zone))
    if now < closes:
        return (
            f"The customer's 24-hour window is open until {when} — {_duration(closes - now)} from now. "
            "Until then replies and files reach them; after that, only an approved template can "
            "(/template NAME)."
        )
    return (
        f"The customer's 24-hour window closed at {when} — {_duration(now - closes)} ago. "
        "Only an approved template can reach them now (/template NAME); their next message opens "
        "the window again."
    )


def _zone(name: str | None) -> ZoneInfo | None:
    """The zone named `name`, or None for UTC, a missing name or one zoneinfo does not know."""
    if not isinstance(name, str) or not name or name.upper() in _UTC_NAMES:
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError, TypeError):  # unknown, malformed or unreadable
        return None


def _moment(seconds: float, zone: ZoneInfo | None) -> str:
    """`2026-12-06 14:03 (Europe/Berlin), 13:03 UTC`, or `2026-12-06 13:03 UTC` without a zone."""
    try:
        utc = _EPOCH + timedelta(seconds=seconds)
        local = utc.astimezone(zone) if zone is not None else None
    except (OverflowError, ValueError, OSError):  # a timestamp no calendar holds
        return f"{seconds:.0f} s after 1970 (UTC)"
    utc_text = utc.strftime("%Y-%m-%d %H:%M UTC")
    if local is None or zone is None:
        return utc_text
    if local.date() == utc.date():
        utc_text = utc.strftime("%H:%M UTC")
    return f"{local:%Y-%m-%d %H:%M} ({zone.key}), {utc_text}"


def _duration(seconds: float) -> str:
    """`23 h 12 min`, `3 d 4 h`, `5 min`: the two largest units, rounded down."""
    if not seconds >= 60:  # also NaN
        return "less than a minute"
    minutes = int(seconds // 60) if seconds < 1e12 else 10**10
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"
