"""Jira's error responses, turned into the exceptions the jobs act on."""

from __future__ import annotations

import jira

from bot.jira_api.errors import (
    IssueNotFound,
    JiraAuthFailed,
    JiraError,
    JiraRejected,
    JiraUnavailable,
    RateLimited,
)

# A 404 on these means the issue is gone; elsewhere (myself, search) it means a wrong URL.
ISSUE_OPERATIONS = frozenset({"add_comment", "list_comments", "get_issue", "transitions", "transition",
                               "add_attachment", "list_attachments"})


def translate(exc: jira.JIRAError, *, issue_scoped: bool) -> JiraError:
    status = exc.status_code
    reason = _reason(exc)
    if status == 429:
        return RateLimited(f"Jira rate limit: {reason}", retry_after=_retry_after(exc))
    if status is None or status >= 500:
        return JiraUnavailable(f"Jira {status}: {reason}", status=status)
    if status in (401, 403):
        return JiraAuthFailed(f"Jira {status}: {reason}", status=status)
    if status == 404 and issue_scoped:
        return IssueNotFound(f"Jira 404: {reason}", status=status)
    return JiraRejected(f"Jira {status}: {reason}", status=status)


def _retry_after(exc: jira.JIRAError) -> float | None:
    headers = exc.response.headers if exc.response is not None else {}
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None


def _reason(exc: jira.JIRAError) -> str:
    """Jira's own error text (`errorMessages` and `errors`), short enough for a log line."""
    response = exc.response
    try:
        data = response.json() if response is not None else {}
    except ValueError:
        data = {}
    parts = list(data.get("errorMessages") or []) if isinstance(data, dict) else []
    if isinstance(data, dict) and isinstance(data.get("errors"), dict):
        parts += [f"{k}: {v}" for k, v in data["errors"].items()]
    return ("; ".join(str(p) for p in parts) or str(exc.text or "no reason given"))[:500]
