"""What can go wrong talking to Jira, in the terms the jobs act on.

The jobs never see `requests` or `jira.JIRAError`: they retry `JiraUnavailable` without
counting it against the message (Jira being down is not the message's fault), back off for
`RateLimited` as long as Jira asks, and count `JiraRejected` towards the dead-letter limit.

An error carries Jira's status, code and message and nothing else: `jira.JIRAError`'s own
text holds the request's and the response's headers (cookies, the Authorization header) and
the whole body, so it never reaches a log line, a stored `last_error` or a Jira note.
"""

from __future__ import annotations

from typing import ClassVar


class JiraError(Exception):
    """Base of every Jira failure.

    Attributes:
        status: the HTTP status, None when no answer came (timeout, refused connection).
        code: Jira's own error code when its body gave one (`code`, `errorCode`), else None.
    """

    log_cause: ClassVar[bool] = False
    """Read by `bot.logs`: the cause is the vendor library's exception; never render it."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class JiraUnavailable(JiraError):
    """5xx, timeout, refused connection: try again later."""


class RateLimited(JiraUnavailable):
    """429: Jira told us how long to wait (`Retry-After`, seconds) or we pick a back-off."""

    def __init__(self, message: str, *, retry_after: float | None, code: str | None = None) -> None:
        super().__init__(message, status=429, code=code)
        self.retry_after = retry_after


class JiraRejected(JiraError):
    """A 4xx other than 429: the request itself is wrong (bad field, missing project, …)."""


class JiraAuthFailed(JiraRejected):
    """401/403: credentials or permissions; every call will fail until an operator acts."""


class IssueNotFound(JiraRejected):
    """404 on an issue: deleted or moved out of our reach."""
