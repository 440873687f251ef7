"""Storage on real engines: schema, inbound queue, mappings, leases, failure translation.

Every test runs on SQLite, PostgreSQL and MariaDB (the last two when their URL variables are
set), each in a database of its own created for the test.
"""

from __future__ import annotations

import random
import socket
import threading
import time

import peewee
import pytest

from bot.rules.events import InboundMessage, OtherEvent, ParsedBatch, StatusEvent
from storage import (
    SCHEMA_VERSION,
    InboundQueue,
    Leases,
    MappingExists,
    Mappings,
    StorageUnavailable,
    migrate,
    open_database,
    ping,
)
from storage.engines import dialect
from storage.models import ALL_MODELS
from tests.support.databases import ENV_VARS, engine_params, server_url


def message(
    wamid: str,
    key: str = "+525512345678",
    ts: int = 1_700_000_000,
    text: str = "hola",
    name: str | None = "Ana",
) -> InboundMessage:
    raw = {"from": key.lstrip("+"), "id": wamid, "timestamp": str(ts), "type": "text", "text": {"body": text}}
    return InboundMessage(
        wamid=wamid,
        conversation_key=key,
        wa_id=key.lstrip("+"),
        user_id=None,
        phone_number_id="1001",
        display_phone_number="15550001",
        profile_name=name,
        timestamp=ts,
        kind="text",
        raw=raw,
    )


def status(wamid: str, value: str) -> StatusEvent:
    return StatusEvent(
        wamid=wamid,
        status=value,
        timestamp=1_700_000_000,
        recipient_id="52155",
        phone_number_id="1001",
        errors=(),
        raw={"id": wamid, "status": value},
    )


def other(n: int) -> OtherEvent:
    return OtherEvent(
        field="smb_message_echoes", dedupe_key=f"{n:064x}", phone_number_id="1001", raw={"n": n}
    )


