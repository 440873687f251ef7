"""Durable state: the database from a URL, schema migrations, the inbound queue, ticket
mappings and leases. Importing this package never connects to anything."""

from storage.db import StorageUnavailable, bind, guarded, open_database, ping
from storage.inbound import InboundQueue, QueuedMessage, StoreResult
from storage.leases import Leases
from storage.mappings import MappingExists, Mappings, TicketMapping
from storage.schema import SCHEMA_VERSION, SchemaTooNew, migrate

__all__ = [
    "SCHEMA_VERSION", "InboundQueue", "Leases", "MappingExists", "Mappings", "QueuedMessage",
    "SchemaTooNew", "StorageUnavailable", "StoreResult", "TicketMapping", "bind", "guarded",
    "migrate", "open_database", "ping",
]
