"""The three outside services a job talks to: Jira, WhatsApp (Meta's Graph API) and the model.

Each port lists only the calls the jobs make; the adapters' docstrings say in detail what each
call sends and raises. Errors are the adapters' own typed exceptions, never raw HTTP:
`bot.jira_api.errors` (`JiraUnavailable`, `IssueNotFound`, `JiraRejected`, `RateLimited`, …),
`bot.whatsapp.graph_errors` (`WindowClosed`, `GraphRateLimited`, `GraphRejected`,
`GraphUnavailable`, …) and `bot.ai.client` (`AiUnavailable`, `AiRejected`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # value types only: their modules import requests, jira and openai
    from bot.ai.client import AiReply, Tool
    from bot.jira_api.adapter import IssueRef
    from bot.whatsapp.graph import MediaInfo, Recipient


class JiraPort(Protocol):
    """Jira, as the inbox, poll, AI, media and lifecycle jobs use it (`JiraAdapter`, `FakeJira`).

    Comments and issues the bot writes carry its `wajira` entity property; the `find_*` calls
    look for it after an uncertain write, so a retry never writes twice.
    """

    def myself(self) -> dict[str, Any]:
        """The bot's own account (`accountId`, `timeZone`, …)."""
        ...

    def create_issue(
        self,
        *,
        project_key: str,
        issue_type: str,
        summary: str,
        description: str,
        labels: list[str],
        properties: dict[str, Any],
        extra_fields: dict[str, Any] | None = ...,
    ) -> IssueRef:
        """Create an issue with its entity properties set in the same request."""
        ...

    def find_issue_with_property(
        self, *, project_key: str, created_since_epoch: float, match: dict[str, Any]
    ) -> IssueRef | None:
        """An issue created since then whose `wajira` property contains `match`."""
        ...

    def add_comment(self, issue_key: str, text: str, *, prop: dict[str, Any], internal: bool = ...) -> str:
        """Post a comment carrying the `wajira` property `prop`; returns its id."""
        ...

    def find_comment_with_property(self, issue_key: str, match: dict[str, Any]) -> str | None:
        """The id of the newest comment whose `wajira` property contains `match`."""
        ...

    def list_comments(self, issue_key: str) -> list[dict[str, Any]]:
        """Every comment, oldest first, with its `properties` as `[{"key", "value"}]`."""
        ...

    def comments_by_ids(self, comment_ids: Sequence[str]) -> list[dict[str, Any]] | None:
        """The comments with these ids, of any issues, with their `properties`, in as few
        requests as Jira allows; None when the deployment cannot (read `list_comments` then)."""
        ...

    def get_issue(self, issue_key: str, *, fields: list[str], properties: list[str] = ...) -> dict[str, Any]:
        """The issue with the given fields and entity properties (`issue["properties"][key]`)."""
        ...

    def search_issues(
        self,
        jql: str,
        *,
        fields: list[str],
        properties: list[str] | None = ...,
        reconcile_ids: list[int] | None = ...,
        max_results: int | None = ...,
    ) -> Iterator[dict[str, Any]]:
        """Every issue matching `jql`; `reconcile_ids` asks search to reflect our fresh writes.
        With `max_results`, one request for at most that many issues, and no further page
        (`ValueError` below 1)."""
        ...

    def add_labels(self, issue_key: str, labels: Sequence[str]) -> None:
        """Add labels to the issue, keeping the ones it has. `ValueError` (before any request)
        for a label that is empty or holds whitespace; `IssueNotFound` when the issue is gone."""
        ...

    def add_attachment(self, issue_key: str, filename: str, data: bytes, mime_type: str) -> str:
        """Attach a file; returns the attachment's id."""
        ...

    def list_attachments(self, issue_key: str) -> list[dict[str, Any]]:
        """The issue's attachments (`id`, `filename`, `size`, `mimeType`, …)."""
        ...

    def attachment_media_id(self, attachment_id: str) -> str | None:
        """The Media Services file id an ADF `media` node names for this attachment (Cloud: read
        from the content URL's redirect, the file itself is not fetched); None on Server/DC."""
        ...

    def attachment_content(self, attachment_id: str, *, max_bytes: int) -> bytes:
        """The attachment's bytes; `JiraRejected` "larger than" past `max_bytes`."""
        ...

    def transitions(self, issue_key: str) -> list[dict[str, Any]]:
        """The transitions the issue can take from its status now."""
        ...

    def transition(self, issue_key: str, transition_id: str) -> None:
        """Move the issue along one of its transitions."""
        ...

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = ...) -> None:
        """Link two issues (Jira keeps one link per pair and type)."""
        ...

    def send_csat_feedback(self, issue_key: str, rating: int) -> bool:
        """Give the JSM request `issue_key` the customer's rating (1..5) as its CSAT feedback;
        sending again replaces it. True when Jira took it (201), False when the issue is not a
        JSM customer request (404: a Jira Software/Work Management project, a deleted request).
        `JiraRejected` for 400/403 (a rating out of range, not the reporter, feedback disabled),
        `RateLimited` for 429, `JiraUnavailable` for 5xx, timeouts and answers that are not Jira's."""
        ...


