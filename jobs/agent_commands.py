"""Agents' commands, typed as a Jira comment whose first line starts with `/`.

`/ai off` and `/ai on` switch the AI assistant for one ticket (stored, so it holds across
restarts and instances; an older command read again never overrides a newer one). `/template
NAME` queues the approved template for the outbox, which answers with a note once Meta has
taken or refused it. `/window` says whether the customer's 24-hour window is open. Anything
else gets the list of commands. Every answer is an internal note; nothing reaches WhatsApp but
the template.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.config import ServiceSettings, Settings
from bot.ports import AiSwitchPort, CustomerWindowPort
from bot.rules.classify import CommentView, Route, route_comment
from bot.rules.commands import AI_OFF, AI_ON, TEMPLATE, WINDOW, help_note, parse_command, window_note
from jobs.agent_replies import recipient_fields

# A customer message older than this is not waiting for the AI any more (as in the poll job).
WAITING_CUSTOMER_SECONDS = 3600


def command_note_ref(comment_id: str) -> str:
    """The note answering a command: one per command comment, whoever posts it."""
    return f"command:{comment_id}"


@dataclass(frozen=True)
class CommandOutcome:
    note: str | None
    """The internal note to post now; None when the outbox answers later (`/template`)."""
    outbound: list[dict[str, Any]] = field(default_factory=list)
    ai_turn: dict[str, Any] | None = None
    """`/ai on` with a customer message still unanswered: its AI turn."""


@dataclass
class AgentCommands:
    settings: Settings
    switch: AiSwitchPort
    window: CustomerWindowPort
    clock: Callable[[], float]

    def outcome(
        self,
        view: CommentView,
        ours: dict[str, Any],
        service: ServiceSettings,
        *,
        earlier: Sequence[CommentView],
        bot_account_id: str | None,
        bot_zone: str | None,
        dry_run: bool = False,
    ) -> CommandOutcome:
        """Carry out the command (unless `dry_run`) and say what answers it."""
        command = parse_command(view.text)
        if command is None:  # route_comment said command; the text disagrees: list the commands
            return CommandOutcome(help_note())
        if command.name in (AI_OFF, AI_ON):
            return self._switch(view, ours, service, command.name == AI_ON, earlier, bot_account_id, dry_run)
        if command.name == TEMPLATE:
            return self._template(view, ours, command.argument)
        if command.name == WINDOW:
            last = self.window.last_customer_message(ours["conversation"])
            zone = view.author_zone or bot_zone
            return CommandOutcome(window_note(last.timestamp if last else None, self.clock(), zone))
        return CommandOutcome(help_note(command.problem))

    def _switch(
        self,
        view: CommentView,
        ours: dict[str, Any],
        service: ServiceSettings,
        enabled: bool,
        earlier: Sequence[CommentView],
        bot_account_id: str | None,
        dry_run: bool,
    ) -> CommandOutcome:
        decided = dry_run or self.switch.set_enabled(
            view.issue_key, enabled=enabled, comment_id=view.id, comment_created=view.created
        )
        if not decided:
            return CommandOutcome(
                "Nothing changed: a newer /ai command on this ticket already decided whether the AI answers."
            )
        if not service.assistant.enabled:
            state = "on" if enabled else "off"
            return CommandOutcome(
                f"The AI assistant is now {state} for this ticket, but service '{service.id}' has no "
                "assistant configured ([services.assistant] enabled), so nobody but agents answers."
            )
        if not enabled:
            return CommandOutcome(
                "The AI assistant is off on this ticket: it will not answer the customer until "
                "someone comments /ai on."
            )
        waiting = _waiting_customer(earlier, bot_account_id)
        now = self.clock()
        if waiting is None or now - waiting.created >= WAITING_CUSTOMER_SECONDS:
            return CommandOutcome(
                "The AI assistant is on again on this ticket; it answers the customer's next message."
            )
        # The turn is the command's own (its trigger is the `/ai on` comment): the waiting
        # message may already have had a turn, dropped while the AI was off, and a trigger
        # answers once. The context is the whole public conversation either way.
        turn = {
            "issue_key": view.issue_key,
            "service_id": service.id,
            "conversation_key": ours["conversation"],
            "due_at": now,
        }
        return CommandOutcome(
            "The AI assistant is on again on this ticket and now answers the customer's waiting message.",
            ai_turn=turn,
        )

    def _template(self, view: CommentView, ours: dict[str, Any], name: str) -> CommandOutcome:
        wa = self.settings.whatsapp
        row = {
            "dedupe_key": f"template:{view.id}",
            "issue_key": view.issue_key,
            **recipient_fields(self.settings, ours),
            "kind": "template",
            "body": name,
            "payload": {
                "comment": view.id,
                "author": view.author_name,
                "template": name,
                "language": wa.template_language,
            },
        }
        return CommandOutcome(None, outbound=[row])


def _waiting_customer(earlier: Sequence[CommentView], bot_account_id: str | None) -> CommentView | None:
    """The customer's message, if it is the last word of the public conversation before now."""
    for view in reversed(earlier):
        route = route_comment(view, bot_account_id=bot_account_id)
        if route is Route.AI_TURN:
            return view
        if route in (Route.TO_CUSTOMER, Route.ECHO) or view.kind == "ai":
            return None
    return None
