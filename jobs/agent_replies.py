"""An agent's public comment → the outbound rows that carry it to the customer: its text, then
each file it shows, as WhatsApp media of the right type.

Jira Cloud names a file in a comment by its Media Services id (an ADF `media` node), not by the
attachment id; the attachment's content URL redirects to `…/file/{media id}/binary`, which is
how the two are matched (`JiraPort.attachment_media_id`, cached: an attachment's file never
changes). Server/DC comments name attachments by filename (`!name!`, `[^name]`). A file WhatsApp
would refuse (type, size) or that is no longer on the ticket is named in an internal note instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.jira_api.errors import JiraRejected
from bot.ports import JiraPort
from bot.rules.agent_files import match_files, needs_media_ids
from bot.rules.classify import CommentView
from bot.rules.markdown import markdown_to_whatsapp
from bot.rules.outgoing import agent_message, split_message
from bot.rules.outgoing_files import FileRefused, plan_file

# Attachment id → Media Services id (None: Jira served the content without a redirect). Bounded
# so a long-running daemon does not grow with every file ever sent; a miss costs one request.
_MEDIA_ID_CACHE_SIZE = 5000


def recipient_fields(settings: Settings, ours: dict[str, Any]) -> dict[str, Any]:
    """The outbound row's addressing, from the ticket's `wajira` issue property."""
    return {
        "conversation_key": ours["conversation"],
        "to_wa_id": ours.get("wa_id"),
        "to_user_id": ours.get("user_id"),
        "phone_number_id": ours.get("phone_number_id") or settings.whatsapp.phone_number_id,
    }


@dataclass(frozen=True)
class AgentReply:
    rows: list[dict[str, Any]]
    """Outbound rows in sending order: the text's parts, then one row per file."""
    refused: list[str]
    """One line per file that will not be sent: its name and why."""


@dataclass
class AgentReplies:
    settings: Settings
    jira: JiraPort
    _media_ids: dict[str, str | None] = field(default_factory=dict, init=False)

    def reply(self, view: CommentView, ours: dict[str, Any]) -> AgentReply:
        """What the customer gets for this comment. Reads the issue's attachments only when the
        comment shows files.

        Raises:
            JiraError: Jira could not list the attachments now (the poll pass tries again).
        """
        to = recipient_fields(self.settings, ours)
        rows: list[dict[str, Any]] = []
        if view.text.strip():
            text = agent_message(
                view.author_name, markdown_to_whatsapp(view.text), self.settings.outbox.agent_format
            )
            rows.extend(
                {
                    "dedupe_key": f"comment:{view.id}:{n}",
                    "issue_key": view.issue_key,
                    **to,
                    "kind": "agent",
                    "body": part,
                    "payload": {"comment": view.id, "author": view.author_name},
                }
                for n, part in enumerate(split_message(text))
            )
        refused: list[str] = []
        if view.files:
            file_rows, refused = self._files(view, to)
            rows.extend(file_rows)
        return AgentReply(rows, refused)

    def _files(self, view: CommentView, to: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
        refs = list(view.files)
        try:
            attachments = self.jira.list_attachments(view.issue_key)
            media_ids = self._resolve(attachments) if needs_media_ids(refs) else {}
        except JiraRejected as exc:
            # Permanent (no permission to read attachments, the issue gone): the text still goes,
            # the files are named in the note, and the pass is not held on this comment forever.
            names = ", ".join(ref.name or ref.media_id or "a file" for ref in refs)
            return [], [f"{names}: Jira refused to hand over the ticket's attachments ({exc})"]
        matched = match_files(refs, attachments, media_ids)
        rows: list[dict[str, Any]] = []
        refused: list[str] = []
        for attachment in matched.attachments:
            attachment_id = str(attachment.get("id"))
            filename = str(attachment.get("filename") or "file")
            size = attachment.get("size")
            plan = plan_file(
                filename=filename,
                mime_type=attachment.get("mimeType") if isinstance(attachment.get("mimeType"), str) else None,
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            )
            if isinstance(plan, FileRefused):
                refused.append(f"{filename}: {plan.reason}")
                continue
            rows.append(
                {
                    "dedupe_key": f"file:{view.id}:{attachment_id}",
                    "issue_key": view.issue_key,
                    **to,
                    "kind": "file",
                    "body": filename,
                    "payload": {
                        "comment": view.id,
                        "author": view.author_name,
                        "attachment_id": attachment_id,
                        "filename": filename,
                        "mime_type": plan.mime_type,
                        "media_type": plan.media_type,
                        "size": size if isinstance(size, int) else None,
                    },
                }
            )
        for ref in matched.unmatched:
            refused.append(
                f"{ref.name or ref.media_id or 'a file'}: it is not among the ticket's attachments"
            )
        return rows, refused

    def _resolve(self, attachments: list[dict[str, Any]]) -> dict[str, str]:
        """Media Services ids of the issue's attachments, one request per attachment never seen."""
        found: dict[str, str] = {}
        for attachment in attachments:
            attachment_id = str(attachment.get("id") or "")
            if not attachment_id:
                continue
            if attachment_id not in self._media_ids:
                if len(self._media_ids) >= _MEDIA_ID_CACHE_SIZE:
                    self._media_ids.clear()
                self._media_ids[attachment_id] = self.jira.attachment_media_id(attachment_id)
            media_id = self._media_ids[attachment_id]
            if media_id:
                found[attachment_id] = media_id
        return found


def refused_note(view: CommentView, refused: list[str]) -> str:
    """The internal note naming the files of a comment that will not reach the customer."""
    lines = "\n".join(f"- {line}" for line in refused)
    return (
        f"Not sent to the customer on WhatsApp: these files of comment {view.id} by "
        f"{view.author_name or 'an agent'}:\n{lines}"
    )
