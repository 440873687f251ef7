"""Jira attachments: the media job's upload and its look-up after an uncertain one.
Mixed into `JiraAdapter`, whose `_request` / `_call` and client they use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from bot.jira_api.errors import JiraUnavailable

if TYPE_CHECKING:
    import jira

T = TypeVar("T")


class AttachmentCalls:
    if TYPE_CHECKING:
        # Provided by `JiraAdapter`; declared for mypy only, so the mixin has no stub at run time
        # that could answer in its place.
        _client: jira.JIRA
        _base: str
        _api: str

        def _call(self, operation: str, fn: Callable[[], T]) -> T: ...

        def _request(
            self,
            operation: str,
            method: str,
            path: str,
            *,
            params: dict[str, Any] | None = None,
            body: Any = None,
        ) -> Any: ...

    def add_attachment(self, issue_key: str, filename: str, data: bytes, mime_type: str) -> str:
        """Attach a file to the issue (multipart, field `file`); returns the attachment's id.

        Jira refuses multipart POSTs without `X-Atlassian-Token: no-check` as cross-site requests.

        Raises:
            IssueNotFound: the issue is gone.
            JiraRejected: refused (attachments disabled, over Jira's size limit, no permission).
            JiraUnavailable: outcome unknown; use `list_attachments` before attaching again.
        """
        url = f"{self._base}/rest/api/{self._api}/issue/{quote(issue_key, safe='')}/attachments"
        # Content-Type None drops the session's JSON default, so requests writes the multipart one.
        headers = {"Content-Type": None, "X-Atlassian-Token": "no-check"}
        files = {"file": (filename, data, mime_type or "application/octet-stream")}

        def send() -> str:
            response = self._client._session.request("POST", url, files=files, headers=headers)
            created = response.json()
            first = created[0] if isinstance(created, list) and created else created
            if not isinstance(first, dict) or "id" not in first:
                raise JiraUnavailable("add_attachment: Jira's answer names no attachment")
            return str(first["id"])

        return self._call("add_attachment", send)

    def list_attachments(self, issue_key: str) -> list[dict[str, Any]]:
        """The issue's attachments (`id`, `filename`, `size`, `mimeType`, …), as Jira lists them.

        Raises:
            IssueNotFound: the issue is gone.
        """
        issue = self._request(
            "list_attachments", "GET", f"issue/{quote(issue_key, safe='')}", params={"fields": "attachment"}
        )
        found = ((issue or {}).get("fields") or {}).get("attachment") or []
        return [a for a in found if isinstance(a, dict)]
