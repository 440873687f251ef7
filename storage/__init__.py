"""Durable state: the database from a URL, schema migrations, the inbound and outbound queues,
AI turns, poll state, ticket mappings and leases. Importing this package never connects to
anything."""

from storage.ai_turns import AiTurn, AiTurns
from storage.db import StorageUnavailable, bind, guarded, open_database, ping
from storage.inbound import InboundQueue, QueuedMessage, StoreResult
from storage.leases import Leases
from storage.mappings import MappingExists, Mappings, TicketMapping
from storage.outbound import OutboundMessage, OutboundQueue
from storage.polling import HandledComments, PollRecord, PollState
from storage.schema import SCHEMA_VERSION, SchemaTooNew, migrate
from storage.statuses import StatusFeed

__all__ = [
    "SCHEMA_VERSION",
    "AiTurn",
    "AiTurns",
    "HandledComments",
    "InboundQueue",
    "Leases",
    "MappingExists",
    "Mappings",
    "OutboundMessage",
    "OutboundQueue",
    "PollRecord",
    "PollState",
    "QueuedMessage",
    "SchemaTooNew",
    "StatusFeed",
    "StorageUnavailable",
    "StoreResult",
    "TicketMapping",
    "bind",
    "guarded",
    "migrate",
    "open_database",
    "ping",
]
