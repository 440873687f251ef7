"""Schema step 8: customer notices — the status each ticket was last seen in, satisfaction
ratings, and the indexes that find a conversation's survey and a ticket's delivered messages.

Frozen: a step must mean the same thing forever, whatever the models look like later.
"""

from __future__ import annotations

import peewee

from storage.schema_ddl import Table, add_index, create_tables

_V8_TABLES = (
    # The status the poll last saw per ticket and how often the ticket has entered a new one:
    # the count keys the notices, so re-reading a status adds nothing and Done → reopened →
    # Done is a second entry. Jira's status names are free text, hence 255 and unindexed.
    Table(
        "status_watch",
        (
            ("issue_key", "{key} NOT NULL PRIMARY KEY"),
            ("status_name", "VARCHAR(255) NOT NULL"),
            ("entries", "{int} NOT NULL"),
            ("updated_at", "{double} NOT NULL"),
        ),
    ),
    # One rating per survey sent (the outbound row it answers): tapping again replaces it.
    Table(
        "csat_rating",
        (
            ("id", "{bigpk}"),
            ("request_id", "{bigint} NOT NULL"),
            ("service_id", "{key} NOT NULL"),
            ("issue_key", "{key} NOT NULL"),
            ("conversation_key", "{key} NOT NULL"),
            ("wamid", "{key} NOT NULL"),
            ("rating", "{int} NOT NULL"),
            ("rated_at", "{double} NOT NULL"),
        ),
        (
            ("csat_rating_request_id", ("request_id",), True),
            ("csat_rating_service_id_rated_at", ("service_id", "rated_at"), False),
        ),
    ),
)


def step_8(db: peewee.Database) -> None:
    create_tables(db, _V8_TABLES)
    # A rating without a quoted message answers the conversation's newest survey: a
    # conversation's rows of one kind, newest id first, without walking all its messages.
    add_index(
        db,
        "outbound_message",
        "outbound_message_conversation_key_kind_id",
        ("conversation_key", "kind", "id"),
    )
    # "Is this the ticket's first delivered customer message?" looks up a ticket's done rows;
    # inbound_message had no index on issue_key at all.
    add_index(db, "inbound_message", "inbound_message_issue_key_state", ("issue_key", "state"))
