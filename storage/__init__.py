"""Durable state: the database from a URL, schema migrations, the webhook's ingest, the inbound
and outbound queues, AI turns and media tasks (one claimable-queue mechanism, `storage.queue`),
poll state, ticket mappings, the AI switch, hot tickets, leases, the status watch behind customer
notices and satisfaction ratings. Importing this package never connects to anything."""

from storage.ai_switch import AiSwitch
from storage.ai_turns import AiTurn, AiTurns
from storage.csat import CsatRatings
from storage.customer_window import CustomerWindow
from storage.db import StorageUnavailable, bind, guarded, open_database, ping
from storage.hot_tickets import HotTickets
from storage.inbound import InboundQueue, QueuedMessage
from storage.ingest import Ingest, StoreResult
from storage.leases import Leases
from storage.mappings import MappingExists, Mappings, TicketMapping
from storage.media import MediaTask, MediaTasks
from storage.outbound import OutboundMessage, OutboundQueue
from storage.polling import HandledComments, PollRecord, PollState
from storage.schema import SCHEMA_VERSION, SchemaTooNew, migrate
from storage.status_watch import StatusWatch
from storage.statuses import StatusFeed

__all__ = [
    "SCHEMA_VERSION",
    "AiSwitch",
    "AiTurn",
    "AiTurns",
    "CsatRatings",
    "CustomerWindow",
    "HandledComments",
    "HotTickets",
    "InboundQueue",
    "Ingest",
    "Leases",
    "MappingExists",
    "Mappings",
    "MediaTask",
    "MediaTasks",
    "OutboundMessage",
    "OutboundQueue",
    "PollRecord",
    "PollState",
    "QueuedMessage",
    "SchemaTooNew",
    "StatusFeed",
    "StatusWatch",
    "StorageUnavailable",
    "StoreResult",
    "TicketMapping",
    "bind",
    "guarded",
    "migrate",
    "open_database",
    "ping",
]
