"""Value formats more than one section uses: URL paths and URLs, ids, labels, templates.

Each reads (or checks) one key of a `Table`, so its errors name the dotted key like every
other read; the section readers in `sections`, `services` and `flows` combine them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from bot.config.reader import Table
from bot.config.urls import clear_text_credentials
from bot.flows.templates import placeholders
from bot.rules.jql import jql_value_problem

# Service and flow-definition ids: they appear in logs, metrics and ticket properties.
ID = r"[a-z0-9_-]+"
ID_HINT = "must be lower-case letters, digits, '_' or '-'"

# Flow JSON names: screen ids and the fields a screen submits.
FLOW_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
FLOW_NAME_HINT = "must be a Flow JSON name (letters, digits, '_'; not starting with a digit)"


def url_path(t: Table, name: str) -> str:
    # wsgiref compares PATH_INFO exactly, so a query string or a space could never match.
    return t.string(
        name,
        pattern=r"/[^\s?#]*",
        hint="must be a URL path starting with '/' (no spaces, '?' or '#')",
    )


def http_url(t: Table, name: str, *, carries_token: bool = False) -> str:
    value = t.string(name)
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unbalanced "[" in the host
        ok = False
    if not ok:
        # Echo the value to show the typo, unless it might carry a password.
        shown = "" if "@" in value else f", got {value!r}"
        raise t.error(name, f"must be an http:// or https:// URL{shown}")
    if carries_token and clear_text_credentials(parts.scheme, parts.hostname or ""):
        raise t.error(name, "must be https:// unless the host is loopback: the token would travel in clear")
    # Callers append paths ("/rest/api/3/..."); one form avoids "//" in every request.
    return value.rstrip("/")


def format_strings(t: Table, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """An array of `str.format` strings that may use only the `allowed` placeholders."""
    values = t.strings(name)
    for value in values:
        check_format(t, name, value, allowed)
    return values


def check_format(t: Table, name: str, value: str, allowed: tuple[str, ...]) -> None:
    """`value` is a `str.format` string using only the `allowed` placeholders."""
    try:
        value.format(**dict.fromkeys(allowed, ""))
    except (KeyError, IndexError, ValueError) as exc:
        raise t.error(
            name, f"unknown placeholder {exc} (allowed: {', '.join('{' + a + '}' for a in allowed)})"
        ) from None


def check_retry_window(t: Table, base_seconds: float, max_seconds: float) -> None:
    """A queue's back-off grows from `retry_base_seconds` up to `retry_max_seconds`."""
    if max_seconds < base_seconds:
        raise t.error("retry_max_seconds", "must be at least retry_base_seconds")


def template(t: Table, name: str) -> str:
    """A Flow answer template (`{field}`)."""
    value = t.string(name)
    check_template(t, name, value)
    return value


def check_template(t: Table, key: str, value: str) -> None:
    try:
        placeholders(value)
    except ValueError as exc:
        raise t.error(key, str(exc)) from None


def labels(t: Table, name: str) -> tuple[str, ...]:
    # The poller searches for these labels in JQL: one rule for both, so a label accepted here
    # can never make a poll pass fail. It also keeps out whitespace, which Jira splits labels at.
    values = t.strings(name)
    for index, value in enumerate(values):
        problem = jql_value_problem(value)
        if problem:
            rule = "a label must be non-empty, with no whitespace, quote, backslash or control character"
            raise t.error(name, f"item {index} {value!r} {problem}; {rule}")
    return values


def label_templates(t: Table, name: str) -> tuple[str, ...]:
    # Literal text of a label template must already be a label; answers are cleaned when filled.
    values = labels(t, name)
    for value in values:
        check_template(t, name, value)
    return values
