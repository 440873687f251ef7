"""Storage parts: the database, opened, migrated and bound, and every table's class over it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import peewee

from bot.config import Settings
from storage.ai_switch import AiSwitch
from storage.ai_turns import AiTurns
from storage.csat import CsatRatings
from storage.db import bind, open_database
from storage.hot_tickets import HotTickets
from storage.inbound import InboundQueue
from storage.issue_states import IssueStates
from storage.leases import Leases
from storage.mappings import Mappings
from storage.media import MediaTasks
from storage.outbound import OutboundQueue
from storage.polling import HandledComments, PollState
from storage.schema import migrate
from storage.status_watch import StatusWatch
from storage.statuses import StatusFeed
from storage.ticket_history import TicketHistory


@dataclass(frozen=True)
class Storage:
    """Concrete classes, not ports: the operator commands use what no job needs
    (`stats`, `requeue_dead`)."""

    db: peewee.Database
    schema_version: int
    inbound: InboundQueue
    mappings: Mappings
    issue_states: IssueStates
    ticket_history: TicketHistory
    leases: Leases
    poll_state: PollState
    handled: HandledComments
    turns: AiTurns
    media_tasks: MediaTasks
    outbound: OutboundQueue
    statuses: StatusFeed
    ai_switch: AiSwitch
    hot_tickets: HotTickets
    status_watch: StatusWatch
    csat: CsatRatings

    def close(self) -> None:
        self.db.close()


def open_storage(settings: Settings, *, clock: Callable[[], float] = time.time) -> Storage:
    """Open, migrate and bind the database (a fresh one gets its tables: `status` then shows zeros).

    Raises:
        StorageUnavailable, SchemaTooNew, ValueError (a URL the storage layer cannot use).
    """
    db = open_database(settings.storage.url, timeout_seconds=settings.storage.timeout_seconds)
    version = migrate(db)
    bind(db)
    return Storage(
        db=db,
        schema_version=version,
        inbound=InboundQueue(db, clock=clock),
        mappings=Mappings(db, clock=clock),
        issue_states=IssueStates(db, clock=clock),
        ticket_history=TicketHistory(db, clock=clock),
        leases=Leases(db, clock=clock),
        poll_state=PollState(db, clock=clock),
        handled=HandledComments(db, clock=clock),
        turns=AiTurns(db, clock=clock),
        media_tasks=MediaTasks(db, clock=clock),
        outbound=OutboundQueue(db, clock=clock),
        statuses=StatusFeed(db),
        ai_switch=AiSwitch(db, clock=clock),
        hot_tickets=HotTickets(db),
        status_watch=StatusWatch(db, clock=clock),
        csat=CsatRatings(db, clock=clock),
    )
