"""The outbound queue, the status feed and the v1 → v2 migration, on every engine."""

from __future__ import annotations

import threading
import time

import pytest

from bot.rules.events import ParsedBatch, StatusEvent
from storage import SCHEMA_VERSION, InboundQueue, OutboundQueue, StatusFeed, bind, migrate, open_database
from storage.models import ALL_MODELS
from tests.integration.test_storage import run_threads


@pytest.fixture
def queue(db, clock):
    return OutboundQueue(db, clock=clock)


def row(key: str, conv: str = "+52155", body: str = "hola", issue: str = "WA-1", kind: str = "agent") -> dict:
    return {
        "dedupe_key": key,
        "issue_key": issue,
        "conversation_key": conv,
        "to_wa_id": conv.lstrip("+"),
        "to_user_id": None,
        "phone_number_id": "1001",
        "kind": kind,
        "body": body,
    }


def keys(messages) -> list[str]:
    return [m.dedupe_key for m in messages]


# -- enqueue ----------------------------------------------------------------------------------


def test_enqueue_ignores_known_dedupe_keys(queue, clock):
    assert queue.enqueue_many([row("c1:0", body="part 1 👋🏽"), row("c1:1"), row("c1:0", body="again")]) == 2
    assert queue.enqueue_many([row("c1:0"), row("c1:1"), row("c2:0")]) == 1
    assert queue.enqueue_many([]) == 0
    first = queue.for_issue("WA-1")
    assert keys(first) == ["c1:0", "c1:1", "c2:0"]
    m = first[0]
    assert (
        m.body,
        m.state,
        m.attempts,
        m.next_attempt_at,
        m.created_at,
        m.via_template,
        m.wamid,
        m.sent_at,
        m.to_wa_id,
        m.kind,
    ) == ("part 1 👋🏽", "pending", 0, clock.now, clock.now, False, None, None, "52155", "agent")
    assert queue.get(m.id) == m and queue.get(999_999) is None


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"body": None}, "'body'"),
        ({"issue_key": ""}, "'issue_key'"),
        ({"phone_number_id": None}, "'phone_number_id'"),
        ({"dedupe_key": "k" * 192}, "longer than 191"),
        ({"colour": "red"}, "unknown outbound field"),
    ],
)
def test_enqueue_rejects_malformed_rows_and_stores_nothing(queue, bad, message):
    with pytest.raises(ValueError, match=message):
        queue.enqueue_many([row("ok"), {**row("bad"), **bad}])
    assert queue.for_issue("WA-1") == []


def test_enqueue_inside_a_transaction_needs_txn_ok(db, queue):
    with db.atomic():
        with pytest.raises(RuntimeError, match="txn_ok"):
            queue.enqueue_many([row("a")])
    with pytest.raises(ZeroDivisionError):
        with db.atomic():
            assert queue.enqueue_many([row("a")], txn_ok=True) == 1
            raise ZeroDivisionError  # the caller's transaction fails: the rows go with it
    assert queue.for_issue("WA-1") == []
    with db.atomic():
        queue.enqueue_many([row("a")], txn_ok=True)
    assert keys(queue.for_issue("WA-1")) == ["a"]


# -- claiming ---------------------------------------------------------------------------------


def test_claim_keeps_each_conversation_in_order(queue, clock):
    queue.enqueue_many([row("a1", "+1"), row("a2", "+1"), row("a3", "+1"), row("a4", "+1")])
    queue.enqueue_many([row("b1", "+2")])
    first = queue.claim_due("w1", lease_seconds=60)
    assert keys(first) == ["a1", "b1"]
    assert {m.state for m in first} == {"sending"}
    assert queue.claim_due("w2") == []  # a1 in flight holds a2 back
    queue.mark_sent(first[0].id, wamid="wamid.a1")
    (a2,) = queue.claim_due("w1")
    assert a2.dedupe_key == "a2"
    # A back-off holds back the rows behind it, and counts only when asked to.
    assert queue.mark_retry(a2.id, error="130429", code=130429, delay_seconds=30, count_attempt=False) == 0
    assert queue.claim_due("w1") == []
    clock.advance(30)
    (a2,) = queue.claim_due("w1")
    assert queue.mark_retry(a2.id, error="timeout", code=None, delay_seconds=0, count_attempt=True) == 1
    (a2,) = queue.claim_due("w1")
    assert (a2.attempts, a2.last_error) == (1, "timeout")
    # Held and failed rows are finished: the conversation moves on past them.
    queue.mark_held(a2.id, reason="window closed, no template")
    (a3,) = queue.claim_due("w1")
    queue.mark_failed(a3.id, error="131026 undeliverable", code=131026)
    (a4,) = queue.claim_due("w1")
    queue.mark_sent(a4.id, wamid="wamid.a4", via_template=True)
    got = {m.dedupe_key: m for m in queue.for_issue("WA-1")}
    assert got["a2"].state == "held" and got["a2"].last_error == "window closed, no template"
    assert (got["a3"].state, got["a3"].error_code) == ("failed", 131026)
    assert (got["a4"].state, got["a4"].wamid, got["a4"].via_template, got["a4"].sent_at) == (
        "sent",
        "wamid.a4",
        True,
        clock.now,
    )
    assert queue.by_wamid("wamid.a1").dedupe_key == "a1"
    with pytest.raises(KeyError):
        queue.mark_retry(999_999, error="x", code=None, delay_seconds=1, count_attempt=True)


