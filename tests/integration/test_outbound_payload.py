"""Outbound rows that carry a payload (a file, a template), and schema step 7, on every engine."""

from __future__ import annotations

import pytest

from storage import SCHEMA_VERSION, HandledComments, OutboundQueue, bind, migrate, open_database
from storage.models import ALL_MODELS
from storage.outbound_rows import PAYLOAD_MAX_CHARS
from tests.integration.test_storage_outbound import row

FILE = {
    "attachment_id": "10042",
    "filename": "Factura marzo 🌵 \udcff.pdf",  # a lone surrogate, as a filename may hold
    "mime_type": "application/pdf",
    "size": 48_213,
    "media_type": "document",
    "comment_id": "10100",
}


@pytest.fixture
def queue(db, clock):
    return OutboundQueue(db, clock=clock)


def test_a_payload_comes_back_as_enqueued(queue, db):
    template = {"template": "reengage", "comment_id": "10101"}
    queue.enqueue_many([{**row("f:0"), "payload": FILE}, {**row("t:0"), "payload": template}, row("x:0")])
    messages = {m.dedupe_key: m for m in queue.for_issue("WA-1")}
    assert messages["f:0"].payload == FILE
    assert messages["t:0"].payload == template
    assert messages["x:0"].payload is None
    # Stored compact, and readable by anything that reads JSON.
    (text,) = db.execute_sql("SELECT payload FROM outbound_message WHERE dedupe_key = 't:0'").fetchone()
    assert text == '{"template":"reengage","comment_id":"10101"}'
    claimed = queue.claim_due("me")
    assert [(m.dedupe_key, m.payload) for m in claimed] == [("f:0", FILE)]


def test_an_explicit_none_is_no_payload(queue):
    queue.enqueue_many([{**row("n:0"), "payload": None}])
    (message,) = queue.for_issue("WA-1")
    assert message.payload is None


def test_handled_comments_pass_the_payload_through(db, clock):
    handled = HandledComments(db, clock=clock)
    assert handled.record(
        comment_id="10100",
        issue_key="WA-1",
        route="to_customer",
        comment_created=5.0,
        outbound=[{**row("10100:file:0"), "payload": FILE}],
    )
    (message,) = OutboundQueue(db, clock=clock).for_issue("WA-1")
    assert message.payload == FILE


@pytest.mark.parametrize(
    "payload, message",
    [
        (["not", "a", "dict"], "must be a dict, not list"),
        ("{}", "must be a dict, not str"),
        ({"ids": {1, 2}}, "not JSON"),
        ({"size": float("nan")}, "not JSON"),
        ({"pad": "x" * PAYLOAD_MAX_CHARS}, "longer than 8192"),
    ],
)
def test_a_bad_payload_is_refused_and_nothing_is_stored(queue, payload, message):
    with pytest.raises(ValueError, match=message):
        queue.enqueue_many([row("ok"), {**row("bad"), "payload": payload}])
    assert queue.for_issue("WA-1") == []


def test_a_payload_just_under_the_cap_is_kept(queue):
    overhead = len('{"pad":""}')
    payload = {"pad": "x" * (PAYLOAD_MAX_CHARS - overhead)}
    queue.enqueue_many([{**row("big"), "payload": payload}])
    (message,) = queue.for_issue("WA-1")
    assert message.payload == payload


@pytest.mark.parametrize("stored", ["{not json", "[1, 2]", '"text"'])
def test_an_unreadable_stored_payload_loads_as_none(queue, db, stored):
    queue.enqueue_many([{**row("u:0"), "payload": FILE}])
    db.execute_sql(f"UPDATE outbound_message SET payload = {db.param}", (stored,))
    (message,) = queue.for_issue("WA-1")
    assert message.payload is None
    assert message.dedupe_key == "u:0"


# -- schema step 7 -----------------------------------------------------------------------------


def test_a_v6_database_gets_step_7_and_keeps_its_rows(db_url, clock):
    database = open_database(db_url)
    try:
        assert migrate(database, target=6) == 6
        p = database.param
        database.execute_sql(
            "INSERT INTO outbound_message (dedupe_key, issue_key, conversation_key, phone_number_id, kind, "
            "body, next_attempt_at, created_at, updated_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
            ("old:0", "WA-1", "+52155", "1001", "agent", "hola", 0.0, 1.0, 1.0),
        )
        columns = {c.name for c in database.get_columns("outbound_message")}
        assert "payload" not in columns and "ai_switch" not in database.get_tables()
        assert migrate(database) == SCHEMA_VERSION >= 7
        assert migrate(database) == SCHEMA_VERSION  # a no-op the second time
        versions = [v for (v,) in database.execute_sql("SELECT version FROM schema_version").fetchall()]
        assert sorted(versions) == list(range(1, SCHEMA_VERSION + 1))
        for model in ALL_MODELS:
            columns = {c.name for c in database.get_columns(model._meta.table_name)}
            assert columns == {f.column_name for f in model._meta.sorted_fields}, model
        indexes = {i.name: i.columns for i in database.get_indexes("inbound_message")}
        assert indexes["inbound_message_meta_timestamp"] == ["meta_timestamp"]
        bind(database)
        (old,) = OutboundQueue(database, clock=clock).for_issue("WA-1")
        assert (old.dedupe_key, old.body, old.payload) == ("old:0", "hola", None)
    finally:
        database.close()


def test_step_7_cut_short_runs_again(db_url):
    from storage.schema_v7 import step_7

    database = open_database(db_url)
    try:
        migrate(database, target=6)
        step_7(database)  # as if it had run and the version row had not been written
        step_7(database)
        assert migrate(database) == SCHEMA_VERSION
        assert "payload" in {c.name for c in database.get_columns("outbound_message")}
    finally:
        database.close()
