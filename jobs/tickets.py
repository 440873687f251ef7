"""Which Jira ticket a conversation's message goes to, creating it on first contact exactly once.

A create can fail after Jira made the issue (timeout, crash before our commit). Before creating
we note the attempt in storage; a later attempt first looks in Jira for an issue carrying our
`wajira` property for this conversation, and only creates when there is none. Search can lag
behind writes, so a fresh uncertain attempt waits `search_grace_seconds` before creating anew.

Closed tickets (the service's `on_closed`): when `issue_state` (kept from the poll job's
reads, see `jobs.lifecycle`) says the mapped ticket is done, and Jira confirms it, a message
either opens a new ticket linked to the old one ("new": the old one goes to ticket_history
and the mapping is repointed, in one transaction), moves the old one back with the
`reopen_transition` ("reopen"), or simply lands on it ("reuse"). The new ticket carries the
old key in its `wajira` property (`previous`), so a crashed replacement is found again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.config import ServiceSettings
from bot.flows.mapping import TicketFields, description_table, ticket_fields_for
from bot.jira_api.errors import IssueNotFound, JiraRejected, RateLimited
from bot.logs import get_logger
from bot.ports import IssueStatesPort, JiraPort, MappingsPort, TicketHistoryPort
from bot.rules.comment_property import conversation_match, ticket_properties
from bot.rules.phones import display_phone, mask_phone
from bot.rules.render import ticket_description, ticket_summary
from jobs.lifecycle import find_transition, status_of
from storage.inbound import QueuedMessage
from storage.issue_states import DONE
from storage.mappings import MappingExists, TicketMapping
from storage.transactions import transact

log = get_logger(__name__)


class CreationPending(Exception):
    """An earlier create may have succeeded but search does not show it yet: wait, then look again."""

    def __init__(self, wait_seconds: float) -> None:
        super().__init__(f"earlier ticket creation still settling; retry in {wait_seconds:.0f}s")
        self.wait_seconds = wait_seconds


@dataclass
class TicketOpener:
    jira: JiraPort
    mappings: MappingsPort
    clock: Callable[[], float] = time.time
    search_grace_seconds: float = 20.0
    created_ids: dict[str, str] = field(default_factory=dict)
    """Issue ids of tickets this process created (key → id), so search can reconcile them."""
    states: IssueStatesPort | None = None
    """Issue statuses the poll job saw; without it closed tickets are not told apart."""
    history: TicketHistoryPort | None = None
    """Where a conversation's replaced tickets are kept."""
    fields_for: Callable[[QueuedMessage, ServiceSettings], TicketFields | None] = lambda row, service: (
        ticket_fields_for(row.raw, service)
    )
    """What the message that opens a ticket adds to it: a completed flow's mapped fields."""

    def ticket_for(self, row: QueuedMessage, service: ServiceSettings, first_text: str) -> str:
        """The issue key for the row's conversation, creating the ticket if there is none
        and applying the service's `on_closed` when the ticket is done.

        Raises:
            CreationPending: an earlier creation may still show up in search.
            JiraUnavailable, RateLimited, JiraRejected: from Jira, as the inbox expects.
        """
        mapping = self.mappings.get(row.conversation_key)
        if mapping is None:
            return self._open(row, service, first_text)
        if service.on_closed == "reuse" or not self._closed(mapping.issue_key):
            return mapping.issue_key
        if service.on_closed == "reopen" and self._reopen(mapping.issue_key, service):
            return mapping.issue_key
        return self._replace_closed(row, service, first_text, mapping)

    def replace_missing(self, row: QueuedMessage, service: ServiceSettings, first_text: str) -> str:
        """The mapped issue is gone (deleted in Jira): open a new one and point the mapping at it."""
        issue_key = self._create(row, service, first_text)
        self._repoint(row, self.mappings.get(row.conversation_key), issue_key)
        return issue_key

    def _open(self, row: QueuedMessage, service: ServiceSettings, first_text: str) -> str:
        found = self._recover(row, service, conversation_match(row.conversation_key))
        return self._remember(row, service, found or self._create(row, service, first_text))

    def _recover(self, row: QueuedMessage, service: ServiceSettings, match: dict[str, Any]) -> str | None:
        """The issue an earlier, uncertain creation made, if search shows it."""
        key = row.conversation_key
        started = self.mappings.creation_started_at(key)
        if started is None:
            return None
        found = self.jira.find_issue_with_property(
            project_key=service.project_key,
            created_since_epoch=started - 300,
            match=match,
        )
        if found is not None:
            log.info("ticket_recovered", issue_key=found.key, conversation=mask_phone(key))
            return found.key
        age = self.clock() - started
        if age < self.search_grace_seconds:
            raise CreationPending(self.search_grace_seconds - age)
        return None

    # -- closed tickets ------------------------------------------------------------------------

    def _closed(self, issue_key: str) -> bool:
        """Whether the ticket is done. Decided by the poll job's last read (no Jira call for an
        open ticket); a "done" from it is confirmed with Jira before anything is changed, since
        an agent may have reopened the ticket within the last poll interval."""
        states = self.states
        state = states.get(issue_key) if states is not None else None
        if states is None or state is None or not state.done:
            return False
        try:
            issue = self.jira.get_issue(issue_key, fields=["status"])
        except IssueNotFound:
            return False  # posting the comment finds it gone and `replace_missing` takes over
        seen = status_of(issue.get("fields") or {})
        if seen is None:
            return False
        states.record(issue_key, *seen)
        return seen[0] == DONE

    def _reopen(self, issue_key: str, service: ServiceSettings) -> bool:
        """Apply the service's `reopen_transition`; False when it cannot be (then a new ticket)."""
        transitions = self.jira.transitions(issue_key)
        chosen = find_transition(transitions, service.reopen_transition)
        if chosen is None:
            log.warning(
                "reopen_transition_missing",
                issue_key=issue_key,
                service=service.id,
                transition=service.reopen_transition,
                available=[str(t.get("name")) for t in transitions],
            )
            return False
        try:
            self.jira.transition(issue_key, str(chosen.get("id")))
        except JiraRejected as exc:  # a screen or validator wants fields we cannot give
            log.warning("reopen_failed", issue_key=issue_key, service=service.id, error=str(exc))
            return False
        seen = status_of({"status": chosen.get("to")})
        if seen is not None and self.states is not None:
            self.states.record(issue_key, *seen)
        log.info("ticket_reopened", issue_key=issue_key, service=service.id, transition=chosen.get("name"))
        return True

    def _replace_closed(
        self, row: QueuedMessage, service: ServiceSettings, first_text: str, mapping: TicketMapping
    ) -> str:
        """A new ticket for the conversation, linked to its closed one, which becomes history."""
        old_key = mapping.issue_key
        match = conversation_match(row.conversation_key, previous=old_key)
        new_key = self._recover(row, service, match) or self._create(
            row, service, first_text, previous=old_key
        )
        try:
            # A retry after a crash links again; Jira keeps one link per pair and type.
            self.jira.link_issues(old_key, new_key, "Relates")
        except JiraRejected as exc:  # linking disabled, no "Relates" type: the property says it
            log.warning("ticket_link_failed", issue_key=new_key, previous=old_key, error=str(exc))
        self._repoint(row, mapping, new_key)
        log.info(
            "ticket_replaced",
            issue_key=new_key,
            previous=old_key,
            service=service.id,
            conversation=mask_phone(row.conversation_key),
        )
        return new_key

    def _repoint(self, row: QueuedMessage, mapping: TicketMapping | None, issue_key: str) -> None:
        """Point the conversation at `issue_key`, keeping the old ticket in the history and
        ending the creation note, all in one transaction."""
        key = row.conversation_key

        def work() -> None:
            if mapping is not None and self.history is not None:
                self.history.add(
                    key,
                    mapping.issue_key,
                    mapping.service_id,
                    opened_at=mapping.updated_at.timestamp(),
                    replaced_by=issue_key,
                )
            self.mappings.repoint(key, issue_key)
            self.mappings.clear_creation(key)

        transact(self.mappings.db, work)

    # -- creating --------------------------------------------------------------------------------

    def _create(
        self, row: QueuedMessage, service: ServiceSettings, first_text: str, previous: str | None = None
    ) -> str:
        key = row.conversation_key
        phone = display_phone(key) if key.startswith("+") else (row.user_id or key)
        name = row.profile_name or phone
        summary = ticket_summary(name, phone)
        description = ticket_description(
            name, phone, row.wa_id or "", row.display_phone_number or "", first_text
        )
        labels, extra_fields = list(service.labels), None
        fields = self.fields_for(row, service)
        if fields is not None:
            summary = fields.summary or summary
            table = description_table(fields.description_rows)
            description = f"{description}\n\n{table}" if table else description
            labels = list(dict.fromkeys([*labels, *fields.labels]))
            extra_fields = dict(fields.custom_fields) or None
        self.mappings.note_creation_started(key, service.id)
        try:
            created = self.jira.create_issue(
                project_key=service.project_key,
                issue_type=service.issue_type,
                summary=summary,
                description=description,
                labels=labels,
                extra_fields=extra_fields,
                properties=ticket_properties(
                    conversation=key,
                    wa_id=row.wa_id,
                    user_id=row.user_id,
                    service=service.id,
                    phone_number_id=row.phone_number_id,
                    previous=previous,
                ),
            )
        except (RateLimited, JiraRejected):
            # Jira answered and refused: certainly nothing was created, nothing to look for later.
            self.mappings.clear_creation(key)
            raise
        self.created_ids[created.key] = created.id
        log.info("ticket_created", issue_key=created.key, service=service.id, conversation=mask_phone(key))
        return created.key

    def _remember(self, row: QueuedMessage, service: ServiceSettings, issue_key: str) -> str:
        try:
            self.mappings.create(row.conversation_key, issue_key, service.id, row.user_id)
        except MappingExists:
            # Another instance mapped it first (its lease expired under it); theirs stands.
            existing = self.mappings.get(row.conversation_key)
            if existing is not None:
                issue_key = existing.issue_key
        self.mappings.clear_creation(row.conversation_key)
        return issue_key
