"""The queues and tables the jobs read and write, as the jobs use them.

Each is satisfied by the class of the same name in `storage` (`InboundQueuePort` by
`storage.inbound.InboundQueue`, …). The queues share one life cycle: `claim_due` hands rows to
one owner for a lease, then each row ends `done`, goes back with `mark_retry` (after
`delay_seconds`; `count_attempt` says whether it was the row's fault) or ends failed or dead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # value types only: their modules import peewee
    from bot.rules.person import Person
    from bot.rules.retention import RetentionReport
    from bot.rules.window import LastCustomerMessage
    from storage.ai_turns import AiTurn
    from storage.erasure import Erased, PersonalData
    from storage.inbound import QueuedMessage
    from storage.issue_states import IssueState
    from storage.mappings import TicketMapping
    from storage.media import MediaTask
    from storage.outbound import OutboundMessage
    from storage.polling import PollRecord
    from storage.retention import Checkpoint


class InboundQueuePort(Protocol):
    """WhatsApp messages waiting to become Jira comments, per conversation (the inbox job)."""

    def due_conversations(self, limit: int = ...) -> list[str]: ...

    def pending_for(self, conversation_key: str) -> list[QueuedMessage]:
        """The conversation's unfinished messages in the order they must go."""
        ...

    def mark_started(self, row_id: int) -> None:
        """Committed before the Jira call: a later attempt looks in Jira before posting."""
        ...

    def mark_done(self, row_id: int, *, issue_key: str, comment_id: str | None) -> None: ...

    def mark_retry(self, row_id: int, *, error: str, delay_seconds: float, count_attempt: bool) -> int: ...

    def mark_parked(self, row_id: int) -> None:
        """An echo or history message with no ticket to go to: it waits for the customer."""
        ...

    def mark_dead(self, row_id: int, *, error: str) -> None: ...

    def customer_delivered_on(self, issue_key: str, *, excluding: int) -> bool:
        """Whether a customer's message other than row `excluding` is done on this ticket."""
        ...


class CustomerWindowPort(Protocol):
    """When the customer last wrote: the 24-hour window runs from it (the AI and outbox jobs)."""

    def last_customer_message(self, conversation_key: str) -> LastCustomerMessage | None: ...


class OutboundQueuePort(Protocol):
    """Replies waiting to go to WhatsApp, each sent at most once (the outbox job)."""

    def claim_due(
        self, owner: str, *, limit: int = ..., lease_seconds: float = ...
    ) -> list[OutboundMessage]: ...

    def recover_stale(self) -> list[OutboundMessage]:
        """Rows whose sender died mid-send, now `unknown`: never sent again."""
        ...

    def mark_sent(self, id: int, *, wamid: str, via_template: bool = ...) -> None: ...

    def mark_retry(
        self, id: int, *, error: str, code: int | None, delay_seconds: float, count_attempt: bool
    ) -> int: ...

    def mark_failed(self, id: int, *, error: str, code: int | None) -> None: ...

    def mark_held(self, id: int, *, reason: str) -> None:
        """Kept in Jira only: the window closed and no template may go."""
        ...

    def template_sent_since(self, conversation_key: str, since: float) -> bool: ...

    def apply_status(
        self, wamid: str, status: str, *, at: float, error: str | None = ..., code: int | None = ...
    ) -> tuple[OutboundMessage | None, bool]:
        """Apply a delivery status, never backwards: (the row now or None, whether it changed)."""
        ...

    def enqueue_many(self, rows: list[dict[str, Any]], *, txn_ok: bool = ...) -> int:
        """Add rows, those with a known dedupe key ignored; how many were new."""
        ...

    def csat_request(
        self, conversation_key: str, context_wamid: str | None, *, since: float
    ) -> OutboundMessage | None:
        """The survey a rating answers: the quoted one of this conversation, else its newest
        sent since `since`; None when there is none (or the quoted message is no survey)."""
        ...


class AiSwitchPort(Protocol):
    """`/ai off` and `/ai on` per ticket, the newest command winning (the poll and AI jobs)."""

    def set_enabled(self, issue_key: str, *, enabled: bool, comment_id: str, comment_created: float) -> bool:
        """Apply a command unless a newer one is stored; whether the stored state is now its."""
        ...

    def enabled(self, issue_key: str) -> bool:
        """True unless a command switched the AI off on this ticket."""
        ...

    def disabled_among(self, issue_keys: Iterable[str]) -> set[str]: ...


class HotTicketsPort(Protocol):
    """Tickets whose customer wrote lately, searched more often (the poll job)."""

    def hot_issue_keys(self, *, since: float, limit: int = ...) -> list[str]:
        """Keys of tickets whose customer wrote at or after `since`, most recent first."""
        ...


class StatusFeedPort(Protocol):
    """Delivery statuses the webhook stored, fed once each to the outbox job."""

    def unapplied(self, limit: int = ...) -> list[dict[str, Any]]: ...

    def mark_applied(self, ids: list[int]) -> None: ...


class AiTurnsPort(Protocol):
    """Customer turns the AI job answers, once each."""

    def claim_due(self, owner: str, *, limit: int = ..., lease_seconds: float = ...) -> list[AiTurn]: ...

    def renew(self, turn: AiTurn, owner: str, *, lease_seconds: float) -> bool:
        """Extend our claim; False when it lapsed and another worker has the turn."""
        ...

    def postpone(self, id: int, *, due_at: float) -> None: ...

    def mark_done(
        self, id: int, *, reply_comment_id: str | None, tokens: int, outbound: list[dict[str, Any]] = ...
    ) -> None:
        """Finish the turn and enqueue its reply's outbound rows, in one transaction."""
        ...

    def mark_skipped(self, id: int, *, reason: str) -> None: ...

    def mark_failed(self, id: int, *, error: str) -> None: ...

    def mark_retry(self, id: int, *, error: str, delay_seconds: float) -> int: ...

    def replies_since(self, issue_key: str, since: float) -> int: ...

    def tokens_since(self, service_id: str, since: float) -> int: ...

    def answered_after(self, issue_key: str, comment_created: float) -> bool: ...


