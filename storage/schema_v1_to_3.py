"""Schema steps 1 to 3: the queues, the poll job's memory, AI turns, the ticket lifecycle.

Frozen: a step must mean the same thing forever, whatever the models look like later.
"""

from __future__ import annotations

import peewee

from storage.engines import dialect, run_sql
from storage.schema_ddl import Table, add_column_sql, add_index, create_tables

_V1_TABLES = (
    Table(
        "whatsapp_ticket_mapping",
        (
            ("id", "{pk}"),
            ("phone_number", "{key} NOT NULL"),
            ("issue_key", "{key} NOT NULL"),
            ("service_id", "{key} NOT NULL"),
            ("user_id", "{key} NULL"),
            ("created_at", "{datetime} NOT NULL"),
            ("updated_at", "{datetime} NOT NULL"),
        ),
        (
            ("whatsapp_ticket_mapping_phone_number", ("phone_number",), True),
            ("whatsapp_ticket_mapping_issue_key", ("issue_key",), False),
            ("whatsapp_ticket_mapping_user_id_service_id", ("user_id", "service_id"), False),
        ),
    ),
    Table(
        "inbound_message",
        (
            ("id", "{bigpk}"),
            ("wamid", "{key} NOT NULL"),
            ("conversation_key", "{key} NOT NULL"),
            ("wa_id", "{text} NULL"),
            ("user_id", "{text} NULL"),
            ("phone_number_id", "{text} NOT NULL"),
            ("display_phone_number", "{text} NULL"),
            ("profile_name", "{text} NULL"),
            ("meta_timestamp", "{bigint} NOT NULL"),
            ("kind", "{text} NOT NULL"),
            ("raw_json", "{longtext} NOT NULL"),
            ("state", "VARCHAR(16) NOT NULL DEFAULT 'pending'"),
            ("attempts", "{int} NOT NULL DEFAULT 0"),
            ("started", "{int} NOT NULL DEFAULT 0"),
            ("next_attempt_at", "{double} NOT NULL"),
            ("last_error", "{text} NULL"),
            ("issue_key", "{key} NULL"),
            ("comment_id", "{key} NULL"),
            ("created_at", "{double} NOT NULL"),
            ("updated_at", "{double} NOT NULL"),
            ("done_at", "{double} NULL"),
        ),
        (
            ("inbound_message_wamid", ("wamid",), True),
            ("inbound_message_conversation_key_state", ("conversation_key", "state"), False),
            ("inbound_message_state_next_attempt_at", ("state", "next_attempt_at"), False),
        ),
    ),
    Table(
        "message_status",
        (
            ("id", "{bigpk}"),
            ("wamid", "{key} NOT NULL"),
            ("status", "VARCHAR(64) NOT NULL"),
            ("meta_timestamp", "{bigint} NOT NULL"),
            ("recipient_id", "{text} NULL"),
            ("phone_number_id", "{text} NOT NULL"),
            ("errors_json", "{text} NOT NULL"),
            ("raw_json", "{longtext} NOT NULL"),
            ("created_at", "{double} NOT NULL"),
        ),
        (("message_status_wamid_status", ("wamid", "status"), True),),
    ),
    Table(
        "webhook_event",
        (
            ("id", "{bigpk}"),
            ("field", "{key} NOT NULL"),
            ("dedupe_key", "VARCHAR(64) NOT NULL"),
            ("phone_number_id", "{text} NULL"),
            ("raw_json", "{longtext} NOT NULL"),
            ("created_at", "{double} NOT NULL"),
            ("state", "VARCHAR(16) NOT NULL DEFAULT 'stored'"),
        ),
        (("webhook_event_dedupe_key", ("dedupe_key",), True),),
    ),
    Table(
        "lease",
        (
            ("name", "{key} NOT NULL PRIMARY KEY"),
            ("owner", "{key} NOT NULL"),
            ("expires_at", "{double} NOT NULL"),
            ("acquired_at", "{double} NOT NULL"),
        ),
    ),
    Table(
        "ticket_creation",
        (
            ("conversation_key", "{key} NOT NULL PRIMARY KEY"),
            ("service_id", "{key} NOT NULL"),
            ("started_at", "{double} NOT NULL"),
        ),
    ),
)


def step_1(db: peewee.Database) -> None:
    create_tables(db, _V1_TABLES)


