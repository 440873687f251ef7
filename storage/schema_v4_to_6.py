"""Schema steps 4 to 6: media tasks, contact names and message origins, the inbox index.

Frozen: a step must mean the same thing forever, whatever the models look like later.
"""

from __future__ import annotations

import peewee

from storage.engines import dialect, run_sql
from storage.schema_ddl import Table, add_column_sql, create_tables

_V4_TABLES = (
    # Inbound media to download from Graph and attach to the ticket, one row per medium.
    Table(
        "media_task",
        (
            ("id", "{bigpk}"),
            ("wamid", "{key} NOT NULL"),
            ("media_id", "{key} NOT NULL"),
            ("kind", "VARCHAR(16) NOT NULL"),
            ("mime_type", "{text} NULL"),
            ("filename", "{text} NOT NULL"),
            ("expected_sha256", "VARCHAR(128) NULL"),
            ("issue_key", "{key} NOT NULL"),
            ("state", "VARCHAR(16) NOT NULL DEFAULT 'pending'"),
            ("attempts", "{int} NOT NULL DEFAULT 0"),
            ("uploads", "{int} NOT NULL DEFAULT 0"),
            ("next_attempt_at", "{double} NOT NULL"),
            ("claimed_by", "{key} NULL"),
            ("claimed_until", "{double} NULL"),
            ("attachment_id", "{key} NULL"),
            ("size", "{bigint} NULL"),
            ("last_error", "{text} NULL"),
            ("created_at", "{double} NOT NULL"),
            ("updated_at", "{double} NOT NULL"),
            ("finished_at", "{double} NULL"),
        ),
        (
            ("media_task_wamid_media_id", ("wamid", "media_id"), True),
            ("media_task_state_next_attempt_at", ("state", "next_attempt_at"), False),
            ("media_task_issue_key", ("issue_key",), False),
        ),
    ),
)


def step_4(db: peewee.Database) -> None:
    create_tables(db, _V4_TABLES)


_V5_TABLES = (
    # Coexistence: the names the business saved for its contacts in the WhatsApp Business App
    # (`smb_app_state_sync`), per business number; a removal keeps its row (name NULL) so an
    # older "add" delivered late cannot bring the name back.
    Table(
        "contact_name",
        (
            ("phone_number_id", "{key} NOT NULL"),
            ("conversation_key", "{key} NOT NULL"),
            ("full_name", "{text} NULL"),
            ("first_name", "{text} NULL"),
            ("synced_at", "{bigint} NOT NULL"),
            ("updated_at", "{double} NOT NULL"),
        ),
        (
            ("contact_name_phone_number_id_conversation_key", ("phone_number_id", "conversation_key"), True),
            ("contact_name_conversation_key", ("conversation_key",), False),
        ),
    ),
)


def step_5(db: peewee.Database) -> None:
    create_tables(db, _V5_TABLES)
    # inbound_message learns where a message came from (customer, echo, history) and whether
    # the business sent it; rows from before are all customers' own messages.
    columns = {c.name for c in db.get_columns("inbound_message")}
    kind = dialect(db)
    if "origin" not in columns:
        run_sql(
            db, add_column_sql(kind, "inbound_message", "origin", "VARCHAR(16) NOT NULL DEFAULT 'customer'")
        )
    if "from_business" not in columns:
        run_sql(db, add_column_sql(kind, "inbound_message", "from_business", "{int} NOT NULL DEFAULT 0"))


_V6_TABLES = (
    # One row per conversation with pending inbound messages, bounds on their ids and due
    # times: the inbox finds due conversations without grouping the whole backlog.
    Table(
        "inbound_conversation",
        (
            ("conversation_key", "{key} NOT NULL PRIMARY KEY"),
            ("first_id", "{bigint} NOT NULL"),
            ("due_at", "{double} NOT NULL"),
            ("version", "{bigint} NOT NULL DEFAULT 0"),
        ),
        (
            ("inbound_conversation_due_at", ("due_at",), False),
            ("inbound_conversation_first_id", ("first_id",), False),
        ),
    ),
)


def step_6(db: peewee.Database) -> None:
    create_tables(db, _V6_TABLES)
    # The pending backlog as it stands; a re-run after a crash skips what is there already.
    insert = {"sqlite": "INSERT OR IGNORE INTO", "mysql": "INSERT IGNORE INTO"}.get(
        dialect(db), "INSERT INTO"
    )
    conflict = " ON CONFLICT DO NOTHING" if dialect(db) == "postgres" else ""
    run_sql(
        db,
        f"{insert} inbound_conversation (conversation_key, first_id, due_at, version) "
        "SELECT conversation_key, MIN(id), MAX(next_attempt_at), 0 FROM inbound_message "
        f"WHERE state = 'pending' GROUP BY conversation_key{conflict}",
    )
