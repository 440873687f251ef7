"""The ticket lifecycle's eyes: what the poll job reads about each issue's status.

Asking Jira for an issue's status on every inbound message would double the Jira calls of
the commonest case (a message to an open ticket). The poll job reads every managed issue
that changed anyway, so `IssueStateRecorder` (one of `PollJob.on_issue_seen`) keeps what it
saw in `issue_state`, and `TicketOpener` consults that table. Its knowledge is at most one
poll interval old: a message in the seconds after an agent closes the ticket still lands on
it as a comment. Acting on a "done" (a new ticket, a reopen) is checked against Jira first,
so a stale "done" never opens a ticket nobody asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.ports import IssueStatesPort


def status_of(fields: dict[str, Any]) -> tuple[str, str] | None:
    """(status category key, status name) from an issue's `fields` (or a transition's `to`
    wrapped as {"status": to}); None when Jira did not include the status."""
    status = fields.get("status")
    if not isinstance(status, dict):
        return None
    category = (status.get("statusCategory") or {}).get("key")
    if not isinstance(category, str) or not category:
        return None
    return category, str(status.get("name") or "")


def find_transition(transitions: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The available transition called `name` (case and surrounding spaces ignored)."""
    wanted = name.strip().casefold()
    for transition in transitions:
        if transition.get("isAvailable") is False:
            continue
        if str(transition.get("name") or "").strip().casefold() == wanted:
            return transition
    return None


@dataclass
class IssueStateRecorder:
    """`PollJob.on_issue_seen` listener: upserts each seen issue's status into `issue_state`."""

    states: IssueStatesPort

    def __call__(self, issue_key: str, fields: dict[str, Any], ours: dict[str, Any]) -> None:
        seen = status_of(fields)
        if seen is not None:
            self.states.record(issue_key, *seen)
