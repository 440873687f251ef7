"""The outbox job: queued replies → WhatsApp, each at most once, in order per conversation.

Claimed rows are `sending` until the Graph API answers. A row still `sending` after a crash
is never sent again (we cannot know whether Meta took it): it becomes `unknown` and the
ticket gets an internal note. Outside the customer's 24-hour window only an approved
template may go; without one configured, the reply stays in Jira with a note saying so.
Delivery statuses from the webhook are applied here too, never backwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.config import Settings
from bot.jira_api.directory import jira_for_issue
from bot.jira_api.errors import JiraError, JiraUnavailable
from bot.logs import get_logger
from bot.ports import CustomerWindowPort, GraphPort, JiraPort, OutboundQueuePort, StatusFeedPort
from bot.rules.backoff import honour_retry_after, retry_delay
from bot.rules.comment_property import auto_value
from bot.rules.delivery_failure import explain_meta_error, failure_note
from bot.rules.notices import auto_comment
from bot.rules.outgoing_files import MB
from bot.rules.phones import mask_phone
from bot.rules.window import LastCustomerMessage, window_open
from bot.whatsapp.graph import (
    GraphError,
    GraphRateLimited,
    GraphRejected,
    GraphUnavailable,
    Recipient,
    WindowClosed,
)
from jobs.agent_commands import command_note_ref
from jobs.notes import Notes
from jobs.notices import KIND_AUTO, KIND_CSAT
from storage.outbound import OutboundMessage

log = get_logger(__name__)

# Statuses of messages this daemon did not send (another tool on the same number) are let go
# after this long; ours match within milliseconds.
UNMATCHED_STATUS_PATIENCE = 600.0
# WhatsApp's largest medium (a document); a bigger attachment was refused when it was queued.
FILE_MAX_BYTES = 100 * MB


@dataclass
class OutboxJob:
    settings: Settings
    graph: GraphPort
    jira: JiraPort
    """Where an agent's files are read from."""
    outbound: OutboundQueuePort
    statuses: StatusFeedPort
    inbound: CustomerWindowPort
    notes: Notes
    owner: str
    clock: Callable[[], float] = time.time
    _rate_streak: int = field(default=0, init=False)

    def run(self) -> int:
        for row in self.outbound.recover_stale():
            self.notes.post(
                row.issue_key,
                ref=f"unknown:{row.id}",
                text="wajira stopped while sending this reply to WhatsApp; it may or may not have "
                f"reached the customer and will not be sent again:\n{row.body}",
            )
        sent = 0
        for _ in range(50):  # bounded
            rows = self.outbound.claim_due(self.owner, limit=20, lease_seconds=60)
            if not rows:
                break
            for row in rows:
                sent += self._send(row)
        self.apply_statuses()
        return sent

    def _send(self, row: OutboundMessage) -> int:
        to = Recipient(wa_id=row.to_wa_id, user_id=row.to_user_id)
        last = self.inbound.last_customer_message(row.conversation_key)
        if row.kind == "template":
            return self._agent_template(row, to, last)
        is_open = window_open(last.timestamp if last else None, self.clock())
        if row.kind == KIND_CSAT and not is_open:
            return self._survey_not_sent(row)
        if row.kind in (KIND_AUTO, KIND_CSAT):
            self._record_auto(row)
        if not is_open:
            return self._window_closed(row, to, last)
        try:
            wamid = self._deliver(row, to)
        except JiraUnavailable as exc:
            return self._unavailable(row, exc)
        except JiraError as exc:
            self.outbound.mark_failed(row.id, error=str(exc), code=None)
            self._note(row, f"the file could not be read from Jira any more ({exc})")
            return 0
        except WindowClosed:
            return self._window_closed(row, to, last)
        except GraphRateLimited as exc:
            self._rate_limited(row, exc)
            return 0
        except GraphUnavailable as exc:
            return self._unavailable(row, exc)
        except GraphRejected as exc:
            self._rejected(row, exc)
            return 0
        self.outbound.mark_sent(row.id, wamid=wamid)
        self._rate_streak = 0
        log.info(
            "whatsapp_sent",
            row=row.id,
            kind=row.kind,
            issue_key=row.issue_key,
            to=mask_phone(row.conversation_key),
        )
        return 1

    def _deliver(self, row: OutboundMessage, to: Recipient) -> str:
        """Send the row's text or survey, or read its file from Jira, upload it and send it; the wamid."""
        if row.kind == KIND_CSAT:
            survey = row.payload or {}
            return self.graph.send_list(
                row.phone_number_id,
                to,
                body=row.body,
                button=str(survey.get("button") or ""),
                rows=list(survey.get("rows") or []),
            )
        if row.kind != "file":
            return self.graph.send_text(row.phone_number_id, to, row.body)
        p = row.payload or {}
        jira = jira_for_issue(self.jira, row.issue_key)  # an attachment id is its site's own
        data = jira.attachment_content(str(p.get("attachment_id")), max_bytes=FILE_MAX_BYTES)
        filename = str(p.get("filename") or row.body or "file")
        media_type = str(p.get("media_type") or "document")
        media_id = self.graph.upload_media(
            row.phone_number_id,
            data,
            mime_type=str(p.get("mime_type") or "application/octet-stream"),
            filename=filename,
        )
        return self.graph.send_media(
            row.phone_number_id,
            to,
            media_type=media_type,
            media_id=media_id,
            filename=filename if media_type == "document" else None,
        )

    def _agent_template(self, row: OutboundMessage, to: Recipient, last: LastCustomerMessage | None) -> int:
        """An agent's `/template NAME`: sent now, whatever the window; answered by a note."""
        wa = self.settings.whatsapp
        p = row.payload or {}
        ref = command_note_ref(str(p.get("comment") or row.id))
        language = str(p.get("language") or wa.template_language)
        try:
            wamid = self._send_template(row, to, last, name=row.body, language=language)
        except GraphRateLimited as exc:
            self._rate_limited(row, exc)
            return 0
        except GraphUnavailable as exc:
            return self._unavailable(row, exc)
        except GraphRejected as exc:
            self.outbound.mark_failed(row.id, error=str(exc), code=exc.code)
            log.error("whatsapp_template_rejected", row=row.id, code=exc.code, error=str(exc))
            self.notes.post(
                row.issue_key,
                ref=ref,
                text=f"The template '{row.body}' was not sent: {explain_meta_error(exc.code, exc.title or str(exc))}.",
            )
            return 0
        self.outbound.mark_sent(row.id, wamid=wamid, via_template=True)
        self.notes.post(
            row.issue_key,
            ref=ref,
            text=f"The template '{row.body}' ({language}) was sent to "
            "the customer. Their answer reopens the 24-hour window for free-form replies.",
        )
        log.info("whatsapp_template_sent", row=row.id, issue_key=row.issue_key, by="command")
        return 1

    def _send_template(
        self,
        row: OutboundMessage,
        to: Recipient,
        last: LastCustomerMessage | None,
        *,
        name: str,
        language: str,
    ) -> str:
        """Send an approved template with `[whatsapp] template_parameters` filled in; its wamid."""
        values = {"name": (last.profile_name if last else None) or "", "issue_key": row.issue_key}
        return self.graph.send_template(
            row.phone_number_id,
            to,
            name=name,
            language=language,
            body_parameters=[param.format(**values) for param in self.settings.whatsapp.template_parameters],
        )

    def _record_auto(self, row: OutboundMessage) -> None:
        """Show the notice on the ticket as `[Auto] {text}` (once: found again by its ref).

        Before sending, so agents see it in order with the conversation. A Jira that cannot take
        it now does not hold the notice back: the customer comes first, the log keeps the miss.
        """
        mark = auto_value(row.dedupe_key)
        try:
            if self.jira.find_comment_with_property(row.issue_key, mark) is None:
                self.jira.add_comment(row.issue_key, auto_comment(row.body), prop=mark)
        except JiraError as exc:
            log.warning("auto_comment_failed", row=row.id, issue_key=row.issue_key, error=str(exc))

    def _survey_not_sent(self, row: OutboundMessage) -> int:
        # A list is a free-form message: outside the window only a template could go, and a
        # template cannot carry the survey.
        reason = "24-hour window closed; a survey is not a template"
        self.outbound.mark_held(row.id, reason=reason)
        self.notes.post(
            row.issue_key,
            ref=f"held:{row.id}",
            text="The satisfaction survey was not sent: the customer's 24-hour window has closed "
            "and WhatsApp then accepts only approved templates.",
        )
        log.info("csat_not_sent", row=row.id, issue_key=row.issue_key, reason="window_closed")
        return 0

    def _rate_limited(self, row: OutboundMessage, exc: GraphRateLimited) -> None:
        # Not the row's fault, so no attempt is counted; a streak grows the back-off instead.
        self._rate_streak += 1
        delay = honour_retry_after(
            exc.retry_after, self._backoff(self._rate_streak), cap=self.settings.outbox.retry_max_seconds
        )
        self.outbound.mark_retry(
            row.id, error=str(exc), code=exc.code, delay_seconds=delay, count_attempt=False
        )
        log.warning("whatsapp_rate_limited", row=row.id, code=exc.code, retry_in=round(delay, 1))

    def _window_closed(self, row: OutboundMessage, to: Recipient, last: LastCustomerMessage | None) -> int:
        wa = self.settings.whatsapp
        if wa.template_name and not self.outbound.template_sent_since(
            row.conversation_key, float(last.timestamp if last else 0)
        ):
            try:
                wamid = self._send_template(
                    row, to, last, name=wa.template_name, language=wa.template_language
                )
            except GraphRateLimited as exc:
                self._rate_limited(row, exc)
                return 0
            except GraphUnavailable as exc:
                return self._unavailable(row, exc)
            except GraphRejected as exc:
                self._rejected(row, exc)
                return 0
            self.outbound.mark_sent(row.id, wamid=wamid, via_template=True)
            self.notes.post(
                row.issue_key,
                ref=f"template:{row.id}",
                text=f"The customer's 24-hour window had closed, so the approved template "
                f"'{wa.template_name}' was sent instead of this reply:\n{row.body}",
            )
            log.info("whatsapp_template_sent", row=row.id, issue_key=row.issue_key)
            return 1
        why = (
            "a re-engagement template was already sent and the customer has not answered yet"
            if wa.template_name
            else "no re-engagement template is configured ([whatsapp] template_name)"
        )
        self.outbound.mark_held(row.id, reason=f"24-hour window closed; {why}")
        self.notes.post(
            row.issue_key,
            ref=f"held:{row.id}",
            text=f"Not sent to WhatsApp: the customer's 24-hour window has closed and {why}. "
            f"The reply was:\n{row.body}",
        )
        log.warning("whatsapp_window_closed", row=row.id, issue_key=row.issue_key)
        return 0

    def _unavailable(self, row: OutboundMessage, exc: GraphUnavailable | JiraUnavailable) -> int:
        attempts = row.attempts + 1
        code = exc.code if isinstance(exc, GraphUnavailable) else None
        if attempts >= self.settings.outbox.max_attempts:
            self.outbound.mark_failed(row.id, error=str(exc), code=code)
            if isinstance(exc, GraphUnavailable):
                self._note_failure(row, exc)
            else:
                self._note(row, f"Jira did not hand over the file after {attempts} attempts ({exc})")
            return 0
        self.outbound.mark_retry(
            row.id, error=str(exc), code=code, delay_seconds=self._backoff(attempts), count_attempt=True
        )
        log.warning("whatsapp_unavailable", row=row.id, attempts=attempts, error=str(exc))
        return 0

    def _rejected(self, row: OutboundMessage, exc: GraphRejected) -> None:
        self.outbound.mark_failed(row.id, error=str(exc), code=exc.code)
        log.error("whatsapp_rejected", row=row.id, code=exc.code, error=str(exc))
        self._note_failure(row, exc)

    def _note_failure(self, row: OutboundMessage, exc: GraphError) -> None:
        self._note(row, explain_meta_error(exc.code, exc.title or str(exc)))

    def _note(self, row: OutboundMessage, reason: str) -> None:
        """The agents' note for a row that will not reach the customer: which, and why."""
        self.notes.post(
            row.issue_key,
            ref=f"failed:{row.id}",
            text=failure_note(what=_what(row), reason=reason, text=None if row.kind == "file" else row.body),
        )

    def _backoff(self, attempts: int) -> float:
        o = self.settings.outbox
        return retry_delay(attempts, base=o.retry_base_seconds, cap=o.retry_max_seconds)

    def apply_statuses(self) -> int:
        """Apply stored delivery statuses to our outbound rows; a failure gets a note.

        Meta's `sent` can arrive before our `mark_sent` commits: a status whose wamid we do
        not know yet stays unapplied for a while and is tried again on the next run.
        """
        applied: list[int] = []
        now = self.clock()
        for status in self.statuses.unapplied(limit=500):
            errors = status.get("errors") or []
            first = errors[0] if errors and isinstance(errors[0], dict) else {}
            code = first.get("code") if isinstance(first.get("code"), int) else None
            error = " — ".join(str(first.get(k)) for k in ("title", "message") if first.get(k)) or None
            at = float(status.get("meta_timestamp") or 0)
            row, changed = self.outbound.apply_status(
                status["wamid"], status["status"], at=at, error=error, code=code
            )
            if row is None and now - at < UNMATCHED_STATUS_PATIENCE:
                continue
            applied.append(status["id"])
            if row is not None and changed and row.state == "failed":
                title = str(first.get("title") or first.get("message") or "") or None
                self._note(row, explain_meta_error(code, title))
        self.statuses.mark_applied(applied)
        return len(applied)


def _what(row: OutboundMessage) -> str:
    """The row as an agent knows it: their comment (by id and author), or the AI's reply."""
    p = row.payload or {}
    comment, author = p.get("comment"), p.get("author")
    by = f" by {author}" if author else ""
    if row.kind == "file":
        return f"The file {p.get('filename') or row.body} of comment {comment}{by}"
    if row.kind == "agent" and comment:
        return f"Comment {comment}{by}"
    if row.kind == "ai":
        return "The AI assistant's reply"
    if row.kind == "echo":
        return "The message typed in the WhatsApp Business App"
    if row.kind == KIND_AUTO:
        return "The automatic notice"
    if row.kind == KIND_CSAT:
        return "The satisfaction survey"
    return "This message"
