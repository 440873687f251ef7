"""Values the poller writes into JQL as quoted strings: project keys and labels. Pure.

The config reader refuses with `jql_value_problem` exactly what `quoted_list` would refuse,
so a label config.toml accepts can never make a poll pass fail.
"""

from __future__ import annotations

import re

# Quotes would end the JQL string early and whitespace is never part of a project key or a label
# (Jira forbids spaces in labels), so such values are refused rather than escaped. Backslashes and
# control characters are refused for the same reason: JQL gives them meanings of their own.
_UNSAFE = re.compile(r"[\"'\\\s\x00-\x1f\x7f]")


def jql_value_problem(value: object) -> str | None:
    """Why `value` cannot be written into JQL as a quoted string, or None when it can."""
    if not isinstance(value, str) or not value:
        return "is empty"
    if _UNSAFE.search(value):
        return "holds whitespace, a quote, a backslash or a control character"
    return None


def quoted_list(what: str, values: list[str]) -> str:
    """`"a", "b"` for a JQL `in (…)` clause, duplicates dropped, order kept.

    Raises:
        ValueError: naming `what` and the value when `jql_value_problem` refuses one.
    """
    seen: list[str] = []
    for value in values:
        problem = jql_value_problem(value)
        if problem:
            raise ValueError(f"invalid {what} {value!r}: {problem}")
        if value not in seen:
            seen.append(value)
    return ", ".join(f'"{v}"' for v in seen)
