"""Schema step 7: what agents do from Jira — the AI switch, payloads of file and template
messages, and the index that finds live chats.

Frozen: a step must mean the same thing forever, whatever the models look like later.
"""

from __future__ import annotations

import peewee

from storage.engines import dialect, run_sql
from storage.schema_ddl import Table, add_column_sql, add_index, create_tables

_V7_TABLES = (
    # `/ai off` and `/ai on` per ticket. The command comment that decided is kept so an older
    # command, re-read or applied late by another instance, never overrides a newer one.
    Table(
        "ai_switch",
        (
            ("issue_key", "{key} NOT NULL PRIMARY KEY"),
            ("enabled", "{int} NOT NULL"),
            ("comment_id", "VARCHAR(64) NOT NULL"),
            ("comment_created", "{double} NOT NULL"),
            ("updated_at", "{double} NOT NULL"),
        ),
    ),
)


def step_7(db: peewee.Database) -> None:
    create_tables(db, _V7_TABLES)
    # An outbound row that is not plain text (a file, a template) carries what sending it
    # needs as JSON; rows from before are all text and have none.
    if "payload" not in {c.name for c in db.get_columns("outbound_message")}:
        run_sql(db, add_column_sql(dialect(db), "outbound_message", "payload", "{text} NULL"))
    # Tickets whose customer wrote in the last minutes are polled more often: a range on
    # Meta's timestamp.
    add_index(db, "inbound_message", "inbound_message_meta_timestamp", ("meta_timestamp",))
