"""Customer notices: what wajira tells a customer on its own, each exactly once.

Three moments, each turned into outbound rows (sent by the outbox like replies: inside the
24-hour window as text, outside it the approved template or an internal note):

- acknowledgement (`[services.notify] on_create`): after the first customer message of a
  ticket is in Jira. "First" is read from storage (no other customer message is done on that
  ticket), so a retry after a crash decides the same; the row's key `ack:{issue}` makes it once.
- out of hours (`out_of_hours`): a fresh customer message written outside `[services.hours]`;
  keyed by conversation and the service's local day, so at most one per day.
- status notices (`on_status`) and the satisfaction survey (`[services.csat]`): when the poll
  sees a managed ticket *enter* a status. `StatusWatch.observe` compares with the last status
  seen and bumps the ticket's entry count in one compare-and-set, and the rows (keyed by that
  count) are queued in the same transaction: a catch-up or a second instance re-reading the same
  status changes nothing, while Done → reopened → Done is a second entry.

Every listener here writes storage only (the inbox holds the conversation meanwhile); the
outbox records each notice on the ticket as `[Auto] {text}` before sending it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.config import ServiceSettings, Settings
from bot.logs import get_logger
from bot.ports import CustomerWindowPort, InboundQueuePort, OutboundQueuePort, StatusWatchPort
from bot.rules.hours import is_open, local_day
from bot.rules.notices import csat_rows, fill, out_of_hours_ref, same_status, status_text
from bot.rules.phones import mask_phone
from jobs.lifecycle import status_of
from storage.inbound import ORIGIN_CUSTOMER, QueuedMessage

log = get_logger(__name__)

# A message older than this when it reaches Jira (a backlog after an outage) gets no
# "we are closed" answer: the hours may have changed since, and it would answer old news.
OUT_OF_HOURS_FRESH_SECONDS = 3600.0
TEXT_MAX_CHARS = 4096
LIST_BODY_MAX_CHARS = 1024
KIND_AUTO = "auto"
KIND_CSAT = "csat"


def customer_name(row: QueuedMessage) -> str:
    """The name a notice greets: the profile name, else the one the business saved, else none."""
    return row.profile_name or row.known_name or ""


@dataclass
class CustomerNotices:
    settings: Settings
    outbound: OutboundQueuePort
    inbound: InboundQueuePort
    watch: StatusWatchPort
    window: CustomerWindowPort
    """The customer's latest profile name, for notices the poll job raises."""
    clock: Callable[[], float] = time.time
    on_queued: Callable[[], None] = lambda: None
    """Told after rows were queued outside a transaction (wakes the outbox)."""

    # -- the inbox's listener ---------------------------------------------------------------------

    def after_delivery(self, row: QueuedMessage, issue_key: str, comment_id: str) -> None:
        """`InboxJob.on_delivered`: acknowledgement and out-of-hours for a customer's message."""
        if row.origin != ORIGIN_CUSTOMER:
            return  # echoes and history are not the customer writing now
        service = self.settings.service_for(row.phone_number_id)
        values = {"name": customer_name(row), "issue_key": issue_key}
        rows: list[dict[str, Any]] = []
        if not self.inbound.customer_delivered_on(issue_key, excluding=row.id):
            # The ticket was opened for this message: whatever status the poll sees it in first
            # is an entry (an old ticket seen for the first time is not: see StatusWatch).
            self.watch.baseline(issue_key)
            if service.notify.on_create:
                rows.append(
                    self._row(row, issue_key, f"ack:{issue_key}", fill(service.notify.on_create, values))
                )
        if self._out_of_hours(service, row):
            assert service.hours is not None  # _out_of_hours checked it
            day = local_day(service.hours.timezone, float(row.timestamp))
            ref = out_of_hours_ref(row.conversation_key, day)
            rows.append(self._row(row, issue_key, ref, fill(service.notify.out_of_hours, values)))
        if rows and self.outbound.enqueue_many(rows):
            log.info("notice_queued", issue_key=issue_key, refs=[r["dedupe_key"] for r in rows])
            self.on_queued()

    def _out_of_hours(self, service: ServiceSettings, row: QueuedMessage) -> bool:
        if not service.notify.out_of_hours or service.hours is None:
            return False
        if self.clock() - row.timestamp > OUT_OF_HOURS_FRESH_SECONDS:
            return False
        return not is_open(service.hours.week(), float(row.timestamp))

    def _row(self, row: QueuedMessage, issue_key: str, ref: str, text: str) -> dict[str, Any]:
        return {
            "dedupe_key": ref,
            "issue_key": issue_key,
            "conversation_key": row.conversation_key,
            "to_wa_id": row.wa_id,
            "to_user_id": row.user_id,
            "phone_number_id": row.phone_number_id,
            "kind": KIND_AUTO,
            "body": text[:TEXT_MAX_CHARS],
        }

    # -- the poll job's listener ------------------------------------------------------------------

    def status_seen(self, issue_key: str, fields: dict[str, Any], ours: dict[str, Any]) -> None:
        """`PollJob.on_issue_seen`: queue the notices of a status the ticket has just entered."""
        seen = status_of(fields)
        conversation = ours.get("conversation")
        if seen is None or not isinstance(conversation, str) or not conversation:
            return
        status = seen[1]
        service = self.settings.service_of_ticket(ours)

        def queue(entry: int) -> None:
            rows = self._status_rows(service, issue_key, ours, status, entry)
            if rows:
                self.outbound.enqueue_many(rows, txn_ok=True)

        entry = self.watch.observe(issue_key, status, on_entry=queue)
        if entry is not None:
            log.info("ticket_status_entered", issue_key=issue_key, status=status, entry=entry)
            if self._watched(service, status):
                self.on_queued()

    def _watched(self, service: ServiceSettings, status: str) -> bool:
        csat = service.csat
        return status_text(service.notify.on_status, status) is not None or (
            csat.enabled and same_status(csat.on_status, status)
        )

    def _status_rows(
        self, service: ServiceSettings, issue_key: str, ours: dict[str, Any], status: str, entry: int
    ) -> list[dict[str, Any]]:
        conversation = str(ours["conversation"])
        last = self.window.last_customer_message(conversation)
        values = {
            "name": (last.profile_name if last else None) or "",
            "issue_key": issue_key,
            "status": status,
        }
        base = {
            "issue_key": issue_key,
            "conversation_key": conversation,
            "to_wa_id": ours.get("wa_id"),
            "to_user_id": ours.get("user_id"),
            "phone_number_id": ours.get("phone_number_id") or self.settings.whatsapp.phone_number_id,
        }
        rows: list[dict[str, Any]] = []
        text = status_text(service.notify.on_status, status)
        if text:
            rows.append(
                {
                    **base,
                    "dedupe_key": f"status:{issue_key}:{entry}",
                    "kind": KIND_AUTO,
                    "body": fill(text, values)[:TEXT_MAX_CHARS],
                }
            )
        csat = service.csat
        if csat.enabled and same_status(csat.on_status, status):
            rows.append(
                {
                    **base,
                    "dedupe_key": f"csat:{issue_key}:{entry}",
                    "kind": KIND_CSAT,
                    # A long name or status must not push the list body over WhatsApp's limit.
                    "body": fill(csat.question, values)[:LIST_BODY_MAX_CHARS],
                    "payload": {"button": csat.button, "rows": csat_rows(csat.labels), "service": service.id},
                }
            )
        if rows:
            log.info(
                "notice_queued",
                issue_key=issue_key,
                refs=[r["dedupe_key"] for r in rows],
                to=mask_phone(conversation),
            )
        return rows
