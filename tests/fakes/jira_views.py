"""How the fake Jira shows its issues and comments: the shapes Jira Cloud answers with, and what
its JQL sees of them."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from bot.rules.adf import doc_from_text
from bot.rules.comment_property import PROPERTY_KEY
from sandbox.jira.jqleval import IssueView


def jira_time(epoch: float) -> str:
    """Epoch seconds as Jira writes them: `2027-01-15T08:00:00.000+0000`."""
    stamp = datetime.fromtimestamp(epoch, timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"


def render_comment(c: dict[str, Any], *, cloud: bool, with_properties: bool) -> dict[str, Any]:
    """A stored comment as `GET /issue/{key}/comment` gives it (`properties` when expanded)."""
    account_id, name = c["author"]
    out: dict[str, Any] = {
        "id": c["id"],
        "author": {"accountId": account_id, "displayName": name},
        "body": doc_from_text(c["text"]) if cloud else c["text"],
        "created": jira_time(c["created"]),
        "updated": jira_time(c["created"]),
        "jsdPublic": c["jsd_public"],
    }
    if c["visibility"] is not None:
        out["visibility"] = copy.deepcopy(c["visibility"])
    if with_properties:
        props = dict(c["extra_props"])
        if c["prop"] is not None:
            props[PROPERTY_KEY] = c["prop"]
        out["properties"] = [{"key": k, "value": copy.deepcopy(v)} for k, v in props.items()]
    return out


def issue_view(
    issue: dict[str, Any],
    comments: list[dict[str, Any]],
    fields: list[str],
    properties: list[str],
    *,
    cloud: bool,
    inline_limit: int,
) -> dict[str, Any]:
    """An issue as `GET /issue/{key}` or search gives it: the requested fields (comments inlined
    without properties, cut to `inline_limit` with the real `total`) and entity properties."""
    inline = comments[:inline_limit]
    makers = {
        "summary": lambda: issue["summary"],
        "labels": lambda: list(issue["labels"]),
        "updated": lambda: jira_time(issue["updated"]),
        "status": lambda: {
            "name": issue.get("status_name", "Open"),
            "statusCategory": {"key": issue.get("status_category", "new")},
        },
        "comment": lambda: {
            "comments": [render_comment(c, cloud=cloud, with_properties=False) for c in inline],
            "maxResults": len(inline),
            "total": len(comments),
            "startAt": 0,
        },
    }
    out: dict[str, Any] = {
        "id": issue["id"],
        "key": issue["key"],
        "fields": {name: make() for name, make in makers.items() if name in fields},
    }
    if properties:
        out["properties"] = {k: copy.deepcopy(v) for k, v in issue["properties"].items() if k in properties}
    return out


def search_view(issue: dict[str, Any], comments: list[dict[str, Any]], *, reporter: str) -> IssueView:
    """What JQL sees of a fake issue, for the sandbox's own evaluator (`sandbox.jira.jqleval`):
    the fake answers the same JQL the sandbox does, `text ~` included. Every comment is
    searchable, internal ones too, as in Jira."""
    extra = issue.get("extra_fields") or {}
    return IssueView(
        id=issue["id"],
        key=issue["key"],
        project_key=issue["project"],
        project_id="",
        project_name=issue["project"],
        labels=tuple(issue["labels"]),
        created_ms=int(issue["created"] * 1000),
        updated_ms=int(issue["updated"] * 1000),
        status_name=issue.get("status_name", "Open"),
        status_category=issue.get("status_category", "new"),
        issuetype=issue["issue_type"],
        reporter=reporter,
        summary=issue["summary"],
        description=issue.get("description") or "",
        comments=tuple(c["text"] for c in comments),
        custom_texts=tuple(v for v in extra.values() if isinstance(v, str)),
    )
