"""``JiraSandbox``: a loopback Jira Cloud (or Server) stand-in for tests and ``wajira demo``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from sandbox.faults import FaultPlan
from sandbox.httpserver import SandboxServer

from . import api_attachments, api_servicedesk
from .app import JiraApp
from .inspection import SandboxHelpers
from .model import User
from .render import View
from .store import SEEDED_AGENT, JiraStore
from .web import Request


@dataclass(frozen=True)
class Settings:
    email: str
    api_token: str
    pat: str | None
    cloud: bool
    time_zone: str
    comment_page_limit: int
    search_inline_comment_limit: int


def _jira_error_body(status: int) -> dict[str, Any]:
    return {
        "errorMessages": [f"{status} {HTTPStatus(status).phrase} (injected by the sandbox)"],
        "errors": {},
    }


class JiraSandbox(SandboxHelpers, SandboxServer):
    """An in-memory Jira served over loopback (start, stop, url and ``with`` from SandboxServer).

    Args:
        email, api_token: the HTTP Basic credentials Cloud accepts.
        pat: if given, ``Authorization: Bearer <pat>`` is accepted too (Server/DC style).
        deployment: "cloud" or "server" (v2 only, classic ``/search``).
        time_zone: the bot account's zone: JQL dates and rendered times use it.
        account_id, display_name: the bot account.
        comment_page_limit: cap on ``maxResults`` for comment pages.
        search_inline_comment_limit: comments inlined per issue in search results.
    """

    app: JiraApp
    # Permission keys `GET /mypermissions` answers as not held (tests set it; absent: none).
    denied_permissions: set[str] | None = None

    def __init__(
        self,
        *,
        email: str = "agent@example.com",
        api_token: str = "sandbox-api-token",
        pat: str | None = None,
        deployment: str = "cloud",
        time_zone: str = "UTC",
        account_id: str = "bot-account-id",
        display_name: str = "wajira bot",
        comment_page_limit: int = 5000,
        search_inline_comment_limit: int = 20,
    ) -> None:
        if deployment not in ("cloud", "server"):
            raise ValueError("deployment must be 'cloud' or 'server'")
        super().__init__()
        self.settings = Settings(
            email,
            api_token,
            pat,
            deployment == "cloud",
            time_zone,
            comment_page_limit,
            search_inline_comment_limit,
        )
        self.store = JiraStore(User(account_id, display_name, email, "atlassian"))
        self.faults = FaultPlan(default_body=_jira_error_body)
        self.app = JiraApp(self)

    @property
    def calls(self) -> Counter[str]:
        """A snapshot of calls so far, keyed ``"METHOD /rest/api/3/issue/{key}/comment"``."""
        return self.app.calls.snapshot()

    def reset_calls(self) -> None:
        self.app.calls.clear()

    def view(self, req: Request) -> View:
        return View(self.store, req.base, req.version, self.settings.time_zone, self.settings.cloud)

    def add_agent_comment_with_files(
        self,
        key: str,
        text: str,
        files: list[tuple[str, str, bytes]],
        *,
        internal: bool = False,
        author: str = SEEDED_AGENT.display_name,
    ) -> dict[str, Any]:
        """An agent attaches ``files`` ((filename, mime type, bytes)) and posts one comment showing
        them, as in Jira's UI: Cloud's body is the text paragraph then a ``mediaSingle`` (one file)
        or ``mediaGroup`` (several) naming each file's Media Services id; Server/DC's is wiki
        markup (``!a.png!``, ``[^b.pdf]``). ``author`` is a display name or a known account id.

        Returns:
            ``{"comment_id": …, "attachments": [{"id": …, "media_id": …}, …]}`` in file order.
        """
        return api_attachments.agent_files_comment(
            self, key, text, list(files), internal=internal, author=author
        )

    def add_agent_attachment(
        self, key: str, filename: str, mime_type: str, data: bytes, *, author: str = SEEDED_AGENT.display_name
    ) -> dict[str, str]:
        """An agent attaches a file with no comment; returns ``{"id": …, "media_id": …}``."""
        return api_attachments.agent_attachment(self, key, filename, mime_type, data, author=author)

    def make_service_desk(self, project_key: str) -> None:
        """Make the project a Jira Service Management service desk (``projectTypeKey``
        "service_desk"), whose issues are customer requests that take CSAT feedback. A project
        that does not exist yet springs into being, as on issue creation."""
        api_servicedesk.make_service_desk(self, project_key)

    def feedback(self, issue_key: str) -> dict[str, Any] | None:
        """The request's CSAT feedback as JSM stores it (``{"type": "csat", "rating": n}``), None
        when unrated; KeyError for an unknown issue."""
        return api_servicedesk.feedback_of(self, issue_key)
