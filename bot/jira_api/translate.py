"""Jira's error responses, turned into the exceptions the jobs act on.

Only Jira's own words go into the message: `errorMessages`, `errors` and `message` from a
JSON body. A body that is not Jira's JSON (a proxy's HTML page, a login form) is described by
its type and size, never quoted, and no header is ever copied: `Set-Cookie` and friends stay
in the response, which is dropped with the library's exception.
"""

from __future__ import annotations

import math
import re
from typing import Any

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
ISSUE_OPERATIONS = frozenset(
    {
        "add_comment",
        "add_labels",
        "list_comments",
        "get_issue",
        "transitions",
        "transition",
        "add_attachment",
        "list_attachments",
    }
)

MAX_REASON_CHARS = 300
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MEDIA_TYPE = re.compile(r"[a-z0-9.+-]{1,40}/[a-z0-9.+-]{1,60}")


def translate(exc: jira.JIRAError, *, issue_scoped: bool) -> JiraError:
    status = exc.status_code
    data = _json_body(exc.response)
    reason, code = _reason(exc.response, data), _code(exc.response, status, data)
    if status == 429:
        return RateLimited(f"Jira 429: {reason}", retry_after=_retry_after(exc), code=code)
    if status is None or status >= 500:
        return JiraUnavailable(f"Jira {status}: {reason}", status=status, code=code)
    if status in (401, 403):
        return JiraAuthFailed(f"Jira {status}: {reason}", status=status, code=code)
    if status == 404 and issue_scoped:
        return IssueNotFound(f"Jira 404: {reason}", status=status, code=code)
    return JiraRejected(f"Jira {status}: {reason}", status=status, code=code)


def _retry_after(exc: jira.JIRAError) -> float | None:
    headers = exc.response.headers if exc.response is not None else {}
    try:
        seconds = float(headers.get("Retry-After", ""))
    except ValueError:
        return None
    # "inf" and "nan" parse as floats: neither is a wait anyone can honour.
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _json_body(response: Any) -> dict[str, Any] | None:
    if response is None:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _reason(response: Any, data: dict[str, Any] | None) -> str:
    """Jira's own error text, one line, short enough for a log line."""
    parts: list[str] = []
    if data is not None:
        messages = data.get("errorMessages")
        if isinstance(messages, list):
            parts += [str(m) for m in messages]
        errors = data.get("errors")
        if isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        for key in ("message", "errorMessage"):  # the gateway's and older servers' dialects
            if isinstance(data.get(key), str):
                parts.append(data[key])
    text = " ".join("; ".join(parts).split())  # newlines from a body must not split the line
    if text:
        return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"
    return _describe_body(response)


def _describe_body(response: Any) -> str:
    # Not Jira's dialect (a proxy's error page, a login form): what it was, not what it said.
    if response is None:
        return "no response"
    media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    size = len(response.content or b"")
    if not size:
        return "no error message (empty body)"
    shown = media_type if _MEDIA_TYPE.fullmatch(media_type) else "unknown type"
    return f"no Jira error message ({shown}, {size} bytes)"


def _code(response: Any, status: int | None, data: dict[str, Any] | None) -> str | None:
    if data is not None:
        for key in ("errorCode", "code"):
            value = data.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and _CODE.fullmatch(str(value)):
                return str(value)
    if status == 403 and response is not None:
        # Jira Server's login guard names its reason in a header ("CAPTCHA_CHALLENGE; login-url=…"):
        # the reason token is an error code; the rest (a URL) stays out.
        denied = (response.headers.get("X-Authentication-Denied-Reason") or "").split(";")[0].strip()
        if _CODE.fullmatch(denied):
            return denied
    return None
