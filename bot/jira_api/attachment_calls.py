"""Jira attachments: the media job's upload and its look-up after an uncertain one, and the files
agents attach (which Media Services file a comment's `media` node names, and the file's bytes).
Mixed into `JiraAdapter`, whose `_request` / `_call` and client they use."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import jira
import requests

from bot.jira_api.errors import JiraRejected, JiraUnavailable

T = TypeVar("T")

# Jira Cloud's content URL redirects to `https://api.media.atlassian.com/file/{media id}/binary?token=…`.
_MEDIA_PATH = re.compile(r"/file/([0-9a-fA-F-]{8,64})/binary/?$")
_CHUNK = 64 * 1024
# An error page is read only this far: enough for Jira's JSON errors, never a stream's worth.
_ERROR_BODY_LIMIT = 64 * 1024


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

    def attachment_media_id(self, attachment_id: str) -> str | None:
        """The Media Services file id of an attachment: what an ADF `media` node's `attrs.id` holds.

        Jira Cloud answers `GET /attachment/content/{id}` with a redirect to
        `…/file/{media id}/binary?token=…`; only the Location is read, never the file. The URL's
        token is a credential for the file: it is parsed here and dropped, never logged.

        Returns:
            The id as Jira wrote it; None when Jira serves the file itself (Server/Data Center,
            API v2) or redirects somewhere that names no Media Services file.

        Raises:
            JiraRejected: 404, the attachment is gone (or attachments are disabled).
            JiraAuthFailed: 401/403.
            RateLimited: 429, with Jira's `Retry-After`.
            JiraUnavailable: 5xx, timeout, no connection.
        """

        def send() -> str | None:
            response = self._get_content(attachment_id, follow=False)
            try:
                if not response.is_redirect:
                    return None  # Jira sent the file itself; closing unread drops the connection
                return media_id_from_location(response.headers.get("Location", ""))
            finally:
                response.close()

        return self._call("attachment_media_id", send)

    def attachment_content(self, attachment_id: str, *, max_bytes: int) -> bytes:
        """The attachment's bytes, following Jira Cloud's redirect to Media Services.

        requests drops our Authorization header when the redirect leaves Jira's host; the media
        URL carries its own short-lived token. The body is streamed and cut off past `max_bytes`.

        Raises:
            JiraRejected: the file is larger than `max_bytes` (nothing more is read); 404, the
                attachment is gone.
            JiraAuthFailed: 401/403 from Jira or from the media host.
            RateLimited: 429, with `Retry-After`.
            JiraUnavailable: 5xx, timeout, no connection, a transfer cut short.
        """

        def send() -> bytes | None:
            response = self._get_content(attachment_id, follow=True)
            try:
                return _read_capped(response, max_bytes)
            finally:
                response.close()

        data = self._call("attachment_content", send)
        if data is None:
            raise JiraRejected(f"attachment {attachment_id} is larger than {max_bytes} bytes")
        return data

    def _get_content(self, attachment_id: str, *, follow: bool) -> requests.Response:
        """GET the content URL, streamed, as `requests.Session` sends it.

        Not through the library's session `request`: it reads every 2xx body into memory (to
        check for an empty one), and its retry warnings print URLs. Its session still supplies the
        auth, headers, timeout and hooks. A non-2xx answer becomes the library's `JIRAError`, so
        `_call` maps it like every other call.
        """
        session = self._client._session
        url = f"{self._base}/rest/api/{self._api}/attachment/content/{quote(attachment_id, safe='')}"
        response = requests.Session.request(
            session, "GET", url, allow_redirects=follow, stream=True, timeout=session.timeout
        )
        if response.status_code >= 400:
            _read_error_body(response)
            raise jira.JIRAError(status_code=response.status_code, response=response)
        return response


def media_id_from_location(location: str) -> str | None:
    """The Media Services file id in a content redirect's Location (`…/file/{id}/binary?…`)."""
    found = _MEDIA_PATH.search(urlsplit(location).path)
    return found.group(1) if found else None


def _read_capped(response: requests.Response, max_bytes: int) -> bytes | None:
    """The body, or None as soon as it proves larger than `max_bytes`."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    data = bytearray()
    for chunk in response.iter_content(_CHUNK):
        data += chunk
        if len(data) > max_bytes:
            return None
    return bytes(data)


def _read_error_body(response: requests.Response) -> None:
    """Read at most `_ERROR_BODY_LIMIT` bytes of an error answer, as the response's content.

    The error mapping reads the body (Jira's JSON error messages); a streamed response would
    otherwise read all of it, however large a broken proxy's answer is.
    """
    body = bytearray()
    try:
        for chunk in response.iter_content(_CHUNK):
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    finally:
        response.close()
    # requests' documented-by-use way to give a response the content it holds.
    response._content = bytes(body[:_ERROR_BODY_LIMIT])