def test_claim_respects_limit_and_due_time(queue, clock):
    queue.enqueue_many([row(f"m{i}", f"+{i}") for i in range(5)])
    assert keys(queue.claim_due("w", limit=2)) == ["m0", "m1"]
    assert keys(queue.claim_due("w", limit=10)) == ["m2", "m3", "m4"]
    queue.enqueue_many([row("later", "+9")])
    clock.advance(-1)  # enqueued "in the future" relative to this claimer's clock
    assert queue.claim_due("w") == []


def test_concurrent_claimers_get_each_row_once_and_in_order(db, clock):
    conversations, per_conversation = 25, 4
    OutboundQueue(db, clock=clock).enqueue_many(
        [row(f"c{c}:{p}", f"+{c}") for p in range(per_conversation) for c in range(conversations)]
    )
    total = conversations * per_conversation
    lock = threading.Lock()
    sent_order: list[tuple[str, int]] = []

    def work(i: int) -> list[int]:
        queue = OutboundQueue(db, clock=clock)
        mine: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            claimed = queue.claim_due(f"worker-{i}", limit=3)
            if not claimed:
                stats = queue.stats()
                if stats["pending"] == 0 and stats["sending"] == 0:
                    return mine
                time.sleep(0.005)
                continue
            for m in claimed:
                mine.append(m.id)
                with lock:
                    sent_order.append((m.conversation_key, m.id))
                queue.mark_sent(m.id, wamid=f"wamid.{m.id}")
        raise AssertionError("claimers did not drain the queue")

    claimed = [i for ids in run_threads(db, 8, work) for i in ids]
    assert len(claimed) == len(set(claimed)) == total
    for c in range(conversations):
        ids = [i for key, i in sent_order if key == f"+{c}"]
        assert ids == sorted(ids) and len(ids) == per_conversation
    assert OutboundQueue(db, clock=clock).stats()["sent"] == total


def test_recover_stale_makes_crashed_sends_unknown_never_resent(queue, clock):
    queue.enqueue_many([row("a1", "+1"), row("a2", "+1"), row("b1", "+2")])
    claimed = queue.claim_due("dead-worker", lease_seconds=60)
    clock.advance(30)
    assert queue.recover_stale() == []
    queue.mark_sent(claimed[1].id, wamid="wamid.b1")  # b1 finished before the crash
    clock.advance(31)
    (stale,) = queue.recover_stale()
    assert (stale.dedupe_key, stale.state) == ("a1", "unknown")
    assert "at most once" in stale.last_error
    assert queue.recover_stale() == []
    (a2,) = queue.claim_due("w2")  # the conversation goes on; a1 is not sent again
    assert a2.dedupe_key == "a2"
    # The slow worker comes back: a retry would contradict "never resent" and is ignored,
    # but Meta's answer is worth keeping.
    queue.mark_retry(stale.id, error="429", code=130429, delay_seconds=0, count_attempt=True)
    assert queue.get(stale.id).state == "unknown"
    queue.mark_sent(stale.id, wamid="wamid.a1")
    assert queue.get(stale.id).state == "sent"
    assert queue.stats()["unknown"] == 0


# -- statuses ---------------------------------------------------------------------------------


def _sent(queue, key: str, wamid: str) -> int:
    queue.enqueue_many([row(key, f"+{key}")])
    (m,) = queue.claim_due("w")
    queue.mark_sent(m.id, wamid=wamid)
    return m.id


@pytest.mark.parametrize(
    "statuses, final, changes",
    [
        (["delivered", "read"], "read", [True, True]),
        (["read", "delivered"], "read", [True, False]),
        (["read", "failed"], "read", [True, False]),
        (["failed", "delivered", "read"], "failed", [True, False, False]),
        (["delivered", "failed"], "failed", [True, True]),
        (["sent", "deleted"], "sent", [False, False]),
    ],
)
def test_statuses_never_go_backwards(queue, statuses, final, changes):
    _sent(queue, "k", "wamid.k")
    seen = []
    for n, status in enumerate(statuses):
        got, changed = queue.apply_status(
            "wamid.k", status, at=1_700_000_000 + n, error="131026 undeliverable", code=131026
        )
        seen.append(changed)
    assert (got.state, seen) == (final, changes)
    if final == "failed":
        assert (got.last_error, got.error_code) == ("131026 undeliverable", 131026)
    else:
        assert got.error_code is None


