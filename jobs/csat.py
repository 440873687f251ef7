"""Satisfaction ratings: a customer's choice in our CSAT list → the ticket it was asked for.

The survey is an outbound row (kind `csat`, queued by `jobs.notices` when a ticket enters the
service's `[services.csat] on_status`). The customer's `list_reply` (or `button_reply`) with id
`csat:N` names, in `context.id`, the wamid of the list it answers; that row says which ticket
asked. So a rating lands there even when the ticket has been reopened or replaced since
(`on_closed = "new"`), never opens a ticket of its own, and is never an AI turn (its comment's
kind is `csat`). A `csat:N` that answers no survey of ours is an ordinary message.

Where the project is a Jira Service Management service desk, the rating also becomes the
request's feedback (`POST /rest/servicedeskapi/request/{key}/feedback`); elsewhere Jira answers
404 and the comment is the record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.jira_api.errors import JiraRejected
from bot.logs import get_logger
from bot.ports import CsatRatingsPort, JiraPort, OutboundQueuePort
from bot.rules.notices import csat_choice, csat_context
from storage.inbound import ORIGIN_CUSTOMER, QueuedMessage
from storage.outbound import OutboundMessage

log = get_logger(__name__)

# A rating without `context` (some clients drop it) answers the newest survey of the
# conversation, if it was sent within this long.
UNQUOTED_RATING_DAYS = 7


@dataclass(frozen=True)
class Rating:
    value: int
    request: OutboundMessage
    """The survey it answers: its issue key is where the rating goes."""


@dataclass
class CsatDesk:
    outbound: OutboundQueuePort
    ratings: CsatRatingsPort
    jira: JiraPort
    clock: Callable[[], float] = time.time

    def rating_in(self, row: QueuedMessage) -> Rating | None:
        """The rating this customer message gives to one of our surveys, or None."""
        if row.origin != ORIGIN_CUSTOMER:
            return None
        value = csat_choice(row.kind, row.raw)
        if value is None:
            return None
        since = self.clock() - UNQUOTED_RATING_DAYS * 86400
        request = self.outbound.csat_request(row.conversation_key, csat_context(row.raw), since=since)
        return Rating(value, request) if request is not None else None

    def landed(self, row: QueuedMessage, rating: Rating, issue_key: str) -> None:
        """The `[CSAT]` comment is on `issue_key`: keep the rating and give it to JSM.

        Raises:
            JiraUnavailable, RateLimited: the inbox retries the message (its comment is found,
                not posted again; the rating is an upsert).
        """
        service_id = str((rating.request.payload or {}).get("service") or "")
        self.ratings.record(
            request_id=rating.request.id,
            service_id=service_id,
            issue_key=issue_key,
            conversation_key=row.conversation_key,
            wamid=row.wamid,
            rating=rating.value,
            rated_at=float(row.timestamp),
        )
        try:
            given = self.jira.send_csat_feedback(issue_key, rating.value)
        except JiraRejected as exc:
            # Feedback turned off on the service desk, or the bot is not the reporter: the
            # comment and our table still hold the rating.
            log.warning("csat_feedback_refused", issue_key=issue_key, error=str(exc))
            return
        log.info("csat_rated", issue_key=issue_key, rating=rating.value, jsm_feedback=given)
