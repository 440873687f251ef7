"""The AI hands a conversation over to people: the `hand_over` tool the model may call, and what
follows when it does.

The customer gets the service's `hand_over_message` (posted as the turn's `[AI]` reply, whose
property says `"handover": true` with the model's reason). Then, each step idempotent so a retried
turn finishes what a crash interrupted:
1. an internal note with the reason (`ref` `handover:{turn}`), so agents know why;
2. the label (`hand_over_label`), so a JQL filter lists the tickets waiting for a person;
3. the reply recorded as a hand-over among the handled comments: the AI stays silent on the
   ticket for `handoff_seconds`, exactly as after an agent's public reply. The poller reads the
   same comment as a hand-over too, so the pause holds whichever of the two records it first.

The reason is the model's words, so the customer's words in the end: it only ever reaches an
internal note (a plain text node, never markup) and is clipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.ai.client import AiReply
from bot.ai.tools import Tool
from bot.config import ServiceSettings
from bot.jira_api.directory import handled_ref
from bot.jira_api.errors import JiraRejected
from bot.logs import get_logger
from bot.ports import HandledCommentsPort, JiraPort
from jobs.notes import Notes
from storage.ai_turns import AiTurn
from storage.polling import ROUTE_HANDOVER

log = get_logger(__name__)

HAND_OVER_TOOL = Tool(
    name="hand_over",
    description=(
        "Hand this conversation to a human member of the support team. Call it when the "
        "reference material and the conversation do not let you help with the request, or "
        "when the customer asks to talk to a person. The customer is told a person will reply."
    ),
    parameters={
        "type": "object",
        "properties": {
            "reason": {
                "type": "string",
                "description": "Why a person is needed, in one short sentence for the support team.",
            }
        },
        "required": ["reason"],
        "additionalProperties": False,
    },
)
_REASON_CHARS = 300
NO_REASON = "the assistant gave no reason"


def hand_over_reason(reply: AiReply) -> str | None:
    """The reason, one line and clipped, when the model called `hand_over`; None otherwise."""
    for call in reply.tool_calls:
        if call.name == HAND_OVER_TOOL.name:
            reason = call.arguments.get("reason")
            text = " ".join(reason.split()) if isinstance(reason, str) else ""
            return text[:_REASON_CHARS] or NO_REASON
    return None


@dataclass
class HandOver:
    jira: JiraPort
    notes: Notes
    handled: HandledCommentsPort
    clock: Callable[[], float] = time.time

    def finish(self, turn: AiTurn, service: ServiceSettings, comment_id: str, reason: str) -> None:
        """Steps 1–3 for the hand-over reply `comment_id`; safe to run again.

        Raises:
            JiraError: the note could not be posted now (the turn is retried; Jira refusing
                only the label is logged and skipped).
        """
        a = service.assistant
        minutes = round(a.handoff_seconds / 60)
        self.notes.ensure(
            turn.issue_key,
            ref=f"handover:{turn.id}",
            text=f"The AI assistant handed this conversation to the team: {reason or NO_REASON}. "
            f"The customer was told a person will reply; the assistant stays silent on this "
            f"ticket for {minutes} minutes, and after every reply of yours.",
        )
        if a.hand_over_label:
            try:
                self.jira.add_labels(turn.issue_key, [a.hand_over_label])
            except JiraRejected as exc:
                # The label field may be off the project's edit screen: the note still says it all.
                log.warning("hand_over_label_rejected", issue_key=turn.issue_key, error=str(exc))
        self.handled.record(
            comment_id=handled_ref(self.jira, turn.issue_key, comment_id),  # as the poll stores it
            issue_key=turn.issue_key,
            route=ROUTE_HANDOVER,
            comment_created=self.clock(),
            author_kind="ai",
        )
        log.info("ai_handed_over", turn=turn.id, issue_key=turn.issue_key)
