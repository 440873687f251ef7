"""Internal notes: what agents must know that the customer must not see.

Posted as a Jira comment marked internal (JSM `sd.public.comment`) with our property
`{"kind": "note", "ref": …}`; the poller never forwards a note. `ref` names the event, so
a retry finds the note it already made instead of writing it twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.jira_api.errors import JiraError
from bot.logs import get_logger
from bot.ports import JiraPort
from bot.rules.comment_property import note_value

log = get_logger(__name__)


@dataclass
class Notes:
    jira: JiraPort

    def ensure(self, issue_key: str, *, ref: str, text: str) -> str:
        """Post the note once and return its comment id; Jira's errors propagate, for callers
        that must try again later rather than lose the note (an answer to an agent's command).

        Raises:
            JiraError: Jira did not take it now.
        """
        existing = self.jira.find_comment_with_property(issue_key, note_value(ref))
        if existing is not None:
            return existing
        return self.jira.add_comment(issue_key, f"[wajira] {text}", prop=note_value(ref), internal=True)

    def post(self, issue_key: str, *, ref: str, text: str) -> str | None:
        """Post the note once; returns its comment id, or None when Jira could not take it now."""
        try:
            return self.ensure(issue_key, ref=ref, text=text)
        except JiraError as exc:
            # The event stays in the logs and in `wajira status`; a note is not worth a retry loop.
            log.error("note_failed", issue_key=issue_key, ref=ref, error=str(exc))
            return None
