"""What can go wrong talking to Meta's Graph API, in the terms the outbox acts on.

The jobs never see `requests` or a Graph error body. They retry `GraphUnavailable` later without
counting it against the message (the send may even have gone through: outcome unknown), wait as
long as `GraphRateLimited` says, fall back to a template (or an internal Jira note) on
`WindowClosed`, and give up on `GraphRejected`, which no retry can fix.

`error_from_response` is pure (status, headers, body in; an exception out) so the mapping from
Meta's codes is tested without a network.

An error carries Meta's status, code and message (and Meta's own explanation and trace id),
never a header or a body that is not Graph's: a proxy's HTML page or its cookies would
otherwise travel into log lines, stored `last_error` columns and Jira notes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

# Meta's error-code page: throughput (130429), pair rate limit (131056), account rate limit (80007)
# and the app-level "API Too Many Calls" (4). Meta answers some of these with HTTP 400, so the code
# decides, not only the status.
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131056})
WINDOW_CLOSED_CODE = 131047
AUTH_CODES = frozenset({104, 190})
# "Temporary due to downtime" (2), "Something went wrong" (131000), "Service unavailable" (131016),
# "Server temporarily unavailable" (133004): Meta itself says to retry these.
UNAVAILABLE_CODES = frozenset({2, 131000, 131016, 133004})

# An error body is a few hundred bytes; anything much longer is a proxy page, not Graph.
MAX_ERROR_BODY = 64 * 1024
_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")
_MEDIA_TYPE = re.compile(r"[a-z0-9.+-]{1,40}/[a-z0-9.+-]{1,60}")


class GraphError(Exception):
    """Base of every Graph failure.

    Attributes:
        code: Meta's numeric error code (`error.code`), None when the answer was not Graph's.
        title: Meta's message without its `(#code)` prefix, e.g. "Re-engagement message".
        status: the HTTP status, None when no answer came (timeout, refused connection).
        details: `error.error_data.details`, Meta's longer explanation ("" when absent).
        subcode: `error.error_subcode` when given.
        fbtrace_id: Meta's trace id, the thing to quote in a support ticket.
    """

    log_cause: ClassVar[bool] = False
    """Read by `bot.logs`: a cause is the `requests` exception (URLs, headers); never render it."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        title: str = "",
        status: int | None = None,
        details: str = "",
        subcode: int | None = None,
        fbtrace_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.title = title
        self.status = status
        self.details = details
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id


class GraphUnavailable(GraphError):
    """5xx, code 131000 and friends, timeouts, refused connections: outcome unknown, try later."""


class GraphRateLimited(GraphError):
    """HTTP 429 or a throughput code (130429, 131056, 80007, 4): back off.

    Attributes:
        retry_after: seconds from the `Retry-After` header; None when Meta gave none (it usually
            does not), and the caller picks its own back-off.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class WindowClosed(GraphError):
    """131047: more than 24 h since the customer last wrote; only a template may go out."""


class GraphRejected(GraphError):
    """Permanent: the request or recipient is wrong (131026, 100, 131051-131053, other 4xx)."""


class GraphAuthFailed(GraphRejected):
    """401 or codes 190/104: the access token is missing, wrong or expired; an operator must act."""


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> GraphError:
    """Translate a non-2xx answer into our exception.

    Args:
        status: the HTTP status (>= 400).
        headers: response headers (case-insensitive mapping preferred); only Retry-After is read.
        body: the raw body, possibly not JSON (a CDN 404, a proxy's HTML page).

    Returns:
        The most specific GraphError subclass for Meta's code, else for the HTTP status.
    """
    error = _graph_error_object(body)
    if error is None:
        # Not Graph's dialect (a CDN's 404, a proxy's 502 page): classify by status alone and
        # say what came, never what it said; such pages carry cookies and internal names.
        cls = _class_for(None, status)
        kwargs: dict[str, Any] = {"status": status}
        if cls is GraphRateLimited:
            kwargs["retry_after"] = retry_after_seconds(headers)
        return cls(f"Graph HTTP {status}: {_describe(headers, body)}", **kwargs)

    code = error.get("code") if isinstance(error.get("code"), int) else None
    message = str(error.get("message") or "")
    title = _CODE_PREFIX.sub("", message)
    raw_data = error.get("error_data")
    error_data = raw_data if isinstance(raw_data, dict) else {}
    details = str(error_data.get("details") or error.get("error_user_msg") or "")
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    cls = _class_for(code, status)
    kwargs = {
        "code": code,
        "title": title,
        "status": status,
        "details": details,
        "subcode": subcode,
        "fbtrace_id": error.get("fbtrace_id") if isinstance(error.get("fbtrace_id"), str) else None,
    }
    if cls is GraphRateLimited:
        kwargs["retry_after"] = retry_after_seconds(headers)
    return cls(f"Graph {status} (#{code}) {title}".rstrip(), **kwargs)


def _describe(headers: Mapping[str, str], body: bytes) -> str:
    if not body:
        return "no body"
    content_type = headers.get("Content-Type") if headers is not None else None
    media_type = (content_type or "").split(";")[0].strip().lower()
    shown = media_type if _MEDIA_TYPE.fullmatch(media_type) else "unknown type"
    return f"not a Graph error ({shown}, {len(body)} bytes)"


def _class_for(code: int | None, status: int) -> type[GraphError]:
    # Meta's code is more precise than the status (130429 can come as a 400), so codes go first.
    if code in RATE_LIMIT_CODES or status == 429:
        return GraphRateLimited
    if code == WINDOW_CLOSED_CODE:
        return WindowClosed
    if code in AUTH_CODES or status == 401:
        return GraphAuthFailed
    if code in UNAVAILABLE_CODES or status >= 500:
        return GraphUnavailable
    return GraphRejected


def _graph_error_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body[:MAX_ERROR_BODY])
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds (RFC 9110 allows an HTTP date too; Meta and our sandbox send
    seconds, so a date is treated as absent rather than guessed at)."""
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is not a wait
