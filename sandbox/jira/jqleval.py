"""Give a parsed JQL query its meaning over the sandbox's issues.

Pure: the caller passes the time zone, the clock and the current user. Dates
without a zone are read in the *searching user's* time zone with minute
precision, as Jira does; that is the behaviour the poller's window bounds must
survive, so it is modelled exactly rather than assuming UTC.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .jql import And, Clause, JqlError, Not, Or, Query, Value
from .jqltext import INVALID_FIRST, TextQueryError, matches, parse_text_query

_ALIASES = {
    "project": "project",
    "labels": "labels",
    "label": "labels",
    "key": "issuekey",
    "issuekey": "issuekey",
    "issue": "issuekey",
    "id": "issuekey",
    "updated": "updated",
    "updateddate": "updated",
    "created": "created",
    "createddate": "created",
    "statuscategory": "statuscategory",
    "status": "status",
    "issuetype": "issuetype",
    "type": "issuetype",
    "reporter": "reporter",
    "text": "text",
    "summary": "summary",
    "description": "description",
    "environment": "environment",
    "comment": "comment",
}
_OPS = {
    "project": {"=", "!=", "in", "not in"},
    "labels": {"=", "!=", "in", "not in", "is", "is not"},
    "issuekey": {"=", "!=", "in", "not in"},
    "updated": {"=", "!=", ">", ">=", "<", "<="},
    "created": {"=", "!=", ">", ">=", "<", "<="},
    "statuscategory": {"=", "!=", "in", "not in"},
    "status": {"=", "!=", "in", "not in"},
    "issuetype": {"=", "!=", "in", "not in"},
    "reporter": {"=", "!=", "in", "not in"},
    # Jira's all-text master field takes `~` only; the single text fields take its negation too.
    "text": {"~"},
    "summary": {"~", "!~"},
    "description": {"~", "!~"},
    "environment": {"~", "!~"},
    "comment": {"~", "!~"},
}
_TEXT_FIELDS = {"text", "summary", "description", "environment", "comment"}
_SORTABLE = {"updated", "created", "issuekey"}
# Status categories answer to their name, key or id (Jira's fixed set).
_CATEGORIES = {
    "to do": "new",
    "new": "new",
    "2": "new",
    "in progress": "indeterminate",
    "indeterminate": "indeterminate",
    "4": "indeterminate",
    "done": "done",
    "complete": "done",
    "3": "done",
    "no category": "undefined",
    "undefined": "undefined",
    "1": "undefined",
}
_DATE = re.compile(r"^(\d{4})([-/])(\d{1,2})\2(\d{1,2})(?: (\d{1,2}):(\d{2}))?$")
_PERIOD = re.compile(r"^([-+]?)((?:\d+\s*[wdhm]\s*)+)$")
_PERIOD_PART = re.compile(r"(\d+)\s*([wdhm])")
_UNIT_MS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000}
_DATE_HELP = (
    "Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', "
    "'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
)


@dataclass(frozen=True)
class IssueView:
    """The facts about one issue that JQL can see."""

    id: str
    key: str
    project_key: str
    project_id: str
    project_name: str
    labels: tuple[str, ...]
    created_ms: int
    updated_ms: int
    status_name: str
    status_category: str  # "new" | "indeterminate" | "done"
    issuetype: str
    reporter: str  # account id
    # The text `~` searches, as plain text (ADF flattened). Every comment counts, internal
    # ones too: Jira's search shows them to an agent, and the bot searches as an agent.
    summary: str = ""
    description: str = ""
    environment: str = ""
    comments: tuple[str, ...] = ()
    custom_texts: tuple[str, ...] = ()  # text custom fields, which `text ~` covers too


@dataclass(frozen=True)
class Context:
    time_zone: str
    now_ms: int
    current_user: str
    # Jira rejects a key that names no issue; the caller knows which exist.
    issue_exists: Callable[[str], bool] = lambda _ref: True


def parse_date(text: str, time_zone: str, now_ms: int, field: str = "updated") -> int:
    """Turn a JQL date operand into epoch milliseconds.

    Numbers are epoch milliseconds; ``yyyy-MM-dd[ HH:mm]`` (or with ``/``) is a
    wall-clock time in ``time_zone``; ``-5m``/``4w 2d`` are offsets from now.
    """
    text = text.strip()
    if re.fullmatch(r"\d{5,}", text):
        return int(text)
    m = _DATE.match(text)
    if m:
        year, _, month, day, hour, minute = m.groups()
        try:
            local = datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=ZoneInfo(time_zone)
            )
        except ValueError:
            local = None
        if local is not None:
            return int(local.timestamp() * 1000)
    m = _PERIOD.match(text)
    if m:
        span = sum(int(n) * _UNIT_MS[u] for n, u in _PERIOD_PART.findall(m.group(2)))
        return now_ms - span if m.group(1) == "-" else now_ms + span
    raise JqlError(f"Date value '{text}' for field '{field}' is invalid. {_DATE_HELP}")


def compile_query(query: Query, ctx: Context) -> tuple[Callable[[IssueView], bool], Callable]:
    """Return ``(predicate, sort_key_list)`` for ``query``; raise ``JqlError`` on bad clauses.

    ``sort_key_list(issues)`` returns the issues ordered as the ORDER BY says,
    newest first by default.
    """
    predicate = _compile(query.where, ctx) if query.where is not None else (lambda _i: True)
    order = []
    for name, ascending in query.order_by:
        field = _ALIASES.get(name.lower())
        if field not in _SORTABLE:
            raise JqlError(f"Not able to sort using field '{name}'.")
        order.append((field, ascending))

    def sort(issues: list[IssueView]) -> list[IssueView]:
        result = sorted(issues, key=lambda i: int(i.id), reverse=True)  # Jira's default: newest first
        for field, ascending in reversed(order):  # stable sorts, least significant first
            result.sort(key=functools.partial(_sort_value, field=field), reverse=not ascending)
        return result

    return predicate, sort


def _sort_value(issue: IssueView, field: str) -> Any:
    if field == "issuekey":
        project, _, number = issue.key.rpartition("-")
        return (project, int(number))
    return issue.created_ms if field == "created" else issue.updated_ms


def _compile(node, ctx: Context) -> Callable[[IssueView], bool]:
    if isinstance(node, And):
        parts = [_compile(n, ctx) for n in node.items]
        return lambda i: all(p(i) for p in parts)
    if isinstance(node, Or):
        parts = [_compile(n, ctx) for n in node.items]
        return lambda i: any(p(i) for p in parts)
    if isinstance(node, Not):
        inner = _compile(node.item, ctx)
        return lambda i: not inner(i)
    return _clause(node, ctx)


def _clause(clause: Clause, ctx: Context) -> Callable[[IssueView], bool]:
    field = _ALIASES.get(clause.field.lower())
    if field is None:
        raise JqlError(f"Field '{clause.field}' does not exist or you do not have permission to view it.")
    if clause.op not in _OPS[field]:
        raise JqlError(f"The operator '{clause.op.upper()}' is not supported by the '{clause.field}' field.")
    if field in ("updated", "created"):
        return _date_clause(field, clause, ctx)
    if field in _TEXT_FIELDS:
        return _text_clause(field, clause)
    if clause.op in ("is", "is not"):  # only labels get here
        empty = clause.op == "is"
        return lambda i: (len(i.labels) == 0) == empty
    wanted = [_scalar(field, clause.field, v, ctx) for v in clause.values]
    positive = clause.op in ("=", "in")
    test = _MATCHERS[field]
    if field == "labels" and not positive:
        # Jira's negative label clauses never match issues that have no labels.
        return lambda i: bool(i.labels) and not any(test(i, w) for w in wanted)
    if positive:
        return lambda i: any(test(i, w) for w in wanted)
    return lambda i: not any(test(i, w) for w in wanted)


def _scalar(field: str, written: str, value: Value, ctx: Context) -> str:
    if value.kind == "empty":
        raise JqlError(
            f"The operator '=' is not supported by the '{written}' field with EMPTY; use IS EMPTY."
        )
    if value.kind == "function":
        if value.text.lower() == "currentuser" and field == "reporter":
            return ctx.current_user
        raise JqlError(f"Unable to find JQL function '{value.show()}'.")
    text = value.text
    if field == "statuscategory":
        category = _CATEGORIES.get(text.lower())
        if category is None:
            raise JqlError(f"The value '{text}' does not exist for the field '{written}'.")
        return category
    if field == "issuekey" and not ctx.issue_exists(text):
        if re.fullmatch(r"\d+", text):
            raise JqlError(f"An issue with id '{text}' does not exist for field '{written}'.")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*-\d+", text):
            raise JqlError(f"The issue key '{text}' for field '{written}' is invalid.")
        raise JqlError(f"An issue with key '{text}' does not exist for field '{written}'.")
    return text


def _date_clause(field: str, clause: Clause, ctx: Context) -> Callable[[IssueView], bool]:
    value = clause.values[0]
    if value.kind == "function" and value.text.lower() == "now":
        bound = ctx.now_ms
    elif value.kind in ("word", "string"):
        bound = parse_date(value.text, ctx.time_zone, ctx.now_ms, clause.field)
    elif value.kind == "function":
        raise JqlError(f"Unable to find JQL function '{value.show()}'.")
    else:
        raise JqlError(
            f"The operator '{clause.op}' is not supported by the '{clause.field}' field with EMPTY."
        )
    attr = "updated_ms" if field == "updated" else "created_ms"
    compare = {
        "=": lambda a: a == bound,
        "!=": lambda a: a != bound,
        ">": lambda a: a > bound,
        ">=": lambda a: a >= bound,
        "<": lambda a: a < bound,
        "<=": lambda a: a <= bound,
    }[clause.op]
    return lambda i: compare(getattr(i, attr))


def _text_clause(field: str, clause: Clause) -> Callable[[IssueView], bool]:
    """`~` / `!~`: the text query is run against each field (and each comment) on its own, as
    Jira runs a text clause per indexed field, so `text ~ "a b"` wants both words in one field."""
    value = clause.values[0]
    written = clause.field
    if value.kind == "function":
        raise JqlError(f"Unable to find JQL function '{value.show()}'.")
    if value.kind == "empty" or not value.text.strip():
        raise JqlError(f"The field '{written}' does not support searching for an empty string.")
    text = value.text
    if text.startswith(INVALID_FIRST):
        raise JqlError(
            f"The text query '{text}' for field '{written}' is not allowed to start with '{text[0]}'."
        )
    try:
        query = parse_text_query(text)
    except TextQueryError:
        raise JqlError(f"Unable to parse the text '{text}' for field '{written}'.") from None
    texts = _TEXTS[field]
    wanted = clause.op == "~"
    return lambda i: any(matches(query, t) for t in texts(i)) == wanted


_TEXTS: dict[str, Callable[[IssueView], tuple[str, ...]]] = {
    "text": lambda i: (i.summary, i.description, i.environment, *i.comments, *i.custom_texts),
    "summary": lambda i: (i.summary,),
    "description": lambda i: (i.description,),
    "environment": lambda i: (i.environment,),
    "comment": lambda i: i.comments,
}


_MATCHERS: dict[str, Callable[[IssueView, str], bool]] = {
    "project": lambda i, w: w.lower() in (i.project_key.lower(), i.project_id, i.project_name.lower()),
    "labels": lambda i, w: w in i.labels,  # compared exactly, as labels are stored
    "issuekey": lambda i, w: w.upper() == i.key or w == i.id,
    "statuscategory": lambda i, w: i.status_category == w,
    "status": lambda i, w: i.status_name.lower() == w.lower(),
    "issuetype": lambda i, w: i.issuetype.lower() == w.lower(),
    "reporter": lambda i, w: i.reporter == w,
}