def run_threads(db, count: int, work) -> list:
    """Run work(i) in `count` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            db.close()  # peewee's connection for this thread

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]
    return results


# -- schema -----------------------------------------------------------------------------------


def test_migrate_creates_every_table_and_is_idempotent(db):
    assert migrate(db) == SCHEMA_VERSION
    assert migrate(db) == SCHEMA_VERSION
    tables = set(db.get_tables())
    assert {m._meta.table_name for m in ALL_MODELS} | {"schema_version"} <= tables
    versions = [v for (v,) in db.execute_sql("SELECT version FROM schema_version").fetchall()]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_migrate_from_many_connections_at_once(db_url):
    database = open_database(db_url)
    try:
        results = run_threads(database, 6, lambda i: migrate(database))
        assert results == [SCHEMA_VERSION] * 6
        rows = database.execute_sql("SELECT COUNT(*) FROM schema_version").fetchone()[0]
        assert rows == SCHEMA_VERSION
    finally:
        database.close()


def test_models_match_the_tables(db):
    for model in ALL_MODELS:
        columns = {c.name for c in db.get_columns(model._meta.table_name)}
        assert columns == {f.column_name for f in model._meta.sorted_fields}, model


def test_mapping_table_keeps_the_seed_layout(db):
    columns = {c.name: c for c in db.get_columns("whatsapp_ticket_mapping")}
    assert list(columns) == [
        "id",
        "phone_number",
        "issue_key",
        "service_id",
        "user_id",
        "created_at",
        "updated_at",
    ]
    assert columns["id"].primary_key
    assert [n for n, c in columns.items() if c.null] == ["user_id"]
    assert "char" in columns["phone_number"].data_type.lower()
    assert any(t in columns["created_at"].data_type.lower() for t in ("timestamp", "datetime"))
    indexes = {
        tuple(i.columns): i.unique for i in db.get_indexes("whatsapp_ticket_mapping") if i.columns != ["id"]
    }
    assert indexes == {("phone_number",): True, ("issue_key",): False, ("user_id", "service_id"): False}


# -- inbound queue ----------------------------------------------------------------------------


def test_store_batch_ignores_redeliveries(db, clock):
    queue = InboundQueue(db, clock=clock)
    batch = ParsedBatch(
        messages=(message("w1"), message("w2"), message("w1")),
        statuses=(status("o1", "sent"), status("o1", "delivered")),
        others=(other(1),),
    )
    first = queue.store_batch(batch)
    assert (first.messages_new, first.messages_duplicate, first.statuses_new, first.others_new) == (
        2,
        1,
        2,
        1,
    )
    for _ in range(2):
        again = queue.store_batch(batch)
        assert (again.messages_new, again.messages_duplicate, again.statuses_new, again.others_new) == (
            0,
            3,
            0,
            0,
        )
    assert [m.wamid for m in queue.pending_for("+525512345678")] == ["w1", "w2"]
    assert queue.statuses_for("o1") == ["sent", "delivered"]
    assert db.execute_sql("SELECT COUNT(*) FROM webhook_event").fetchone()[0] == 1
    assert queue.store_batch(ParsedBatch()).messages_new == 0


def test_large_batch_is_one_quick_transaction(db, clock):
    queue = InboundQueue(db, clock=clock)
    batch = ParsedBatch(
        messages=tuple(message(f"w{i:04d}", key=f"+52{i % 50}", ts=1000 + i) for i in range(1000))
    )
    started = time.monotonic()
    assert queue.store_batch(batch).messages_new == 1000
    assert time.monotonic() - started < 10
    assert queue.stats()["pending"] == 1000


def test_queued_message_round_trips_unicode(db, clock):
    queue = InboundQueue(db, clock=clock)
    text = "Hola 👋🏽 çava? 你好 — 𝄞"
    queue.store_batch(ParsedBatch(messages=(message("w1", text=text, name="Zoë 🌵"),)))
    (row,) = queue.pending_for("+525512345678")
    assert row.raw["text"]["body"] == text
    assert row.profile_name == "Zoë 🌵"
    assert (row.wamid, row.kind, row.timestamp, row.attempts, row.started) == (
        "w1",
        "text",
        1_700_000_000,
        0,
        0,
    )
    assert row.next_attempt_at == clock.now and row.last_error is None


def test_pending_for_orders_by_meta_timestamp_then_arrival(db, clock):
    queue = InboundQueue(db, clock=clock)
    queue.store_batch(ParsedBatch(messages=(message("late", ts=300), message("b", ts=100))))
    queue.store_batch(
        ParsedBatch(
            messages=(
                message("early", ts=50),
                message("c", ts=100),
                message("other", key="+15550000000", ts=1),
            )
        )
    )
    assert [m.wamid for m in queue.pending_for("+525512345678")] == ["early", "b", "c", "late"]
    assert [m.wamid for m in queue.pending_for("+15550000000")] == ["other"]


def test_due_conversations_oldest_first_and_limited(db, clock):
    queue = InboundQueue(db, clock=clock)
    for i, key in enumerate(["+1", "+2", "+3"]):
        queue.store_batch(ParsedBatch(messages=(message(f"w{i}", key=key),)))
    assert queue.due_conversations() == ["+1", "+2", "+3"]
    assert queue.due_conversations(limit=2) == ["+1", "+2"]
    (row,) = queue.pending_for("+2")
    queue.mark_done(row.id, issue_key="WA-1", comment_id="10001")
    assert queue.due_conversations() == ["+1", "+3"]


def test_retry_holds_back_the_whole_conversation(db, clock):
    queue = InboundQueue(db, clock=clock)
    queue.store_batch(
        ParsedBatch(messages=(message("a", ts=1), message("b", ts=2), message("x", key="+15550000000")))
    )
    first, _second = queue.pending_for("+525512345678")
    queue.mark_started(first.id)
    assert queue.mark_retry(first.id, error="Jira 503", delay_seconds=30, count_attempt=True) == 1
    assert queue.mark_retry(first.id, error="429", delay_seconds=5, count_attempt=False) == 1
    assert queue.due_conversations() == ["+15550000000"]
    rows = queue.pending_for("+525512345678")
    assert [r.next_attempt_at for r in rows] == [clock.now + 30] * 2  # shorter delay: no pull-in
    assert (rows[0].attempts, rows[0].started, rows[0].last_error) == (1, 1, "429")
    # A message arriving during the back-off waits with the conversation, never overtakes.
    clock.advance(10)
    queue.store_batch(ParsedBatch(messages=(message("c", ts=3),)))
    assert "+525512345678" not in queue.due_conversations()
    clock.advance(20)
    assert queue.due_conversations() == ["+525512345678", "+15550000000"]
    assert [r.wamid for r in queue.pending_for("+525512345678")] == ["a", "b", "c"]
    with pytest.raises(KeyError):
        queue.mark_retry(999_999, error="gone", delay_seconds=1, count_attempt=True)


def test_dead_rows_are_counted_listed_and_requeued(db, clock):
    queue = InboundQueue(db, clock=clock)
    queue.store_batch(ParsedBatch(messages=tuple(message(f"w{i}", key=f"+{i}") for i in range(4))))
    rows = [queue.pending_for(f"+{i}")[0] for i in range(4)]
    queue.mark_started(rows[0].id)
    queue.mark_done(rows[0].id, issue_key="WA-1", comment_id=None)
    queue.mark_retry(rows[1].id, error="timeout", delay_seconds=60, count_attempt=True)
    clock.advance(1)
    queue.mark_dead(rows[2].id, error="400 " + "x" * 5000)
    clock.advance(1)
    queue.mark_dead(rows[3].id, error="rejected")
    clock.advance(5)
    stats = queue.stats()
    assert stats == {
        "pending": 1,
        "parked": 0,
        "dead": 2,
        "done": 1,
        "retrying": 1,
        "oldest_pending_age_seconds": 7.0,
        "oldest_due_lag_seconds": None,  # the retried row waits out its back-off
    }
    failures = queue.recent_failures(limit=10)
    assert [f["wamid"] for f in failures] == ["w3", "w2", "w1"]
    assert failures[0]["state"] == "dead" and failures[2]["attempts"] == 1
    assert len(failures[1]["last_error"]) <= 2000
    assert queue.requeue_dead([rows[3].id]) == 1
    assert queue.requeue_dead([]) == 0
    assert queue.requeue_dead() == 1
    assert queue.stats()["dead"] == 0
    assert set(queue.due_conversations()) == {"+2", "+3"}
    assert queue.pending_for("+3")[0].attempts == 0


def test_concurrent_overlapping_deliveries_store_each_message_once(db, clock):
    wamids = [f"w{i:03d}" for i in range(60)]

    def deliver(i: int):
        queue = InboundQueue(db, clock=clock)
        rng = random.Random(i)
        chosen = rng.sample(wamids, 40)  # overlapping subsets, each in its own order
        total = 0
        for start in range(0, 40, 10):
            batch = ParsedBatch(
                messages=tuple(
                    message(w, key=f"+{int(w[1:]) % 7}", ts=int(w[1:])) for w in chosen[start : start + 10]
                ),
                statuses=tuple(status(w, "read") for w in chosen[start : start + 10]),
            )
            total += queue.store_batch(batch).messages_new
        return total

    news = run_threads(db, 8, deliver)
    stored = db.execute_sql("SELECT wamid FROM inbound_message").fetchall()
    assert len(stored) == len({w for (w,) in stored}) == sum(news)
    assert db.execute_sql("SELECT COUNT(*) FROM message_status").fetchone()[0] == len(stored)


# -- mappings ---------------------------------------------------------------------------------


def test_mappings_create_get_repoint(db, clock):
    mappings = Mappings(db, clock=clock)
    assert mappings.get("+525512345678") is None
    made = mappings.create("+525512345678", "WA-1", "support", user_id="BSUID.1")
    assert mappings.get("+525512345678") == made
    assert made.created_at.tzinfo is not None
    assert made.created_at.timestamp() == pytest.approx(clock.now, abs=1e-3)
    with pytest.raises(MappingExists):
        mappings.create("+525512345678", "WA-2", "support")
    clock.advance(60)
    mappings.repoint("+525512345678", "WA-9")
    got = mappings.get("+525512345678")
    assert (got.issue_key, got.created_at) == ("WA-9", made.created_at)
    assert got.updated_at.timestamp() == pytest.approx(clock.now, abs=1e-3)
    with pytest.raises(KeyError):
        mappings.repoint("+1999", "WA-3")


def test_ticket_creation_notes_keep_the_first_start(db, clock):
    mappings = Mappings(db, clock=clock)
    assert mappings.creation_started_at("+52") is None
    assert mappings.note_creation_started("+52", "support") == clock.now
    first = clock.now
    clock.advance(30)
    assert mappings.note_creation_started("+52", "support") == first
    assert mappings.creation_started_at("+52") == first
    mappings.clear_creation("+52")
    assert mappings.creation_started_at("+52") is None


# -- leases -----------------------------------------------------------------------------------


def test_lease_owners_expiry_and_renewal(db, clock):
    leases = Leases(db, clock=clock)
    assert leases.holder("poll") is None
    assert leases.acquire("poll", "a", 30)
    assert leases.acquire("poll", "a", 30)  # renewing at the same instant still succeeds
    assert not leases.acquire("poll", "b", 30)
    assert leases.holder("poll") == ("a", clock.now + 30)
    clock.advance(20)
    assert leases.acquire("poll", "a", 30)  # renewed: good until now + 30
    clock.advance(20)
    assert not leases.acquire("poll", "b", 30)
    clock.advance(11)
    assert leases.holder("poll") is None
    assert leases.acquire("poll", "b", 30)
    assert leases.holder("poll") == ("b", clock.now + 30)
    leases.release("poll", "a")  # not a's any more: nothing happens
    assert leases.holder("poll")[0] == "b"
    leases.release("poll", "b")
    assert leases.acquire("poll", "a", 30)


def test_concurrent_acquire_has_exactly_one_winner(db, clock):
    leases = Leases(db, clock=clock)
    assert sum(run_threads(db, 8, lambda i: leases.acquire("poll", f"owner-{i}", 30))) == 1
    clock.advance(31)  # expired: again exactly one of the others takes it over
    assert sum(run_threads(db, 8, lambda i: leases.acquire("poll", f"late-{i}", 30))) == 1


# -- failures ---------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:{port}/test",
        "postgres://postgres@127.0.0.1:{port}/test",
        "mysql://root@127.0.0.1:{port}/test",
    ],
)
def test_unreachable_server_is_storage_unavailable(url):
    database = open_database(url.format(port=_closed_port()))
    with pytest.raises(StorageUnavailable):
        ping(database)
    with pytest.raises(StorageUnavailable):
        InboundQueue(database).store_batch(ParsedBatch(messages=(message("w1"),)))
    with pytest.raises(StorageUnavailable):
        migrate(database)


def test_unwritable_sqlite_path_is_storage_unavailable(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    database = open_database(f"sqlite:///{tmp_path}/a-file/sub/wajira.db")
    with pytest.raises(StorageUnavailable):
        ping(database)
    with pytest.raises(StorageUnavailable):
        Leases(database).acquire("poll", "a", 30)


def test_deadlock_victims_are_retried_other_errors_are_not(tmp_path):
    import pymysql

    from storage.transactions import in_transaction_retrying, is_conflict

    deadlock = peewee.OperationalError(pymysql.err.OperationalError(1213, "Deadlock found"))
    assert is_conflict(deadlock)
    assert not is_conflict(peewee.OperationalError(pymysql.err.OperationalError(1205, "wait")))
    database = open_database(f"sqlite:///{tmp_path}/wajira.db")
    calls = []

    def work():
        calls.append(1)
        if len(calls) < 3:
            raise deadlock
        return "stored"

    assert in_transaction_retrying(database, work) == "stored" and len(calls) == 3
    with pytest.raises(peewee.OperationalError):
        in_transaction_retrying(
            database, lambda: (_ for _ in ()).throw(peewee.OperationalError("disk I/O error"))
        )
    database.close()


def test_unknown_scheme_is_named():
    with pytest.raises(ValueError, match="'oracle'"):
        open_database("oracle://scott:tiger@db/orcl")


def test_sqlite_file_is_created_with_wal(tmp_path):
    database = open_database(f"sqlite:///{tmp_path}/new/dir/wajira.db")
    migrate(database)
    assert (tmp_path / "new/dir/wajira.db").exists()
    assert database.pragma("journal_mode") == "wal"
    assert database.pragma("synchronous") == 2  # FULL
    assert database.pragma("foreign_keys") == 1
    database.close()


def test_sqlite_memory_is_one_database_for_all_threads():
    database = open_database("sqlite:///:memory:")
    migrate(database)
    queue = InboundQueue(database)
    queue.store_batch(ParsedBatch(messages=(message("w1"),)))
    seen = run_threads(database, 2, lambda i: [m.wamid for m in queue.pending_for("+525512345678")])
    assert seen == [["w1"], ["w1"]]
    database.close()


@pytest.mark.parametrize("db_engine", [p for p in engine_params() if p.values[0] != "sqlite"], indirect=True)
def test_dropped_connection_reconnects_on_the_next_call(db, db_engine):
    base = server_url(db_engine)
    if dialect(db) == "postgres":
        import psycopg2

        pid = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        admin = psycopg2.connect(base)
        admin.autocommit = True
        admin.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
    else:
        from urllib.parse import urlsplit

        import pymysql

        cid = db.execute_sql("SELECT CONNECTION_ID()").fetchone()[0]
        parts = urlsplit(base)
        admin = pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
        )
        admin.cursor().execute(f"KILL {int(cid)}")
    admin.close()
    time.sleep(0.3)  # termination is signalled, not awaited
    with pytest.raises(StorageUnavailable):
        ping(db)
    ping(db)  # a new connection
    assert InboundQueue(db).stats()["pending"] == 0


def test_env_var_names_are_the_documented_ones():
    assert ENV_VARS == {"postgres": "WAJIRA_TEST_POSTGRES_URL", "mysql": "WAJIRA_TEST_MYSQL_URL"}