class MediaTasksPort(Protocol):
    """Customer media waiting to become Jira attachments (the media job and its enqueuer)."""

    def add(
        self,
        *,
        wamid: str,
        media_id: str,
        kind: str,
        mime_type: str,
        filename: str,
        expected_sha256: str,
        issue_key: str,
    ) -> bool:
        """Add a task once per message and medium; whether it is new."""
        ...

    def claim_due(self, owner: str, *, limit: int = ..., lease_seconds: float = ...) -> list[MediaTask]: ...

    def mark_upload_started(self, id: int) -> None:
        """Committed before the upload: a later attempt looks for the attachment first."""
        ...

    def mark_done(self, id: int, *, attachment_id: str, size: int) -> None: ...

    def mark_too_large(self, id: int, *, size: int | None, reason: str) -> None: ...

    def mark_failed(self, id: int, *, error: str) -> None: ...

    def mark_retry(self, id: int, *, error: str, delay_seconds: float, count_attempt: bool) -> int: ...


class LeasesPort(Protocol):
    """Named leases that keep one worker (across instances) on a conversation or the poll."""

    def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool: ...

    def release(self, name: str, owner: str) -> None: ...


class MappingsPort(Protocol):
    """Conversation → ticket, and the note of a creation in flight (the ticket opener)."""

    @property
    def db(self) -> Any:
        """The database, for a transaction spanning the mapping and the ticket history."""
        ...

    def get(self, phone_number: str) -> TicketMapping | None: ...

    def create(
        self, phone_number: str, issue_key: str, service_id: str, user_id: str | None = ...
    ) -> TicketMapping:
        """Map a conversation; `MappingExists` when another worker mapped it first."""
        ...

    def repoint(self, phone_number: str, issue_key: str) -> None: ...

    def creation_started_at(self, conversation_key: str) -> float | None: ...

    def note_creation_started(self, conversation_key: str, service_id: str) -> float: ...

    def clear_creation(self, conversation_key: str) -> None: ...


class IssueStatesPort(Protocol):
    """Each issue's status as the poll job last read it (the ticket lifecycle)."""

    def get(self, issue_key: str) -> IssueState | None: ...

    def record(self, issue_key: str, status_category: str, status_name: str) -> None: ...


class StatusWatchPort(Protocol):
    """Each ticket's last seen status and its entries into new ones (customer notices)."""

    def baseline(self, issue_key: str) -> None:
        """A ticket we just opened: the poll's first sight of it counts as an entry."""
        ...

    def observe(
        self, issue_key: str, status_name: str, *, on_entry: Callable[[int], None] | None = ...
    ) -> int | None:
        """The poll saw this status: the new entry count when this call recorded an entry
        (`on_entry` ran inside its transaction), else None."""
        ...

    def get(self, issue_key: str) -> tuple[str, int] | None: ...


class CsatRatingsPort(Protocol):
    """Satisfaction ratings, one per survey, the newest tap kept."""

    def record(
        self,
        *,
        request_id: int,
        service_id: str,
        issue_key: str,
        conversation_key: str,
        wamid: str,
        rating: int,
        rated_at: float,
    ) -> None: ...

    def summary(self, *, since: float) -> dict[str, tuple[int, float]]:
        """service_id → (count, average rating) of ratings given at or after `since`."""
        ...


class TicketHistoryPort(Protocol):
    """A conversation's replaced tickets."""

    def add(
        self, phone_number: str, issue_key: str, service_id: str, *, opened_at: float, replaced_by: str | None
    ) -> None: ...


class PollStatePort(Protocol):
    """The poll job's watermark and last outcome."""

    def get(self, name: str = ...) -> PollRecord: ...

    def save_success(self, name: str, *, watermark_ms: int) -> None: ...

    def save_failure(self, name: str, *, error: str) -> None: ...


class HandledCommentsPort(Protocol):
    """Jira comments already acted on, each once, with what they caused (the poll and AI jobs)."""

    def known(self, comment_ids: Iterable[str]) -> set[str]:
        """Which of these comment ids were handled before."""
        ...

    def record(
        self,
        *,
        comment_id: str,
        issue_key: str,
        route: str,
        comment_created: float,
        outbound: list[dict[str, Any]] = ...,
        ai_turn: dict[str, Any] | None = ...,
        author_kind: str | None = ...,
    ) -> bool:
        """Mark a comment handled and enqueue what it causes, in one transaction; False if
        it was handled before (then nothing is written)."""
        ...

    def last_human_at(self, issue_key: str) -> float | None: ...

    def last_customer_at(self, issue_key: str) -> float | None: ...


class RetentionPort(Protocol):
    """Finished rows deleted once older than a cutoff, in small batches (the housekeeping job)."""

    def delete_expired(self, *, cutoff: float) -> RetentionReport:
        """Delete what may go among rows finished before `cutoff` (epoch seconds)."""
        ...

    def checkpoint(self) -> Checkpoint | None:
        """Give SQLite's write-ahead log back to the file system; None on other engines."""
        ...


class PersonalRecordsPort(Protocol):
    """Everything stored about one person, for access and erasure requests (`wajira export`,
    `wajira forget`)."""

    def export(self, person: Person) -> PersonalData: ...

    def erase(self, person: Person, *, owner: str, wait_seconds: float = ...) -> Erased:
        """Delete every row about the person in one transaction, the inbox held off their
        conversations meanwhile."""
        ...
