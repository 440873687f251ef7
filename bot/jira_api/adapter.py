"""The Jira adapter: every call wajira makes to Jira goes through `JiraAdapter._call`.

Cloud gets REST API v3 with Atlassian Document Format bodies, where user text is a plain text
node and can never become a mention, link or macro. Server/Data Center gets API v2 with the
text's wiki markup escaped. Callers pass plain text and never see which one is used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import jira
import requests

from bot.jira_api.attachment_calls import AttachmentCalls
from bot.jira_api.errors import (
    JiraError,
    JiraUnavailable,
    RateLimited,
)
from bot.jira_api.feedback_calls import FeedbackCalls
from bot.jira_api.setup_calls import WorkflowAndSetupCalls
from bot.jira_api.translate import ISSUE_OPERATIONS, translate
from bot.logs import get_logger
from bot.rules.adf import doc_from_text
from bot.rules.comment_property import (
    PROPERTY_KEY,
    comment_properties,
    entity_properties,
    issue_value,
    matches,
    our_value,
)
from bot.rules.wiki import escape_wiki

log = get_logger(__name__)
T = TypeVar("T")
MAX_HOLD_SECONDS = 300.0
"""The longest a 429's Retry-After holds every call of the account."""


COMMENT_LIST_MAX_IDS = 1000  # `POST /comment/list` takes at most this many ids


@dataclass(frozen=True)
class IssueRef:
    key: str
    id: str