class GraphPort(Protocol):
    """Meta's Graph API, as the outbox, AI and media jobs use it (`GraphAdapter`, `FakeGraph`)."""

    def send_text(
        self,
        phone_number_id: str,
        to: Recipient,
        body: str,
        *,
        reply_to: str | None = ...,
        preview_url: bool = ...,
    ) -> str:
        """Send a free-form text; returns its wamid. `WindowClosed` outside the 24-hour window."""
        ...

    def send_template(
        self, phone_number_id: str, to: Recipient, *, name: str, language: str, body_parameters: list[str]
    ) -> str:
        """Send an approved template (allowed outside the window); returns its wamid."""
        ...

    def mark_read(self, phone_number_id: str, wamid: str, *, typing: bool = ...) -> None:
        """Show the customer's message as read, optionally with "typing…"."""
        ...

    def media_info(self, media_id: str) -> MediaInfo:
        """Where to download a customer's medium (a URL good for minutes) and what to expect."""
        ...

    def download(self, url: str, *, max_bytes: int) -> bytes:
        """The medium at a `media_info` URL; `GraphRejected` "too large" past `max_bytes`."""
        ...

    def upload_media(self, phone_number_id: str, data: bytes, *, mime_type: str, filename: str) -> str:
        """Upload a file for this business number (multipart `POST /{phone-number-id}/media`);
        returns Meta's media id. `GraphRejected` code 100 for a type WhatsApp refuses, 131053
        for a file too large."""
        ...

    def send_media(
        self,
        phone_number_id: str,
        to: Recipient,
        *,
        media_type: str,
        media_id: str,
        filename: str | None = ...,
        caption: str | None = ...,
    ) -> str:
        """Send an uploaded medium as "image", "video", "audio" or "document"; returns its wamid.
        `filename` is kept for documents only, `caption` (≤ 1024) for all but audio.
        `WindowClosed` outside the 24-hour window; `GraphRejected` 131053 when the medium is too
        large for its type, 100 for an unknown media id."""
        ...

    def send_list(
        self,
        phone_number_id: str,
        to: Recipient,
        *,
        body: str,
        button: str,
        rows: list[dict[str, str]],
        section_title: str = ...,
    ) -> str:
        """Send an interactive list (rows of `id`, `title`, optional `description`); returns its
        wamid. Free-form: `WindowClosed` outside the 24-hour window; `GraphRejected` (131009)
        for a part over Meta's limits, which callers check first (nothing is clipped)."""
        ...


class AiPort(Protocol):
    """The language model, as the AI job uses it (`OpenAIAdapter`, `FakeAI`)."""

    def complete(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int | None = ...,
        tools: Sequence[Tool] = ...,
    ) -> AiReply:
        """One chat completion: the reply's text, the tools it called (of those offered, with
        `tool_choice` "auto") and its token usage. `AiToolsUnsupported` when tools were offered
        and the server cannot do tool calling: ask again without them."""
        ...
