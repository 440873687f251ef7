"""Jira's field and property selection: ``fields`` (``*all``, ``*navigable``, names, ``-name``),
``properties``, and list parameters given repeated or comma-separated."""

from __future__ import annotations

from typing import Any

ALL_FIELDS = (
    "summary",
    "description",
    "labels",
    "issuetype",
    "project",
    "status",
    "created",
    "updated",
    "reporter",
    "creator",
    "comment",
    "attachment",
    "issuelinks",
)
# Fields Jira cannot show as navigator columns; "*navigable" leaves them out.
NOT_NAVIGABLE = {"comment", "attachment"}
TOP_LEVEL = {"id", "key", "issuekey"}  # requested as "fields" but rendered outside "fields"


def split_list(values: Any) -> list[str]:
    """Flatten repeated and comma-separated list parameters (``a,b&x=c`` or a JSON list)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


def resolve_fields(tokens: list[str], default: str) -> set[str]:
    """Apply Jira's ``fields`` rules (``*all``, ``*navigable``, names, ``-name``) to a field set."""
    tokens = tokens or [default]
    include: set[str] = set()
    exclude: set[str] = set()
    for token in tokens:
        if token == "*all":
            include |= set(ALL_FIELDS) | {"*custom"}
        elif token == "*navigable":
            include |= (set(ALL_FIELDS) - NOT_NAVIGABLE) | {"*custom"}
        elif token.startswith("-"):
            exclude.add(token[1:])
        else:
            include.add(token)
    if not include:  # only exclusions: they subtract from the default
        include = resolve_fields([default], default)
    return include - exclude


def property_keys(requested: list[str], present: dict[str, Any]) -> list[str]:
    keys: list[str] = []
    excluded = {r[1:] for r in requested if r.startswith("-")}
    for r in requested:
        if r == "*all":
            keys.extend(present)
        elif not r.startswith("-") and r in present:
            keys.append(r)
    return [k for k in dict.fromkeys(keys) if k not in excluded]
