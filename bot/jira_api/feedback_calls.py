"""Jira Service Management feedback: the customer's CSAT rating given to their request.

Mixed into `JiraAdapter`, whose client and `_call` it uses. The call leaves the platform API
(`/rest/api/{2,3}`) for JSM's own (`/rest/servicedeskapi`), whose errors come as
`ErrorResponse` (`errorMessage`); `bot.jira_api.translate` reads that dialect too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import jira

from bot.jira_api.errors import JiraUnavailable

T = TypeVar("T")

# The JSM spec marks the feedback resource experimental: without this header Jira answers 412.
_HEADERS = {"X-ExperimentalApi": "opt-in"}


class FeedbackCalls:
    if TYPE_CHECKING:
        # Provided by `JiraAdapter`; declared for mypy only, so the mixin has no stub at run time
        # that could answer in its place.
        _client: jira.JIRA
        _base: str

        def _call(self, operation: str, fn: Callable[[], T]) -> T: ...

    def send_csat_feedback(self, issue_key: str, rating: int) -> bool:
        """Give the JSM request `issue_key` the customer's rating as its CSAT feedback.

        `POST /rest/servicedeskapi/request/{key}/feedback` (operation postFeedback) with
        `{"type": "csat", "rating": n}` (schema CSATFeedbackFullDTO). Jira keeps one feedback per
        request, so sending again after an uncertain answer replaces it rather than adding one.
        Only the request's reporter may rate it; the bot created the ticket, so it is.

        Returns:
            True when Jira took it (201); False when the issue is not a JSM customer request
            (404 with Jira's JSON error: a Jira Software/Work Management project, a deleted
            request, or a Jira without Service Management).

        Raises:
            JiraRejected: 400 (a rating outside 1..5, feedback disabled), 412; 401/403 (not the
                reporter) come as its subclass JiraAuthFailed.
            RateLimited: 429, with Jira's `Retry-After`.
            JiraUnavailable: 5xx, timeouts, a redirect, an HTML error page or any answer that is
                not Jira's JSON.
        """
        url = f"{self._base}/rest/servicedeskapi/request/{quote(issue_key, safe='')}/feedback"
        body = {"type": "csat", "rating": rating}

        def send() -> bool:
            try:
                # No redirects: a 3xx here is not Jira's answer, and following it could carry
                # our credentials (or the rating) to another host.
                response = self._client._session.request(
                    "POST", url, json=body, headers=_HEADERS, allow_redirects=False
                )
            except jira.JIRAError as exc:
                if exc.status_code == 404 and _is_json_object(exc.response):
                    return False
                if exc.status_code == 404:
                    # A proxy's page, not Jira saying the request does not exist.
                    raise JiraUnavailable(
                        "send_csat_feedback: 404 that is not Jira's answer", status=404
                    ) from None
                raise
            if response.is_redirect or not _is_json_object(response):
                raise JiraUnavailable(
                    f"send_csat_feedback: Jira answered {response.status_code} with something that is"
                    " not its JSON",
                    status=response.status_code,
                )
            return True

        return self._call("send_csat_feedback", send)


def _is_json_object(response: Any) -> bool:
    """Whether the answer's body is a JSON object, as every Jira answer on this path is."""
    if response is None:
        return False
    try:
        return isinstance(response.json(), dict)
    except ValueError:  # requests' JSONDecodeError is one
        return False
