"""`InboundQueue.due_conversations` through the conversation index (storage/inbound_index.py),
on every engine: the same answers as the GROUP BY over every pending row it replaced, whatever
the inbox, the webhook and operators did before, and an index that stays small and right."""

from __future__ import annotations

import random
import threading

import peewee
import pytest

from bot.rules.events import InboundMessage, ParsedBatch
from storage.inbound import InboundQueue
from storage.inbound_index import RECONCILE_SECONDS
from storage.models import InboundConversationRow, InboundMessageRow
from storage.schema import SCHEMA_VERSION, migrate
from tests.integration.test_storage import message, run_threads
from tests.support.clock import FakeClock

KEYS = [f"+4477009001{i:02d}" for i in range(7)]


def reference(queue: InboundQueue, limit: int) -> list[str]:
    """The query due_conversations ran before the index: exact by definition."""
    M = InboundMessageRow
    query = (
        M.select(M.conversation_key)
        .where(M.state == "pending")
        .group_by(M.conversation_key)
        .having(peewee.fn.MAX(M.next_attempt_at) <= queue.clock())
        .order_by(peewee.fn.MIN(M.id))
        .limit(limit)
        .tuples()
    )
    return [key for (key,) in query.execute(queue.db)]


def index_rows(queue: InboundQueue) -> dict[str, tuple[int, float]]:
    C = InboundConversationRow
    return {
        key: (first, due)
        for key, first, due in C.select(C.conversation_key, C.first_id, C.due_at).tuples().execute(queue.db)
    }


def assert_bounds_hold(queue: InboundQueue) -> None:
    """Every conversation with pending rows is indexed, with bounds that hold."""
    M = InboundMessageRow
    truth = (
        M.select(M.conversation_key, peewee.fn.MIN(M.id), peewee.fn.MAX(M.next_attempt_at))
        .where(M.state == "pending")
        .group_by(M.conversation_key)
        .tuples()
        .execute(queue.db)
    )
    indexed = index_rows(queue)
    for key, first, latest in truth:
        assert key in indexed, key
        assert indexed[key][0] <= first and indexed[key][1] >= latest, (key, indexed[key], first, latest)


def history(wamid: str, key: str, ts: int) -> InboundMessage:
    m = message(wamid, key, ts=ts, name=None)
    return InboundMessage(**{**m.__dict__, "origin": "history", "from_business": False})


def store_as_before(db, wamid: str, key: str, now: float) -> None:
    """A pending message stored the way code without the index stores it."""
    InboundMessageRow.insert(
        {
            "wamid": wamid,
            "conversation_key": key,
            "wa_id": None,
            "user_id": None,
            "phone_number_id": "1001",
            "display_phone_number": None,
            "profile_name": "Bo",
            "meta_timestamp": 1_700_000_000,
            "kind": "text",
            "raw_json": "{}",
            "state": "pending",
            "attempts": 0,
            "started": 0,
            "next_attempt_at": now,
            "last_error": None,
            "issue_key": None,
            "comment_id": None,
            "created_at": now,
            "updated_at": now,
            "done_at": None,
            "origin": "customer",
            "from_business": 0,
        }
    ).execute(db)


@pytest.fixture
def queue(db):
    return InboundQueue(db, clock=FakeClock())


# -- the semantics, case by case ----------------------------------------------------------------


def test_a_later_message_waits_with_an_earlier_one_that_backs_off(queue):
    queue.store_batch(ParsedBatch(messages=(message("w1", KEYS[0]), message("w2", KEYS[1]))))
    (first, *_) = queue.pending_for(KEYS[0])
    queue.mark_retry(first.id, error="Jira 503", delay_seconds=60, count_attempt=False)
    queue.store_batch(ParsedBatch(messages=(message("w3", KEYS[0], ts=1_700_000_100),)))
    assert queue.due_conversations() == [KEYS[1]]  # w3 is due, but waits behind w1
    queue.clock.advance(59)
    assert queue.due_conversations() == [KEYS[1]]
    queue.clock.advance(1)
    assert queue.due_conversations() == [KEYS[0], KEYS[1]]


def test_the_longest_waiting_goes_first_by_its_oldest_pending_message(queue):
    queue.store_batch(ParsedBatch(messages=(message("a1", KEYS[0]),)))
    queue.store_batch(ParsedBatch(messages=(message("b1", KEYS[1]),)))
    queue.store_batch(ParsedBatch(messages=(message("a2", KEYS[0], ts=1_700_000_001),)))
    assert queue.due_conversations() == [KEYS[0], KEYS[1]]
    (a1, _) = queue.pending_for(KEYS[0])
    queue.mark_done(a1.id, issue_key="WA-1", comment_id="1")
    # KEYS[0]'s oldest pending message is now a2, which came after b1.
    assert queue.due_conversations() == [KEYS[1], KEYS[0]]
    assert queue.due_conversations(limit=1) == [KEYS[1]]


def test_a_conversation_with_nothing_pending_leaves_the_index(queue):
    queue.store_batch(ParsedBatch(messages=(message("a1", KEYS[0]), message("b1", KEYS[1]))))
    for key in KEYS[:2]:
        for row in queue.pending_for(key):
            queue.mark_done(row.id, issue_key="WA-1", comment_id=None)
    assert queue.due_conversations() == []
    assert index_rows(queue) == {}
    queue.store_batch(ParsedBatch(messages=(message("a2", KEYS[0]),)))
    assert queue.due_conversations() == [KEYS[0]]


def test_held_history_holds_its_conversation(queue):
    queue.store_batch(ParsedBatch(messages=(message("c1", KEYS[0]), history("h1", KEYS[0], 1_699_999_000))))
    assert queue.due_conversations() == []
    queue.clock.advance(queue.history_settle_seconds)
    assert queue.due_conversations() == [KEYS[0]]


