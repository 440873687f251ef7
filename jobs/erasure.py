"""Answer an access or erasure request: `wajira export` and `wajira forget`.

The erasure comes first and the notes on the tickets after, never the other way round: the
erasure is what the customer is owed, so Jira being down must neither delay nor undo it, and a
note must never say "erased" about data still stored. When Jira could not take a note, the
ticket keys (printed by `forget`) are all that is needed to post it later: `wajira forget
PHONE --ticket KEY …` finds nothing left to delete and posts the missing notes. The note's
`ref` is the ticket key, so running that again never writes a second note.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.jira_api.errors import JiraError
from bot.logs import get_logger
from bot.ports.stores import PersonalRecordsPort
from bot.rules.person import Person
from jobs.notes import Notes
from storage.erasure import PersonalData

log = get_logger(__name__)

ERASED_NOTE = "contact data erased on request"


def erasure_ref(issue_key: str) -> str:
    """The note's ref: one erasure note per ticket, whoever runs `forget` how often."""
    return f"erased:{issue_key}"


@dataclass(frozen=True)
class Forgotten:
    tickets: tuple[str, ...]
    """The person's tickets and those the operator named, sorted."""
    deleted: dict[str, int]
    """Rows deleted per table."""
    noted: tuple[str, ...]
    """Tickets that have the note now."""
    notes_missing: tuple[str, ...]
    """Tickets Jira did not take the note on; `forget … --ticket KEY` posts it later."""
    checkpointed: bool | None = field(default=None)


@dataclass
class Erasure:
    records: PersonalRecordsPort
    notes: Notes | None
    """None: delete only (no Jira client could be built); every ticket is then `notes_missing`."""
    owner: str = "wajira-forget"

    def export(self, person: Person) -> PersonalData:
        return self.records.export(person)

    def forget(
        self, person: Person, *, also_tickets: Iterable[str] = (), wait_seconds: float = 60.0
    ) -> Forgotten:
        """Delete everything stored about the person, then note it on each of their tickets.

        Raises:
            ConversationBusy, StorageUnavailable: nothing was deleted and no note was posted.
        """
        erased = self.records.erase(person, owner=self.owner, wait_seconds=wait_seconds)
        tickets = tuple(sorted(set(erased.tickets) | {k.strip() for k in also_tickets if k.strip()}))
        noted, missing = [], []
        for issue_key in tickets:
            if self._note(issue_key):
                noted.append(issue_key)
            else:
                missing.append(issue_key)
        log.info(
            "person_forgotten",
            tickets=len(tickets),
            rows=sum(erased.deleted.values()),
            notes_missing=len(missing),
        )
        return Forgotten(tickets, erased.deleted, tuple(noted), tuple(missing), erased.checkpointed)

    def _note(self, issue_key: str) -> bool:
        if self.notes is None:
            return False
        try:
            self.notes.ensure(issue_key, ref=erasure_ref(issue_key), text=ERASED_NOTE)
        except (JiraError, LookupError) as exc:  # LookupError: a project no Jira account serves now
            log.error("erasure_note_failed", issue_key=issue_key, error=str(exc))
            return False
        return True