class JiraAdapter(AttachmentCalls, FeedbackCalls, WorkflowAndSetupCalls):
    """Jira Cloud (API v3, ADF) or Server/Data Center (API v2, wiki markup).

    Args:
        client: a configured `jira.JIRA`; its session does the HTTP.
        cloud: True for Cloud (v3 + ADF), False for Server/DC (v2 + escaped wiki markup).
        observe: called as observe(operation, outcome, seconds) after every call (metrics).
    """

    def __init__(
        self,
        client: jira.JIRA,
        *,
        cloud: bool,
        observe: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self._client = client
        self.cloud = cloud
        self._api = "3" if cloud else "2"
        self._base = client.server_url.rstrip("/")
        self._observe = observe or (lambda op, outcome, seconds: None)
        # Jira's Retry-After binds the account, not only the call that met it: until then every
        # job and worker using this adapter is told to wait without calling (see `_call`).
        self._hold_until = 0.0  # time.monotonic()
        self._hold_lock = threading.Lock()

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        email: str = "",
        api_token: str = "",
        token: str = "",
        timeout: float = 30.0,
        observe: Callable[[str, str, float], None] | None = None,
        pool_size: int = 10,
    ) -> JiraAdapter:
        """Build the adapter without touching the network (nothing is fetched until a call).

        Args:
            pool_size: connections kept open to Jira; at least the threads that call it at
                once (inbox workers and jobs), or connections are dropped and opened again.
        """
        cloud = not token
        options = {
            "server": url,
            "rest_api_version": "3" if cloud else "2",
            # The library would otherwise ask PyPI for a newer version of itself.
            "check_update": False,
        }
        auth: dict[str, Any] = {"basic_auth": (email, api_token)} if cloud else {"token_auth": token}
        client = jira.JIRA(
            options=options,
            get_server_info=False,
            # Retries are ours: the queue backs off without holding a worker thread asleep.
            max_retries=0,
            timeout=timeout,
            **auth,
        )
        pooled = requests.adapters.HTTPAdapter(
            pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0
        )
        for scheme in ("https://", "http://"):
            client._session.mount(scheme, pooled)
        return cls(client, cloud=cloud, observe=observe)

    # -- the one place HTTP happens ---------------------------------------------------------

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        wait = self._hold_until - time.monotonic()
        if wait > 0:
            # Jira asked this account to wait: no call until then, whoever asks.
            self._observe(operation, "RateLimited", 0.0)
            raise RateLimited(f"{operation}: Jira asked us to wait ({wait:.1f} s more)", retry_after=wait)
        started = time.monotonic()
        outcome = "ok"
        try:
            return fn()
        except jira.JIRAError as exc:
            error = translate(exc, issue_scoped=operation in ISSUE_OPERATIONS)
            outcome = type(error).__name__
            if isinstance(error, RateLimited) and error.retry_after:
                # Capped: an answer asking for hours is a proxy's or a bug's, and would silence
                # every job; the queues' own back-off goes on after the hold.
                hold = min(error.retry_after, MAX_HOLD_SECONDS)
                with self._hold_lock:
                    self._hold_until = max(self._hold_until, time.monotonic() + hold)
            raise error from None  # the vendor's response (headers, cookies, body) must not reach a log
        except JiraError as exc:  # raised by a call's own checks of Jira's answer
            outcome = type(exc).__name__
            raise
        except requests.JSONDecodeError:  # before RequestException, which it also is
            outcome = "JiraUnavailable"  # a 2xx whose body is not JSON: a proxy page, not Jira
            raise JiraUnavailable(f"{operation}: Jira answered with something that is not JSON") from None
        except requests.Timeout:
            outcome = "JiraUnavailable"
            raise JiraUnavailable(f"{operation}: Jira did not answer in time") from None
        except requests.ConnectionError as exc:
            outcome = "JiraUnavailable"
            raise JiraUnavailable(f"{operation}: cannot reach Jira ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            outcome = "JiraUnavailable"
            raise JiraUnavailable(f"{operation}: {type(exc).__name__}") from None
        finally:
            elapsed = time.monotonic() - started
            self._observe(operation, outcome, elapsed)
            log.debug("jira_call", operation=operation, outcome=outcome, ms=round(elapsed * 1000, 1))

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        url = f"{self._base}/rest/api/{self._api}/{path}"

        def send() -> Any:
            response = self._client._session.request(method, url, params=params, json=body)
            return response.json() if response.content else None

        return self._call(operation, send)

    # -- operations -------------------------------------------------------------------------

    def myself(self) -> dict[str, Any]:
        return self._request("myself", "GET", "myself")

    def create_issue(
        self,
        *,
        project_key: str,
        issue_type: str,
        summary: str,
        description: str,
        labels: list[str],
        properties: dict[str, Any],
        extra_fields: dict[str, Any] | None = None,
    ) -> IssueRef:
        """Create an issue with entity properties set in the same request.

        Args:
            extra_fields: more `fields` (custom fields, e.g. `{"customfield_10010": "A-17"}`),
                sent as given; they cannot replace the fields named above.

        Raises:
            JiraRejected: the project, issue type or a field is not accepted.
            JiraUnavailable: the outcome is unknown; look before creating again.
        """
        body = {
            "fields": {
                **(extra_fields or {}),
                "project": {"key": project_key},
                "issuetype": {"name": issue_type},
                "summary": summary,
                "description": self._body(description),
                "labels": list(labels),
            },
            "properties": entity_properties(properties),
        }
        created = self._request("create_issue", "POST", "issue", body=body)
        return IssueRef(key=created["key"], id=str(created["id"]))

    def find_issue_with_property(
        self, *, project_key: str, created_since_epoch: float, match: dict[str, Any]
    ) -> IssueRef | None:
        """Find an issue this bot created since a moment whose `wajira` property contains `match`.

        Used after an uncertain create. Epoch milliseconds in JQL are zone-free, unlike dates.
        """
        since_ms = int(created_since_epoch * 1000)
        jql = f'project = "{project_key}" AND created >= {since_ms} ORDER BY created ASC'
        for issue in self._search(jql, fields=["summary"], properties=[PROPERTY_KEY]):
            if matches(issue_value(issue) or {}, match):
                return IssueRef(key=issue["key"], id=str(issue["id"]))
        return None

    def add_comment(self, issue_key: str, text: str, *, prop: dict[str, Any], internal: bool = False) -> str:
        """Post `text` as a comment carrying the `wajira` property; returns the comment id.

        Args:
            internal: a note for agents only: Jira Service Management keeps a comment with
                `sd.public.comment` = {"internal": true} off the customer portal, and our poller
                never sends a comment marked so.

        Raises:
            IssueNotFound: the issue is gone.
            JiraUnavailable: outcome unknown; use `find_comment_with_property` before posting again.
        """
        body = {"body": self._body(text), "properties": comment_properties(prop, internal=internal)}
        created = self._request("add_comment", "POST", f"issue/{issue_key}/comment", body=body)
        return str(created["id"])

    def find_comment_with_property(self, issue_key: str, match: dict[str, Any]) -> str | None:
        """The id of a comment on the issue whose `wajira` property contains `match`, newest first."""
        for comment in self._comments(issue_key, newest_first=True):
            value = our_value(comment.get("properties"))
            if value is not None and matches(value, match):
                return str(comment["id"])
        return None

    def search_issues(
        self,
        jql: str,
        *,
        fields: list[str],
        properties: list[str] | None = None,
        reconcile_ids: list[int] | None = None,
        max_results: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every issue matching `jql`, page by page; or, with `max_results`, the first ones only.

        Args:
            reconcile_ids: issues we just wrote; Cloud search then reflects those writes even
                before its index has caught up (read-after-write).
            max_results: one request asking for this many issues and no further page (Jira may
                give fewer: Cloud caps a page with fields at 100).

        Raises:
            ValueError: `max_results` below 1 (before any request).
        """
        if max_results is not None and max_results < 1:
            raise ValueError(f"max_results must be at least 1, not {max_results}")
        return self._search(
            jql, fields=fields, properties=properties, reconcile_ids=reconcile_ids, max_results=max_results
        )

    def add_labels(self, issue_key: str, labels: Sequence[str]) -> None:
        """Add labels to the issue (those it has already stay once), keeping its other labels.

        One `PUT /issue/{key}` with `update.labels` `add` operations, so labels an agent set
        meanwhile are not overwritten.

        Raises:
            ValueError: a label is empty or holds whitespace, which Jira refuses (no request is made).
            IssueNotFound: the issue is gone.
            JiraRejected: Jira refused the edit (e.g. labels are not on the issue's edit screen).
        """
        wanted = list(dict.fromkeys(labels))
        bad = [label for label in wanted if not label or any(c.isspace() for c in label)]
        if bad:
            raise ValueError(f"Jira labels cannot be empty or contain spaces: {bad!r}")
        if not wanted:
            return
        body = {"update": {"labels": [{"add": label} for label in wanted]}}
        self._request("add_labels", "PUT", f"issue/{issue_key}", body=body)

    def list_comments(self, issue_key: str) -> list[dict[str, Any]]:
        """All comments of an issue, oldest first, with their properties."""
        return list(self._comments(issue_key, newest_first=False))

    def comments_by_ids(self, comment_ids: Sequence[str]) -> list[dict[str, Any]] | None:
        """The comments with these ids (any issues), with their properties: one
        `POST /rest/api/3/comment/list?expand=properties` per 1000 ids. A comment gone meanwhile
        is absent. None on Server/Data Center, where the poller reads each issue's list instead
        (Cloud's API description is the one we can check this call against)."""
        if not self.cloud:
            return None
        ids = [int(i) for i in dict.fromkeys(comment_ids) if str(i).isdigit()]
        if not ids:
            return []  # Jira answers 400 to an empty `ids`: nothing to ask
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), COMMENT_LIST_MAX_IDS):
            page = self._request(
                "comments_by_ids",
                "POST",
                "comment/list",
                params={"expand": "properties"},
                body={"ids": ids[start : start + COMMENT_LIST_MAX_IDS]},
            )
            found += page.get("values") or []
        return found

    def get_issue(
        self, issue_key: str, *, fields: list[str], properties: list[str] | tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """The issue with the given fields and entity properties (`issue["properties"][key]`)."""
        params = {"fields": ",".join(fields)}
        if properties:
            params["properties"] = ",".join(properties)
        return self._request("get_issue", "GET", f"issue/{issue_key}", params=params)

    # -- helpers ----------------------------------------------------------------------------

    def _body(self, text: str) -> Any:
        return doc_from_text(text) if self.cloud else escape_wiki(text)

    def _comments(self, issue_key: str, *, newest_first: bool) -> Iterator[dict[str, Any]]:
        start = 0
        while True:
            page = self._request(
                "list_comments",
                "GET",
                f"issue/{issue_key}/comment",
                params={
                    "startAt": start,
                    "maxResults": 100,
                    "orderBy": "-created" if newest_first else "created",
                    "expand": "properties",
                },
            )
            comments = page.get("comments") or []
            yield from comments
            start += len(comments)
            if not comments or start >= int(page.get("total", 0)):
                return

    def _search(
        self,
        jql: str,
        *,
        fields: list[str],
        properties: list[str] | None = None,
        reconcile_ids: list[int] | None = None,
        max_results: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every issue matching `jql`: Cloud pages /search/jql by token, Server/DC /search by
        offset. With `max_results`, the first page only, of that size."""
        page_size = max_results or 100
        if self.cloud:
            # /search/jql directly: the library's enhanced_search_issues silently returns None
            # unless it fetched serverInfo first, and looks up /field on every call.
            params: dict[str, Any] = {"jql": jql, "maxResults": page_size, "fields": ",".join(fields)}
            if properties:
                params["properties"] = ",".join(properties)
            if reconcile_ids:
                params["reconcileIssues"] = ",".join(str(i) for i in reconcile_ids[:50])
            while True:
                page = self._request("search", "GET", "search/jql", params=params)
                yield from page.get("issues") or []
                token = page.get("nextPageToken")
                if max_results is not None or not token or page.get("isLast", False):
                    return
                params = {**params, "nextPageToken": token}
        start = 0
        while True:
            params = {"jql": jql, "startAt": start, "maxResults": page_size, "fields": ",".join(fields)}
            if properties:
                params["properties"] = ",".join(properties)
            page = self._request("search", "GET", "search", params=params)
            issues = page.get("issues") or []
            yield from issues
            start += len(issues)
            if max_results is not None or not issues or start >= int(page.get("total", 0)):
                return