def test_parked_rows_brought_back_count_again(queue):
    queue.store_batch(ParsedBatch(messages=(history("h1", KEYS[0], 1_699_999_000),)))
    queue.clock.advance(queue.history_settle_seconds)
    (h1,) = queue.pending_for(KEYS[0])
    queue.mark_parked(h1.id)
    assert queue.due_conversations() == []
    queue.store_batch(ParsedBatch(messages=(message("c1", KEYS[0]),)))  # the customer writes: unparked
    assert queue.due_conversations() == [KEYS[0]]
    assert [r.wamid for r in queue.pending_for(KEYS[0])] == ["h1", "c1"]


def test_requeued_dead_rows_are_due_again(queue):
    queue.store_batch(ParsedBatch(messages=(message("a1", KEYS[0]),)))
    (a1,) = queue.pending_for(KEYS[0])
    queue.mark_dead(a1.id, error="Jira 400")
    assert queue.due_conversations() == []
    assert queue.requeue_dead() == 1
    assert queue.due_conversations() == [KEYS[0]]


def test_rows_written_without_the_index_are_found_by_the_periodic_reconcile(queue):
    queue.store_batch(ParsedBatch(messages=(message("a1", KEYS[0]),)))
    assert queue.due_conversations() == [KEYS[0]]
    # An older wajira still running during a rolling upgrade stores without the index.
    store_as_before(queue.db, "old-1", KEYS[1], queue.clock())
    assert queue.due_conversations() == [KEYS[0]]
    queue.clock.advance(RECONCILE_SECONDS)
    assert queue.due_conversations() == [KEYS[0], KEYS[1]]


def test_the_migration_indexes_the_backlog_already_there(db_url):
    from storage.db import bind, open_database

    db = open_database(db_url)
    try:
        migrate(db, target=5)  # before the inbox index (step 6)
        bind(db)
        for wamid, key in (("a1", KEYS[0]), ("b1", KEYS[1]), ("a2", KEYS[0])):
            store_as_before(db, wamid, key, FakeClock()())
        assert migrate(db) == SCHEMA_VERSION
        queue = InboundQueue(db, clock=FakeClock())
        assert index_rows(queue) == {KEYS[0]: (1, FakeClock()()), KEYS[1]: (2, FakeClock()())}
        queue.index._reconciled_at = queue.clock()  # the migration alone, no reconcile
        assert queue.due_conversations() == [KEYS[0], KEYS[1]]
    finally:
        db.close()


# -- everything at once, against the old query ----------------------------------------------------


def test_random_histories_agree_with_the_group_by_over_every_pending_row(queue):
    rng = random.Random(20261205)
    n = 0
    for step in range(160):
        action = rng.random()
        if action < 0.35:  # the webhook: a delivery of one to three messages, now and then history
            batch = []
            for _ in range(rng.randint(1, 3)):
                n += 1
                key = rng.choice(KEYS)
                batch.append(
                    history(f"h{n}", key, 1_699_000_000 + n)
                    if rng.random() < 0.15
                    else message(f"m{n}", key, ts=1_700_000_000 + n)
                )
            queue.store_batch(ParsedBatch(messages=tuple(batch)))
        elif action < 0.8:  # the inbox: one due conversation, in order, until a row fails
            keys = queue.due_conversations(limit=3)
            if keys:
                for row in queue.pending_for(rng.choice(keys)):
                    if row.next_attempt_at > queue.clock():
                        break
                    outcome = rng.random()
                    if outcome < 0.6:
                        queue.mark_done(row.id, issue_key="WA-1", comment_id=None)
                    elif outcome < 0.8:
                        queue.mark_retry(
                            row.id,
                            error="Jira 503",
                            delay_seconds=rng.choice([5, 30, 200]),
                            count_attempt=rng.random() < 0.5,
                        )
                        break
                    elif outcome < 0.9:
                        queue.mark_parked(row.id)
                    else:
                        queue.mark_dead(row.id, error="Jira 400")
        elif action < 0.85:
            queue.requeue_dead()
        else:
            queue.clock.advance(rng.choice([1, 10, 60, 150]))
        for limit in (1, 3, 10):
            assert queue.due_conversations(limit) == reference(queue, limit), (step, limit)
        assert_bounds_hold(queue)


def test_concurrent_deliveries_and_deliveries_to_jira_keep_the_index_right(db_url, db):
    """Webhook threads store messages of a few conversations while an inbox thread delivers
    them and reads the index (repairing it): nothing pending is ever lost from it."""
    from storage.db import open_database

    clock = FakeClock()
    dbs = [open_database(db_url) for _ in range(4)]
    queues = [InboundQueue(d, clock=clock) for d in dbs]
    stop = threading.Event()
    try:

        def inbox() -> None:
            q = queues[0]
            while not stop.is_set():
                for key in q.due_conversations(limit=3):
                    for row in q.pending_for(key)[:2]:
                        q.mark_done(row.id, issue_key="WA-1", comment_id=None)
            dbs[0].close()

        reader = threading.Thread(target=inbox)
        reader.start()

        def webhook(i: int) -> None:
            for n in range(40):
                queues[i + 1].store_batch(
                    ParsedBatch(messages=(message(f"t{i}-{n}", KEYS[n % 3], ts=1_700_000_000 + n),))
                )

        try:
            run_threads(dbs[1], 3, webhook)
        finally:
            stop.set()
            reader.join()
        queue = InboundQueue(db, clock=clock)
        assert_bounds_hold(queue)
        assert queue.due_conversations(limit=10) == reference(queue, 10)
    finally:
        for d in dbs:
            d.close()
