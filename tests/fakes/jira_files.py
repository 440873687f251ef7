"""FakeJira's side of files agents attach: Media Services ids, downloads, and comments showing files.

Mixed into `FakeJira`, whose `attachments`, `comments` and comment store it uses. Like Jira Cloud,
every attachment has a Media Services id that a comment's ADF `media` node names; Server/DC
(`cloud=False`) has none, and its comments name files in wiki markup.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from bot.jira_api.errors import IssueNotFound, JiraRejected
from sandbox.jira.adf import MediaFile, media_comment, to_text
from sandbox.jira.api_attachments import image_size

JSM_PROPERTY = "sd.public.comment"


class FakeJiraFiles:
    if TYPE_CHECKING:
        # Provided by `FakeJira` (and `Scripted`); declared for mypy only, so no stub here can
        # answer in their place at run time.
        cloud: bool
        issues: dict[str, dict[str, Any]]
        comments: dict[str, list[dict[str, Any]]]
        attachments: dict[str, list[dict[str, Any]]]
        _ids: Iterator[int]
        _lock: threading.Lock

        def _enter(self, operation: str) -> None: ...

        def _store_comment(
            self,
            issue_key: str,
            text: str,
            *,
            prop: dict[str, Any] | None,
            author: tuple[str, str],
            extra_props: dict[str, Any],
            jsd_public: bool,
            visibility: dict[str, Any] | None = None,
            at: float | None = None,
        ) -> str: ...

    # -- the adapter's operations --------------------------------------------------------------

    def attachment_media_id(self, attachment_id: str) -> str | None:
        self._enter("attachment_media_id")
        found = self._attachment(attachment_id)
        return media_id_of(found) if self.cloud else None

    def attachment_content(self, attachment_id: str, *, max_bytes: int) -> bytes:
        self._enter("attachment_content")
        data = bytes(self._attachment(attachment_id)["data"])
        if len(data) > max_bytes:
            raise JiraRejected(f"attachment {attachment_id} is larger than {max_bytes} bytes")
        return data

    # -- what an agent does in Jira ------------------------------------------------------------

    def add_agent_comment_with_files(
        self,
        issue_key: str,
        text: str,
        files: Sequence[tuple[str, str, bytes]],
        *,
        internal: bool = False,
        author: str = "Bruno Díaz",
        account_id: str = "agent-1",
    ) -> str:
        """Attach `files` ((filename, mime type, bytes)) and post one comment showing them, as an
        agent does in Jira's UI; returns the comment's id. On Cloud its body is the text, then a
        `mediaSingle` or `mediaGroup` naming each file's media id; on Server/DC, wiki markup."""
        if issue_key not in self.issues:
            raise IssueNotFound(f"Jira 404: issue {issue_key} does not exist", status=404)
        ids = [self.add_agent_attachment(issue_key, name, mime, data) for name, mime, data in files]
        stored = [self._attachment(i) for i in ids]
        shown = [MediaFile(media_id_of(a), a["filename"], *image_size(a["data"])) for a in stored]
        doc = media_comment(text, shown, collection=f"jira-{self.issues[issue_key]['id']}-comment")
        with self._lock:
            comment_id = self._store_comment(
                issue_key,
                text if self.cloud else to_text(doc),
                prop=None,
                author=(account_id, author),
                extra_props={JSM_PROPERTY: {"internal": True}} if internal else {},
                jsd_public=not internal,
            )
            if self.cloud:
                self._comment(issue_key, comment_id)["body"] = doc
        return comment_id

    def add_agent_attachment(self, issue_key: str, filename: str, mime_type: str, data: bytes) -> str:
        """A file attached in Jira's UI, with or without a comment; returns the attachment's id."""
        if issue_key not in self.issues:
            raise IssueNotFound(f"Jira 404: issue {issue_key} does not exist", status=404)
        return self._store_attachment(issue_key, filename, data, mime_type)

    # -- helpers -------------------------------------------------------------------------------

    def _store_attachment(self, issue_key: str, filename: str, data: bytes, mime_type: str) -> str:
        attachment_id = str(next(self._ids))
        self.attachments.setdefault(issue_key, []).append(
            {
                "id": attachment_id,
                "filename": filename,
                "data": bytes(data),
                "mimeType": mime_type,
                "size": len(data),
                "media_id": str(uuid.uuid4()),
            }
        )
        return attachment_id

    def _attachment(self, attachment_id: str) -> dict[str, Any]:
        for files in self.attachments.values():
            for found in files:
                if found["id"] == str(attachment_id):
                    return found
        raise JiraRejected(f"Jira 404: The attachment with id '{attachment_id}' does not exist.", status=404)

    def _comment(self, issue_key: str, comment_id: str) -> dict[str, Any]:
        return next(c for c in self.comments[issue_key] if c["id"] == comment_id)


def media_id_of(attachment: dict[str, Any]) -> str:
    """The attachment's Media Services id (Jira Cloud gives one to every file; tests that put
    attachments in by hand may leave it out, and get one on first use)."""
    return str(attachment.setdefault("media_id", str(uuid.uuid4())))


def show_stored_bodies(rendered: list[dict[str, Any]], stored: list[dict[str, Any]]) -> None:
    """Comments written with a body of their own (files) show it, not one made from their text."""
    bodies = {c["id"]: c["body"] for c in stored if c.get("body") is not None}
    for comment in rendered:
        if comment["id"] in bodies:
            comment["body"] = copy.deepcopy(bodies[comment["id"]])