_V2_TABLES = (
    Table(
        "outbound_message",
        (
            ("id", "{bigpk}"),
            ("dedupe_key", "{key} NOT NULL"),
            ("issue_key", "{key} NOT NULL"),
            ("conversation_key", "{key} NOT NULL"),
            ("to_wa_id", "{text} NULL"),
            ("to_user_id", "{text} NULL"),
            ("phone_number_id", "{text} NOT NULL"),
            ("kind", "VARCHAR(32) NOT NULL"),
            # A part is at most 4096 characters, but nothing should fail if a caller enqueues
            # more: 4096 emoji are 16 KB of utf8mb4, a quarter of MySQL's TEXT.
            ("body", "{longtext} NOT NULL"),
            ("state", "VARCHAR(16) NOT NULL DEFAULT 'pending'"),
            ("attempts", "{int} NOT NULL DEFAULT 0"),
            ("next_attempt_at", "{double} NOT NULL"),
            ("claimed_by", "{key} NULL"),
            ("claimed_until", "{double} NULL"),
            ("wamid", "{key} NULL"),
            ("last_error", "{text} NULL"),
            ("error_code", "{int} NULL"),
            ("via_template", "{int} NOT NULL DEFAULT 0"),
            ("created_at", "{double} NOT NULL"),
            ("updated_at", "{double} NOT NULL"),
            ("sent_at", "{double} NULL"),
            ("status_at", "{double} NULL"),
        ),
        (
            ("outbound_message_dedupe_key", ("dedupe_key",), True),
            ("outbound_message_issue_key", ("issue_key",), False),
            ("outbound_message_wamid", ("wamid",), False),
            ("outbound_message_state_next_attempt_at", ("state", "next_attempt_at"), False),
            ("outbound_message_conversation_key_state_id", ("conversation_key", "state", "id"), False),
        ),
    ),
    Table(
        "poll_state",
        (
            ("name", "{key} NOT NULL PRIMARY KEY"),
            ("watermark_ms", "{bigint} NULL"),
            ("last_run_at", "{double} NULL"),
            ("last_success_at", "{double} NULL"),
            ("last_error", "{text} NULL"),
            ("runs", "{int} NOT NULL DEFAULT 0"),
        ),
    ),
    Table(
        "handled_comment",
        (
            ("comment_id", "VARCHAR(64) NOT NULL PRIMARY KEY"),
            ("issue_key", "{key} NOT NULL"),
            ("route", "VARCHAR(32) NOT NULL"),
            ("author_kind", "VARCHAR(32) NULL"),
            ("comment_created", "{double} NOT NULL"),
            ("handled_at", "{double} NOT NULL"),
        ),
        (
            (
                "handled_comment_issue_key_route_comment_created",
                ("issue_key", "route", "comment_created"),
                False,
            ),
        ),
    ),
    Table(
        "ai_turn",
        (
            ("id", "{bigpk}"),
            ("issue_key", "{key} NOT NULL"),
            ("service_id", "{key} NOT NULL"),
            ("conversation_key", "{key} NOT NULL"),
            ("trigger_comment_id", "{key} NOT NULL"),
            ("trigger_created", "{double} NOT NULL"),
            ("created_at", "{double} NOT NULL"),
            ("due_at", "{double} NOT NULL"),
            ("state", "VARCHAR(16) NOT NULL DEFAULT 'pending'"),
            ("attempts", "{int} NOT NULL DEFAULT 0"),
            ("next_attempt_at", "{double} NOT NULL"),
            ("claimed_by", "{key} NULL"),
            ("claimed_until", "{double} NULL"),
            ("reply_comment_id", "{key} NULL"),
            ("tokens", "{bigint} NOT NULL DEFAULT 0"),
            ("last_error", "{text} NULL"),
            ("updated_at", "{double} NOT NULL"),
            ("finished_at", "{double} NULL"),
        ),
        (
            ("ai_turn_trigger_comment_id", ("trigger_comment_id",), True),
            ("ai_turn_state_next_attempt_at", ("state", "next_attempt_at"), False),
            ("ai_turn_issue_key_state", ("issue_key", "state"), False),
            ("ai_turn_service_id_finished_at", ("service_id", "finished_at"), False),
        ),
    ),
)


def step_2(db: peewee.Database) -> None:
    create_tables(db, _V2_TABLES)
    # message_status gains `applied`: the outbox marks each status once it has moved the
    # outbound row. No engine has one idempotent spelling of ADD COLUMN (SQLite and MySQL
    # lack IF NOT EXISTS), so look before adding; the step may be re-run after a crash.
    if "applied" not in {c.name for c in db.get_columns("message_status")}:
        run_sql(db, add_column_sql(dialect(db), "message_status", "applied", "{int} NOT NULL DEFAULT 0"))
        # v1 never sent through an outbound queue, so its statuses have nothing to apply
        # to; marking them done keeps them out of the outbox's feed.
        run_sql(db, "UPDATE message_status SET applied = 1")
    add_index(db, "message_status", "message_status_applied_id", ("applied", "id"))


_V3_TABLES = (
    # The ticket lifecycle: each managed issue's status as the poll job last read it, and
    # the tickets a conversation used before its current one.
    Table(
        "issue_state",
        (
            ("issue_key", "{key} NOT NULL PRIMARY KEY"),
            ("status_category", "VARCHAR(32) NOT NULL"),
            ("status_name", "{key} NOT NULL"),
            ("seen_at", "{double} NOT NULL"),
        ),
    ),
    Table(
        "ticket_history",
        (
            ("id", "{bigpk}"),
            ("phone_number", "{key} NOT NULL"),
            ("issue_key", "{key} NOT NULL"),
            ("service_id", "{key} NOT NULL"),
            ("opened_at", "{double} NOT NULL"),
            ("closed_at", "{double} NULL"),
            ("replaced_by", "{key} NULL"),
        ),
        (("ticket_history_phone_number", ("phone_number",), False),),
    ),
)


def step_3(db: peewee.Database) -> None:
    create_tables(db, _V3_TABLES)
