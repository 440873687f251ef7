"""The schema steps: frozen DDL per version, per engine.

A step must mean the same thing forever, whatever the models look like later, so it holds
DDL rather than calling `Model.create_table()`; every statement is idempotent, so a step cut
short by a crash simply runs again. `storage.schema.migrate` applies them in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import peewee

from storage.db import dialect

_TYPES = {
    "sqlite": {
        "pk": "INTEGER NOT NULL PRIMARY KEY",
        "bigpk": "INTEGER NOT NULL PRIMARY KEY",
        "int": "INTEGER",
        "bigint": "INTEGER",
        "double": "REAL",
        "text": "TEXT",
        "longtext": "TEXT",
        "datetime": "DATETIME",
        "key": "VARCHAR(191)",
    },
    "postgres": {
        "pk": "SERIAL NOT NULL PRIMARY KEY",
        "bigpk": "BIGSERIAL NOT NULL PRIMARY KEY",
        "int": "INTEGER",
        "bigint": "BIGINT",
        "double": "DOUBLE PRECISION",
        "text": "TEXT",
        "longtext": "TEXT",
        "datetime": "TIMESTAMP",
        "key": "VARCHAR(191)",
    },
    "mysql": {
        "pk": "INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY",
        "bigpk": "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
        "int": "INTEGER",
        "bigint": "BIGINT",
        "double": "DOUBLE",
        "text": "TEXT",
        # A 3 MB webhook body does not fit MySQL's 64 KB TEXT.
        "longtext": "LONGTEXT",
        "datetime": "DATETIME(6)",
        "key": "VARCHAR(191)",
    },
}
# utf8mb4 whatever the server's default; binary collation so keys compare exactly as on
# SQLite and PostgreSQL (wamids are case-sensitive).
_MYSQL_TABLE_OPTIONS = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    """(column, "{type} constraints") with {type} from _TYPES."""
    indexes: tuple[tuple[str, tuple[str, ...], bool], ...] = ()
    """(index name, columns, unique)."""


_SCHEMA_VERSION_TABLE = _Table(
    "schema_version",
    (
        ("version", "{int} NOT NULL PRIMARY KEY"),
        ("applied_at", "{double} NOT NULL"),
    ),
)

_V1_TABLES = (
    _Table(
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
    _Table(
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
    _Table(
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
    _Table(
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
    _Table(
        "lease",
        (
            ("name", "{key} NOT NULL PRIMARY KEY"),
            ("owner", "{key} NOT NULL"),
            ("expires_at", "{double} NOT NULL"),
            ("acquired_at", "{double} NOT NULL"),
        ),
    ),
    _Table(
        "ticket_creation",
        (
            ("conversation_key", "{key} NOT NULL PRIMARY KEY"),
            ("service_id", "{key} NOT NULL"),
            ("started_at", "{double} NOT NULL"),
        ),
    ),
)


def _statements(kind: str, table: _Table) -> list[str]:
    q = "`%s`" if kind == "mysql" else '"%s"'
    types = _TYPES[kind]
    parts = [f"{q % name} {spec.format(**types)}" for name, spec in table.columns]
    if kind == "mysql":
        # MySQL has no CREATE INDEX IF NOT EXISTS; inside CREATE TABLE they come and go
        # with the table, so the whole statement stays idempotent.
        for name, cols, unique in table.indexes:
            col_list = ", ".join(q % c for c in cols)
            parts.append(f"{'UNIQUE KEY' if unique else 'KEY'} {q % name} ({col_list})")
    options = _MYSQL_TABLE_OPTIONS if kind == "mysql" else ""
    out = [f"CREATE TABLE IF NOT EXISTS {q % table.name} ({', '.join(parts)}){options}"]
    if kind != "mysql":
        for name, cols, unique in table.indexes:
            col_list = ", ".join(q % c for c in cols)
            out.append(
                f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {q % name} "
                f"ON {q % table.name} ({col_list})"
            )
    return out


def _create(db: peewee.Database, tables: tuple[_Table, ...]) -> None:
    kind = dialect(db)
    for table in tables:
        for sql in _statements(kind, table):
            db.execute_sql(sql)


def _v1(db: peewee.Database) -> None:
    _create(db, _V1_TABLES)


_V2_TABLES = (
    _Table(
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
    _Table(
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
    _Table(
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
    _Table(
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


def _v2(db: peewee.Database) -> None:
    _create(db, _V2_TABLES)
    # message_status gains `applied`: the outbox marks each status once it has moved the
    # outbound row. No engine has one idempotent spelling of ADD COLUMN (SQLite and MySQL
    # lack IF NOT EXISTS), so look before adding; the step may be re-run after a crash.
    if "applied" not in {c.name for c in db.get_columns("message_status")}:
        db.execute_sql(_add_column_sql(dialect(db), "message_status", "applied", "{int} NOT NULL DEFAULT 0"))
        # v1 never sent through an outbound queue, so its statuses have nothing to apply
        # to; marking them done keeps them out of the outbox's feed.
        db.execute_sql("UPDATE message_status SET applied = 1")
    _add_index(db, "message_status", "message_status_applied_id", ("applied", "id"))


def _add_column_sql(kind: str, table: str, column: str, spec: str) -> str:
    q = "`%s`" if kind == "mysql" else '"%s"'
    return f"ALTER TABLE {q % table} ADD COLUMN {q % column} {spec.format(**_TYPES[kind])}"


def _add_index(db: peewee.Database, table: str, name: str, columns: tuple[str, ...]) -> None:
    kind = dialect(db)
    q = "`%s`" if kind == "mysql" else '"%s"'
    col_list = ", ".join(q % c for c in columns)
    if kind != "mysql":
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {q % name} ON {q % table} ({col_list})")
    elif name not in {i.name for i in db.get_indexes(table)}:
        db.execute_sql(f"CREATE INDEX {q % name} ON {q % table} ({col_list})")


_V3_TABLES = (
    # The ticket lifecycle: each managed issue's status as the poll job last read it, and
    # the tickets a conversation used before its current one.
    _Table(
        "issue_state",
        (
            ("issue_key", "{key} NOT NULL PRIMARY KEY"),
            ("status_category", "VARCHAR(32) NOT NULL"),
            ("status_name", "{key} NOT NULL"),
            ("seen_at", "{double} NOT NULL"),
        ),
    ),
    _Table(
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


def _v3(db: peewee.Database) -> None:
    _create(db, _V3_TABLES)


_V4_TABLES = (
    # Inbound media to download from Graph and attach to the ticket, one row per medium.
    _Table(
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


def _v4(db: peewee.Database) -> None:
    _create(db, _V4_TABLES)


_V5_TABLES = (
    # Coexistence: the names the business saved for its contacts in the WhatsApp Business App
    # (`smb_app_state_sync`), per business number; a removal keeps its row (name NULL) so an
    # older "add" delivered late cannot bring the name back.
    _Table(
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


def _v5(db: peewee.Database) -> None:
    _create(db, _V5_TABLES)
    # inbound_message learns where a message came from (customer, echo, history) and whether
    # the business sent it; rows from before are all customers' own messages.
    columns = {c.name for c in db.get_columns("inbound_message")}
    kind = dialect(db)
    if "origin" not in columns:
        db.execute_sql(
            _add_column_sql(kind, "inbound_message", "origin", "VARCHAR(16) NOT NULL DEFAULT 'customer'")
        )
    if "from_business" not in columns:
        db.execute_sql(_add_column_sql(kind, "inbound_message", "from_business", "{int} NOT NULL DEFAULT 0"))


_V6_TABLES = (
    # One row per conversation with pending inbound messages, bounds on their ids and due
    # times: the inbox finds due conversations without grouping the whole backlog.
    _Table(
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


def _v6(db: peewee.Database) -> None:
    _create(db, _V6_TABLES)
    # The pending backlog as it stands; a re-run after a crash skips what is there already.
    insert = {"sqlite": "INSERT OR IGNORE INTO", "mysql": "INSERT IGNORE INTO"}.get(
        dialect(db), "INSERT INTO"
    )
    conflict = " ON CONFLICT DO NOTHING" if dialect(db) == "postgres" else ""
    db.execute_sql(
        f"{insert} inbound_conversation (conversation_key, first_id, due_at, version) "
        "SELECT conversation_key, MIN(id), MAX(next_attempt_at), 0 FROM inbound_message "
        f"WHERE state = 'pending' GROUP BY conversation_key{conflict}"
    )


STEPS: tuple[tuple[int, Callable[[peewee.Database], None]], ...] = (
    (1, _v1),
    (2, _v2),
    (3, _v3),
    (4, _v4),
    (5, _v5),
    (6, _v6),
)
