"""Which Jira ticket a conversation's message goes to, creating it on first contact exactly once.

A create can fail after Jira made the issue (timeout, crash before our commit). Before creating
we note the attempt in storage; a later attempt first looks in Jira for an issue carrying our
`wajira` property for this conversation, and only creates when there is none. Search can lag
behind writes, so a fresh uncertain attempt waits `search_grace_seconds` before creating anew.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import ServiceSettings
from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.errors import JiraRejected, RateLimited
from bot.logs import get_logger
from bot.rules.phones import display_phone, mask_phone
from bot.rules.render import ticket_description, ticket_summary
from storage.inbound import QueuedMessage
from storage.mappings import MappingExists, Mappings

log = get_logger(__name__)


class CreationPending(Exception):
    """An earlier create may have succeeded but search does not show it yet: wait, then look again."""

    def __init__(self, wait_seconds: float) -> None:
        super().__init__(f"earlier ticket creation still settling; retry in {wait_seconds:.0f}s")
        self.wait_seconds = wait_seconds


@dataclass
class TicketOpener:
    jira: JiraAdapter
    mappings: Mappings
    clock: Callable[[], float] = time.time
    search_grace_seconds: float = 20.0

    def ticket_for(self, row: QueuedMessage, service: ServiceSettings, first_text: str) -> str:
        """The issue key for the row's conversation, creating the ticket if there is none."""
        mapping = self.mappings.get(row.conversation_key)
        if mapping is not None:
            return mapping.issue_key
        return self._open(row, service, first_text)

    def replace_missing(self, row: QueuedMessage, service: ServiceSettings, first_text: str) -> str:
        """The mapped issue is gone (deleted in Jira): open a new one and point the mapping at it."""
        issue_key = self._create(row, service, first_text)
        self.mappings.repoint(row.conversation_key, issue_key)
        self.mappings.clear_creation(row.conversation_key)
        return issue_key

    def _open(self, row: QueuedMessage, service: ServiceSettings, first_text: str) -> str:
        key = row.conversation_key
        started = self.mappings.creation_started_at(key)
        if started is not None:
            found = self.jira.find_issue_with_property(
                project_key=service.project_key,
                created_since_epoch=started - 300,
                match={"conversation": key},
            )
            if found is not None:
                log.info("ticket_recovered", issue_key=found.key, conversation=mask_phone(key))
                return self._remember(row, service, found.key)
            age = self.clock() - started
            if age < self.search_grace_seconds:
                raise CreationPending(self.search_grace_seconds - age)
        issue_key = self._create(row, service, first_text)
        return self._remember(row, service, issue_key)

    def _create(self, row: QueuedMessage, service: ServiceSettings, first_text: str) -> str:
        key = row.conversation_key
        phone = display_phone(key) if key.startswith("+") else (row.user_id or key)
        name = row.profile_name or phone
        self.mappings.note_creation_started(key, service.id)
        try:
            created = self.jira.create_issue(
                project_key=service.project_key,
                issue_type=service.issue_type,
                summary=ticket_summary(name, phone),
                description=ticket_description(
                    name, phone, row.wa_id or "", row.display_phone_number or "", first_text
                ),
                labels=list(service.labels),
                properties={
                    "wajira": {
                        "conversation": key,
                        "wa_id": row.wa_id,
                        "user_id": row.user_id,
                        "service": service.id,
                        "phone_number_id": row.phone_number_id,
                    }
                },
            )
        except (RateLimited, JiraRejected):
            # Jira answered and refused: certainly nothing was created, nothing to look for later.
            self.mappings.clear_creation(key)
            raise
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
