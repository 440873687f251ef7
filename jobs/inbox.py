"""The inbox job: queued WhatsApp messages → one Jira comment each, per conversation in order.

A conversation is worked by one worker at a time (a storage lease, so this holds across
instances). Its messages go in Meta-timestamp order; when one cannot go yet the conversation
waits as a whole, so a later message never overtakes an earlier one.

Exactly once: `started` is committed before each Jira call. A row that was started before (a
timeout, a crash, `kill -9`) first asks Jira for a comment whose `wajira` property carries its
wamid, and posts only when there is none.

Coexistence: echoes (the team wrote from the WhatsApp Business App) and shared history go to
the conversation's current ticket, rendered and marked for what they are; they never open,
reopen or replace one. Without a ticket they are parked until the customer writes; the
customer's message then opens it and they go in first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bot.config import ServiceSettings, Settings
from bot.jira_api.errors import IssueNotFound, JiraRejected, JiraUnavailable, RateLimited
from bot.logs import get_logger
from bot.ports import InboundQueuePort, JiraPort, LeasesPort
from bot.rules.backoff import honour_retry_after, retry_delay
from bot.rules.comment_property import csat_value, customer_value, echo_value, wamid_match
from bot.rules.events import RenderedComment
from bot.rules.notices import csat_comment
from bot.rules.phones import display_phone, mask_phone
from bot.rules.render import render_echo, render_history, render_message
from jobs.csat import CsatDesk, Rating
from jobs.tickets import CreationPending, TicketOpener
from storage.db import StorageUnavailable
from storage.inbound import ORIGIN_CUSTOMER, ORIGIN_ECHO, ORIGIN_HISTORY, QueuedMessage

log = get_logger(__name__)


class _StopConversation(Exception):
    """This conversation cannot go on now (its head message waits)."""


class _JiraDown(Exception):
    """Jira is unavailable: stop the whole sweep instead of hammering it conversation by conversation."""


@dataclass
class SweepSummary:
    conversations: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    jira_down: bool = False


@dataclass
class InboxJob:
    settings: Settings
    queue: InboundQueuePort
    leases: LeasesPort
    jira: JiraPort
    tickets: TicketOpener
    owner: str
    clock: Callable[[], float] = time.time
    after_write: Callable[[str], None] = lambda issue_key: None
    """Told the issue key after every comment (the poll job reconciles those issues)."""
    csat: CsatDesk | None = None
    """Tells a rating of one of our satisfaction surveys from an ordinary message."""
    on_delivered: list[Callable[[QueuedMessage, str, str], None]] = field(default_factory=list)
    """Told (row, issue key, comment id) once a message is in Jira, before it is marked done:
    media downloads start there. Must be idempotent and only write to storage (fast, no
    network): the conversation is held meanwhile."""

    _outage_streak: int = field(default=0, init=False)
    _jira_down_until: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _busy: set[str] = field(default_factory=set, init=False)
    """Conversations a thread of this process is working on: the storage lease is per instance,
    so it cannot keep two threads of the same instance apart."""

    def run(self) -> SweepSummary:
        """One sweep over every conversation with due messages; repeats while work keeps arriving."""
        summary = SweepSummary()
        if self.clock() < self._jira_down_until:
            summary.jira_down = True
            return summary
        policy = self.settings.inbox
        with ThreadPoolExecutor(max_workers=policy.workers, thread_name_prefix="inbox") as pool:
            for _round in range(100):  # bounded: a flood cannot pin the job forever
                keys = self.queue.due_conversations(limit=policy.workers * 8)
                if not keys:
                    break
                results = list(pool.map(self._conversation_safely, keys))
                for delivered, retried, dead in results:
                    summary.delivered += delivered
                    summary.retried += retried
                    summary.dead += dead
                summary.conversations += len(keys)
                if self.clock() < self._jira_down_until:
                    summary.jira_down = True
                    break
                if not any(d for d, _, _ in results):
                    break  # nothing moved: every due conversation is waiting on something
        if summary.conversations:
            log.info("inbox_sweep", **summary.__dict__)
        return summary

    def _conversation_safely(self, key: str) -> tuple[int, int, int]:
        with self._lock:
            if key in self._busy:
                return (0, 0, 0)
            self._busy.add(key)
        try:
            return self.process_conversation(key)
        except StorageUnavailable as exc:
            log.error("inbox_storage_unavailable", error=str(exc))
            return (0, 0, 0)
        finally:
            with self._lock:
                self._busy.discard(key)

    def process_conversation(self, key: str) -> tuple[int, int, int]:
        """Deliver the conversation's due messages in order. Returns (delivered, retried, dead)."""
        policy = self.settings.inbox
        lease = f"conversation:{key}"
        if not self.leases.acquire(lease, self.owner, policy.lease_seconds):
            return (0, 0, 0)
        delivered = retried = dead = 0
        renewed = self.clock()
        try:
            rows = self.queue.pending_for(key)
            # The customer's message that may open the ticket echoes and history go to.
            opener = next((r for r in rows if r.origin == ORIGIN_CUSTOMER), None)
            for row in rows:
                if row.next_attempt_at > self.clock() or self.clock() < self._jira_down_until:
                    break
                if self.clock() - renewed > policy.lease_seconds / 3:
                    if not self.leases.acquire(lease, self.owner, policy.lease_seconds):
                        break
                    renewed = self.clock()
                try:
                    if self._deliver(row, opener):
                        delivered += 1
                except _StopConversation:
                    retried += 1
                    break
                except _DeadLettered:
                    dead += 1  # a dead row no longer blocks the ones after it
        finally:
            self.leases.release(lease, self.owner)
        return (delivered, retried, dead)

    def _deliver(self, row: QueuedMessage, opener: QueuedMessage | None = None) -> bool:
        """Post the row's comment; False when it was parked instead (no ticket to go to)."""
        service = self.settings.service_for(row.phone_number_id)
        rating = self.csat.rating_in(row) if self.csat is not None else None
        if rating is not None:
            return self._settle(row, lambda: self._rate(row, rating, service))
        name = _name(row)
        rendered, prop = _comment_for(row, name)
        first, first_text = row, rendered.text
        # Echoes and history go to the conversation's ticket as it stands: they never open,
        # reopen or replace one (a "thanks, bye" from the app must not start a new ticket).
        mapping = None if row.origin == ORIGIN_CUSTOMER else self.tickets.mappings.get(row.conversation_key)
        if row.origin != ORIGIN_CUSTOMER and mapping is None:
            if opener is None:
                self.queue.mark_parked(row.id)
                log.info(
                    "message_parked",
                    wamid=row.wamid,
                    origin=row.origin,
                    conversation=mask_phone(row.conversation_key),
                )
                return False
            first, first_text = opener, _comment_for(opener, _name(opener))[0].text

        def post() -> tuple[str, str]:
            if mapping is not None:
                issue_key = mapping.issue_key
            else:
                issue_key = self.tickets.ticket_for(first, service, first_text)
            return self._comment_once(row, issue_key, rendered.text, service, name, prop)

        return self._settle(row, post)

    def _settle(self, row: QueuedMessage, post: Callable[[], tuple[str, str]]) -> bool:
        """Run `post` (→ issue key, comment id) and mark the row by its outcome."""
        try:
            issue_key, comment_id = post()
        except CreationPending as exc:
            self._retry(row, str(exc), exc.wait_seconds, count=False)
        except RateLimited as exc:
            delay = honour_retry_after(
                exc.retry_after, self._outage_delay(), cap=self.settings.inbox.retry_max_seconds
            )
            self._jira_unavailable(row, exc, delay)
        except JiraUnavailable as exc:
            self._jira_unavailable(row, exc, self._outage_delay())
        except JiraRejected as exc:
            self._failed(row, str(exc))
        except StorageUnavailable:
            raise
        except Exception as exc:  # our bug: keep the message, count it, dead-letter if it persists
            log.exception("inbox_unexpected_error", wamid=row.wamid)
            self._failed(row, f"{type(exc).__name__}: {exc}")
        else:
            self._delivered(row, issue_key, comment_id)
        return True

    def _rate(self, row: QueuedMessage, rating: Rating, service: ServiceSettings) -> tuple[str, str]:
        """A rating goes to the ticket its survey was sent for, whatever the conversation's
        ticket is now; only when that ticket was deleted, to the conversation's current one."""
        assert self.csat is not None
        text = csat_comment(_name(row), rating.value)
        prop = csat_value(row.wamid, rating.value)
        issue_key = rating.request.issue_key
        try:
            comment_id = self._find_or_add(row, issue_key, text, prop)
        except IssueNotFound:
            mapping = self.tickets.mappings.get(row.conversation_key)
            if mapping is not None and mapping.issue_key != issue_key:
                issue_key = mapping.issue_key
            else:
                issue_key = self.tickets.replace_missing(row, service, text)
            log.warning("csat_ticket_missing", asked=rating.request.issue_key, issue_key=issue_key)
            comment_id = self._find_or_add(row, issue_key, text, prop)
        self.csat.landed(row, rating, issue_key)
        return issue_key, comment_id

    def _find_or_add(self, row: QueuedMessage, issue_key: str, text: str, prop: dict[str, Any]) -> str:
        if row.started:
            existing = self.jira.find_comment_with_property(issue_key, wamid_match(row.wamid))
            if existing is not None:
                log.info("message_already_in_jira", wamid=row.wamid, issue_key=issue_key)
                return existing
        self.queue.mark_started(row.id)
        return self.jira.add_comment(issue_key, text, prop=prop)

    def _delivered(self, row: QueuedMessage, issue_key: str, comment_id: str) -> None:
        # Listeners first: if storage fails between, the message is retried (its comment is
        # found, not posted again) and the listeners, idempotent, run again.
        for listener in self.on_delivered:
            listener(row, issue_key, comment_id)
        self.queue.mark_done(row.id, issue_key=issue_key, comment_id=comment_id)
        with self._lock:
            self._outage_streak = 0
        self.after_write(issue_key)
        log.info(
            "message_delivered",
            wamid=row.wamid,
            kind=row.kind,
            origin=row.origin,
            issue_key=issue_key,
            comment_id=comment_id,
            conversation=mask_phone(row.conversation_key),
        )

    def _comment_once(
        self,
        row: QueuedMessage,
        issue_key: str,
        text: str,
        service: ServiceSettings,
        name: str,
        prop: dict[str, Any],
    ) -> tuple[str, str]:
        """(issue key, comment id): the mapped ticket's, or a fresh ticket's when it was deleted."""
        try:
            return issue_key, self._find_or_add(row, issue_key, text, prop)
        except IssueNotFound:
            # The mapped ticket was deleted: this message starts a fresh one.
            log.warning("ticket_missing", issue_key=issue_key, conversation=mask_phone(row.conversation_key))
            new_key = self.tickets.replace_missing(row, service, text)
            return new_key, self.jira.add_comment(new_key, text, prop=prop)

    # -- failure paths --------------------------------------------------------------------

    def _outage_delay(self) -> float:
        policy = self.settings.inbox
        with self._lock:
            self._outage_streak += 1
            streak = self._outage_streak
        return retry_delay(streak, base=policy.retry_base_seconds, cap=policy.retry_max_seconds)

    def _jira_unavailable(self, row: QueuedMessage, exc: Exception, delay: float) -> None:
        with self._lock:
            self._jira_down_until = max(self._jira_down_until, self.clock() + delay)
        log.warning("jira_unavailable", error=str(exc), retry_in=round(delay, 1), wamid=row.wamid)
        self._retry(row, str(exc), delay, count=False)

    def _failed(self, row: QueuedMessage, error: str) -> None:
        policy = self.settings.inbox
        attempts = row.attempts + 1
        if attempts >= policy.max_attempts:
            self.queue.mark_dead(row.id, error=error)
            log.error("message_dead_lettered", wamid=row.wamid, attempts=attempts, error=error)
            raise _DeadLettered()
        delay = retry_delay(attempts, base=policy.retry_base_seconds, cap=policy.retry_max_seconds)
        log.warning(
            "message_retry", wamid=row.wamid, attempts=attempts, error=error, retry_in=round(delay, 1)
        )
        self._retry(row, error, delay, count=True)

    def _retry(self, row: QueuedMessage, error: str, delay: float, *, count: bool) -> None:
        self.queue.mark_retry(row.id, error=error[:1000], delay_seconds=delay, count_attempt=count)
        raise _StopConversation()


class _DeadLettered(Exception):
    pass


def _name(row: QueuedMessage) -> str:
    # The profile name is the one the comment contract names; where Meta sent none (history,
    # a message without contacts[]) the name the business saved in its app, else the latest
    # profile name, fills in.
    return row.profile_name or row.known_name or _fallback_name(row)


def _comment_for(row: QueuedMessage, name: str) -> tuple[RenderedComment, dict]:
    """The comment text and the `wajira` property for a row, by where it came from."""
    business = display_phone(row.display_phone_number) if row.display_phone_number else ""
    if row.origin == ORIGIN_ECHO:
        return render_echo(row.kind, row.raw, business), echo_value(row.wamid)
    if row.origin == ORIGIN_HISTORY:
        rendered = render_history(
            row.kind, row.raw, name, sent_at=row.timestamp, business=business if row.from_business else None
        )
        value = echo_value if row.from_business else customer_value
        return rendered, value(row.wamid, history=True)
    return render_message(row.kind, row.raw, name), customer_value(row.wamid)


def _fallback_name(row: QueuedMessage) -> str:
    if row.conversation_key.startswith("+"):
        return display_phone(row.conversation_key)
    return "WhatsApp user"