def test_status_for_an_unknown_wamid(queue):
    assert queue.apply_status("wamid.nobody", "read", at=1.0) == (None, False)


def test_status_feed_hands_out_each_status_until_applied(db, queue, clock):
    inbound = InboundQueue(db, clock=clock)
    error = {"code": 131047, "title": "Re-engagement message"}
    inbound.store_batch(
        ParsedBatch(
            statuses=(
                StatusEvent("wamid.1", "sent", 100, "52155", "1001", (), {}),
                StatusEvent("wamid.1", "failed", 101, "52155", "1001", (error,), {}),
                StatusEvent("wamid.2", "read", 102, "52155", "1001", (), {}),
            )
        )
    )
    feed = StatusFeed(db)
    first = feed.unapplied()
    assert [(s["wamid"], s["status"], s["meta_timestamp"]) for s in first] == [
        ("wamid.1", "sent", 100),
        ("wamid.1", "failed", 101),
        ("wamid.2", "read", 102),
    ]
    assert first[0]["errors"] == [] and first[1]["errors"] == [error]
    assert [s["id"] for s in feed.unapplied(limit=2)] == [s["id"] for s in first[:2]]
    feed.mark_applied([first[0]["id"], first[1]["id"]])
    feed.mark_applied([])
    assert [s["wamid"] for s in feed.unapplied()] == ["wamid.2"]


def test_stats_count_every_state(queue, clock):
    assert queue.stats() == {
        "pending": 0,
        "sending": 0,
        "sent": 0,
        "delivered": 0,
        "read": 0,
        "failed": 0,
        "held": 0,
        "unknown": 0,
        "retrying": 0,
        "oldest_pending_age_seconds": None,
        "oldest_due_lag_seconds": None,
    }
    queue.enqueue_many([row("a", "+1"), row("b", "+2")])
    clock.advance(5)
    queue.enqueue_many([row("c", "+3")])
    queue.claim_due("w", limit=1)
    clock.advance(5)
    stats = queue.stats()
    assert (stats["pending"], stats["sending"], stats["oldest_pending_age_seconds"]) == (2, 1, 10.0)


# -- schema v2 --------------------------------------------------------------------------------


def test_migrating_a_v1_database_keeps_its_rows(db_url):
    database = open_database(db_url)
    try:
        assert migrate(database, target=1) == 1
        p = database.param
        database.execute_sql(
            "INSERT INTO message_status (wamid, status, meta_timestamp, recipient_id, "
            f"phone_number_id, errors_json, raw_json, created_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
            ("wamid.old", "read", 100, "52155", "1001", "[]", '{"é":"🌵"}', 5.0),
        )
        database.execute_sql(
            f"INSERT INTO lease (name, owner, expires_at, acquired_at) VALUES ({p}, {p}, {p}, {p})",
            ("poll", "a", 10.0, 1.0),
        )
        assert "outbound_message" not in database.get_tables()
        # A step cut short after its first DDL (MySQL commits each DDL statement on its
        # own): the re-run must cope with what is already there.
        database.execute_sql(
            "CREATE TABLE poll_state (name VARCHAR(191) NOT NULL PRIMARY KEY, "
            "watermark_ms BIGINT NULL, last_run_at DOUBLE PRECISION NULL, "
            "last_success_at DOUBLE PRECISION NULL, last_error TEXT NULL, "
            "runs INTEGER NOT NULL DEFAULT 0)"
        )
        assert migrate(database) == SCHEMA_VERSION
        assert migrate(database) == SCHEMA_VERSION
        versions = [
            v
            for (v,) in database.execute_sql("SELECT version FROM schema_version ORDER BY version").fetchall()
        ]
        assert versions == list(range(1, SCHEMA_VERSION + 1))

        def rows(sql: str) -> list[tuple]:
            return [tuple(r) for r in database.execute_sql(sql).fetchall()]

        # Old statuses have no outbound row to apply to: they come out of the feed as applied.
        assert rows("SELECT wamid, status, raw_json, applied FROM message_status") == [
            ("wamid.old", "read", '{"é":"🌵"}', 1)
        ]
        assert rows("SELECT name, owner FROM lease") == [("poll", "a")]
        for model in ALL_MODELS:
            columns = {c.name for c in database.get_columns(model._meta.table_name)}
            assert columns == {f.column_name for f in model._meta.sorted_fields}, model
        assert ["applied", "id"] in [i.columns for i in database.get_indexes("message_status")]
        bind(database)
        InboundQueue(database).store_batch(
            ParsedBatch(statuses=(StatusEvent("wamid.new", "sent", 101, "52155", "1001", (), {}),))
        )
        assert [s["wamid"] for s in StatusFeed(database).unapplied()] == ["wamid.new"]
        queue = OutboundQueue(database)
        assert queue.enqueue_many([row("after-upgrade")]) == 1
    finally:
        database.close()
