"""Storage behind customer notices, on every engine: the status watch (which status entries are
new), satisfaction ratings, finding the survey a rating answers, a ticket's first customer
message, and schema step 8."""

from __future__ import annotations

import dataclasses
import threading

import peewee
import pytest

from bot.rules.events import ParsedBatch
from storage import (
    SCHEMA_VERSION,
    CsatRatings,
    InboundQueue,
    OutboundQueue,
    StatusWatch,
    bind,
    migrate,
    open_database,
)
from storage.csat import StoredRating
from storage.engines import dialect
from storage.models import ALL_MODELS
from tests.integration.test_storage import message, run_threads
from tests.integration.test_storage_outbound import row

WAIT_SECONDS = 30.0
"""A safeguard for events another thread sets at once; never reached when things work."""


@pytest.fixture
def watch(db, clock):
    return StatusWatch(db, clock=clock)


@pytest.fixture
def ratings(db, clock):
    return CsatRatings(db, clock=clock)


@pytest.fixture
def outbound(db, clock):
    return OutboundQueue(db, clock=clock)


# -- the status watch ---------------------------------------------------------------------------


def test_first_sight_of_an_old_ticket_is_not_an_entry(watch):
    calls: list[int] = []
    assert watch.observe("WA-1", "Done", on_entry=calls.append) is None
    assert watch.get("WA-1") == ("Done", 0)
    assert calls == []
    assert watch.get("WA-2") is None


def test_the_same_status_again_is_not_an_entry(watch, clock):
    watch.observe("WA-1", "In Progress")
    clock.advance(60)
    calls: list[int] = []
    assert watch.observe("WA-1", "In Progress", on_entry=calls.append) is None
    assert watch.get("WA-1") == ("In Progress", 0) and calls == []


def test_a_change_is_an_entry_and_a_change_back_another(watch):
    calls: list[int] = []
    watch.observe("WA-1", "Open")
    assert watch.observe("WA-1", "Done", on_entry=calls.append) == 1
    assert watch.observe("WA-1", "Done", on_entry=calls.append) is None
    assert watch.observe("WA-1", "Reopened", on_entry=calls.append) == 2
    assert watch.observe("WA-1", "Done", on_entry=calls.append) == 3
    assert calls == [1, 2, 3]
    assert watch.get("WA-1") == ("Done", 3)


def test_names_compare_exactly(watch):
    watch.observe("WA-1", "Done")
    assert watch.observe("WA-1", "done") == 1
    assert watch.observe("WA-1", "done ") == 2  # MySQL's PAD SPACE must not merge these
    assert watch.get("WA-1") == ("done ", 2)


def test_the_baseline_makes_the_first_sight_an_entry(watch):
    watch.baseline("WA-1")
    assert watch.get("WA-1") == ("", 0)
    calls: list[int] = []
    assert watch.observe("WA-1", "Open", on_entry=calls.append) == 1
    assert calls == [1]
    assert watch.observe("WA-1", "Open") is None


def test_a_baseline_never_changes_a_row(watch):
    watch.observe("WA-1", "Done")
    watch.baseline("WA-1")
    assert watch.get("WA-1") == ("Done", 0)
    watch.baseline("WA-2")
    watch.observe("WA-2", "Open")
    watch.baseline("WA-2")  # a retried delivery after the poll saw the ticket
    assert watch.get("WA-2") == ("Open", 1)


def test_a_key_too_long_is_refused(watch):
    with pytest.raises(ValueError):
        watch.observe("W" * 192, "Open")
    with pytest.raises(ValueError):
        watch.baseline("")


def test_a_long_status_name_is_clipped_consistently(watch):
    long = "S" * 300
    watch.observe("WA-1", "Open")
    assert watch.observe("WA-1", long) == 1
    assert watch.observe("WA-1", long) is None
    assert watch.get("WA-1") == ("S" * 255, 1)


def test_on_entry_writes_commit_with_the_entry(db, watch, outbound):
    watch.observe("WA-1", "Open")
    inside: list[bool] = []

    def queue(entry: int) -> None:
        inside.append(db.in_transaction())
        outbound.enqueue_many([row(f"status:WA-1:{entry}")], txn_ok=True)

    assert watch.observe("WA-1", "Done", on_entry=queue) == 1
    assert inside == [True]
    assert [m.dedupe_key for m in outbound.for_issue("WA-1")] == ["status:WA-1:1"]


def test_a_failing_on_entry_rolls_the_entry_back(watch, outbound):
    watch.observe("WA-1", "Open")

    def queue_then_fail(entry: int) -> None:
        outbound.enqueue_many([row(f"status:WA-1:{entry}")], txn_ok=True)
        raise RuntimeError("the notice could not be queued")

    with pytest.raises(RuntimeError, match="could not be queued"):
        watch.observe("WA-1", "Done", on_entry=queue_then_fail)
    assert watch.get("WA-1") == ("Open", 0)
    assert outbound.for_issue("WA-1") == []
    # The next poll sees the change again and this time it goes through, once.
    calls: list[int] = []
    assert watch.observe("WA-1", "Done", on_entry=calls.append) == 1
    assert calls == [1]


def test_observe_joins_the_callers_transaction(db, watch):
    watch.observe("WA-1", "Open")
    with pytest.raises(RuntimeError):
        with db.atomic():
            assert watch.observe("WA-1", "Done") == 1
            raise RuntimeError("the caller's work failed")
    assert watch.get("WA-1") == ("Open", 0)


class _StaleFirstRead(StatusWatch):
    """Answers the first plain read with `stale`, as if another instance wrote right after it."""

    def __init__(self, db: peewee.Database, stale: tuple[str, int] | None):
        super().__init__(db)
        self.stale = stale
        self.served = False

    def _read(self, issue_key: str, *, latest: bool = False) -> tuple[str, int] | None:
        if not latest and not self.served:
            self.served = True
            return self.stale
        return super()._read(issue_key, latest=latest)


def test_a_change_another_instance_recorded_first_is_no_entry(db, watch):
    watch.observe("WA-1", "Open")
    assert watch.observe("WA-1", "Done") == 1  # the other instance
    late = _StaleFirstRead(db, stale=("Open", 0))  # read before that commit
    calls: list[int] = []
    assert late.observe("WA-1", "Done", on_entry=calls.append) is None
    assert calls == [] and watch.get("WA-1") == ("Done", 1)


def test_losing_the_first_insert_reads_the_winners_row(db, watch):
    watch.baseline("WA-1")  # the ticket opener won the insert
    late = _StaleFirstRead(db, stale=None)  # the poll read before it committed
    calls: list[int] = []
    assert late.observe("WA-1", "Open", on_entry=calls.append) == 1
    assert calls == [1] and watch.get("WA-1") == ("Open", 1)
    watch.observe("WA-2", "Open")  # another poll won
    assert _StaleFirstRead(db, stale=None).observe("WA-2", "Open") is None
    assert watch.get("WA-2") == ("Open", 0)


def test_an_insert_lost_to_a_concurrent_baseline_reads_the_baseline(db, db_engine):
    """The poll reads no row, the ticket opener's baseline commits, the poll's insert loses:
    its second read must see the baseline (MySQL's repeatable read would show the snapshot)."""
    if db_engine == "sqlite":
        pytest.skip("SQLite's write lock, taken before the read, keeps the baseline out")
    read_done, baseline_done = threading.Event(), threading.Event()

    class Poll(StatusWatch):
        def _read(self, issue_key: str, *, latest: bool = False) -> tuple[str, int] | None:
            seen = super()._read(issue_key, latest=latest)
            if not latest:
                read_done.set()
                assert baseline_done.wait(WAIT_SECONDS)
            return seen

    def work(i: int) -> int | None:
        if i == 0:
            return Poll(db).observe("WA-1", "Open")
        assert read_done.wait(WAIT_SECONDS)
        StatusWatch(db).baseline("WA-1")
        baseline_done.set()
        return None

    assert run_threads(db, 2, work) == [1, None]
    assert StatusWatch(db).get("WA-1") == ("Open", 1)


def test_two_instances_interleaved_on_one_change_record_one_entry(db, db_engine):
    """The first instance holds its moved row, uncommitted, until the second has read the old
    status; the second's compare-and-set then waits for the first and finds nothing to change."""
    StatusWatch(db).observe("WA-1", "Open")
    first_moved, second_read = threading.Event(), threading.Event()
    # SQLite's write lock keeps the second out until the first commits: nothing to hold for.
    holds = db_engine != "sqlite"
    entries: list[tuple[str, int]] = []

    class Second(StatusWatch):
        def _read(self, issue_key: str, *, latest: bool = False) -> tuple[str, int] | None:
            seen = super()._read(issue_key, latest=latest)
            second_read.set()
            return seen

    def first_holds(entry: int) -> None:
        entries.append(("first", entry))
        first_moved.set()
        if holds:
            assert second_read.wait(WAIT_SECONDS)

    def work(i: int) -> int | None:
        if i == 0:
            return StatusWatch(db).observe("WA-1", "Done", on_entry=first_holds)
        assert first_moved.wait(WAIT_SECONDS)
        return Second(db).observe("WA-1", "Done", on_entry=lambda n: entries.append(("second", n)))

    assert run_threads(db, 2, work) == [1, None]
    assert entries == [("first", 1)]
    assert StatusWatch(db).get("WA-1") == ("Done", 1)


def test_many_instances_racing_record_each_change_once(db):
    watch = StatusWatch(db)
    statuses = ["Open", "In Progress", "Done", "Reopened", "Done", "Closed"]
    per_status: dict[int, list[int]] = {}
    lock = threading.Lock()

    def work(i: int) -> list[int | None]:
        seen = StatusWatch(db)
        results: list[int | None] = []
        for step, status in enumerate(statuses):
            barrier.wait()

            def record(entry: int, step: int = step) -> None:
                with lock:
                    per_status.setdefault(step, []).append(entry)

            results.append(seen.observe("WA-1", status, on_entry=record))
        return results

    barrier = threading.Barrier(4)
    results = run_threads(db, 4, work)
    # Per status, across the instances: the first sight is nobody's entry; every later change
    # is exactly one instance's, with the next count.
    for step in range(1, len(statuses)):
        assert sorted((r[step] for r in results), key=lambda x: x or 0) == [None, None, None, step]
    assert all(r[0] is None for r in results)
    # A deadlock victim runs its transaction again; what it queued the first time was rolled back.
    assert {step: set(v) for step, v in per_status.items()} == {s: {s} for s in range(1, len(statuses))}
    assert watch.get("WA-1") == ("Closed", len(statuses) - 1)


# -- satisfaction ratings -----------------------------------------------------------------------


def rate(
    ratings: CsatRatings, request_id: int, rating: int, at: float, wamid: str, service: str = "sales"
) -> None:
    ratings.record(
        request_id=request_id,
        service_id=service,
        issue_key="WA-1",
        conversation_key="+52155",
        wamid=wamid,
        rating=rating,
        rated_at=at,
    )


def test_tapping_again_changes_the_rating(ratings):
    rate(ratings, 7, 3, 1000.0, "wamid.a")
    rate(ratings, 7, 5, 1010.0, "wamid.b")
    assert ratings.get(7) == StoredRating(5, "wamid.b", 1010.0)
    assert ratings.summary(since=0) == {"sales": (1, 5.0)}


def test_a_redelivery_changes_nothing(ratings):
    rate(ratings, 7, 3, 1000.0, "wamid.a")
    rate(ratings, 7, 3, 1000.0, "wamid.a")
    assert ratings.get(7) == StoredRating(3, "wamid.a", 1000.0)
    assert ratings.summary(since=0) == {"sales": (1, 3.0)}


def test_an_older_rating_never_overrides_a_newer_one(ratings):
    rate(ratings, 7, 5, 1010.0, "wamid.b")
    rate(ratings, 7, 3, 1000.0, "wamid.a")  # worked late
    assert ratings.get(7) == StoredRating(5, "wamid.b", 1010.0)
    rate(ratings, 7, 2, 1010.0, "wamid.c")  # the same second: the later message wins
    assert ratings.get(7) == StoredRating(2, "wamid.c", 1010.0)


def test_the_summary_groups_by_service_from_since(ratings):
    rate(ratings, 1, 5, 1000.0, "w1")
    rate(ratings, 2, 4, 2000.0, "w2")
    rate(ratings, 3, 1, 2000.0, "w3", service="support")
    rate(ratings, 4, 2, 3000.0, "w4")
    assert ratings.summary(since=2000.0) == {"sales": (2, 3.0), "support": (1, 1.0)}
    (count, average) = ratings.summary(since=0)["sales"]
    assert (count, average) == (3, pytest.approx(11 / 3))
    assert isinstance(average, float)
    assert ratings.summary(since=3000.5) == {}


@pytest.mark.parametrize("rating", [0, 6, -1])
def test_a_rating_outside_one_to_five_is_refused(ratings, rating):
    with pytest.raises(ValueError, match="1 to 5"):
        rate(ratings, 7, rating, 1000.0, "wamid.a")
    assert ratings.get(7) is None


def test_ratings_from_many_instances_keep_the_newest(db):
    def work(i: int) -> None:
        rate(CsatRatings(db), 7, 1 + i % 5, 1000.0 + i, f"wamid.{i}")

    run_threads(db, 6, work)
    assert CsatRatings(db).get(7) == StoredRating(1 + 5 % 5, "wamid.5", 1005.0)


# -- the survey a rating answers ----------------------------------------------------------------


def survey(key: str, conv: str = "+52155") -> dict:
    return {**row(key, conv=conv, kind="csat", body="How did we do?"), "payload": {"service": "sales"}}


def send_all(outbound: OutboundQueue, wamids: dict[str, str]) -> None:
    """Claim and mark sent every pending row (one per conversation per claim), wamid by key."""
    while claimed := outbound.claim_due("me", limit=10):
        for m in claimed:
            outbound.mark_sent(m.id, wamid=wamids[m.dedupe_key])


def test_a_quoted_survey_of_the_conversation_is_the_request(outbound, clock):
    outbound.enqueue_many([survey("csat:WA-1:1"), row("agent:1"), survey("csat:WA-1:x", conv="+4477")])
    send_all(outbound, {"csat:WA-1:1": "wamid.s1", "agent:1": "wamid.agent", "csat:WA-1:x": "wamid.other"})
    found = outbound.csat_request("+52155", "wamid.s1", since=clock.now + 10)  # `since` is for unquoted
    assert found is not None and (found.dedupe_key, found.payload) == ("csat:WA-1:1", {"service": "sales"})
    assert outbound.csat_request("+52155", "wamid.agent", since=0) is None  # not a survey
    assert outbound.csat_request("+52155", "wamid.other", since=0) is None  # another conversation's
    assert outbound.csat_request("+52155", "wamid.unknown", since=0) is None


def test_an_unquoted_rating_answers_the_newest_sent_survey_since(outbound, clock):
    assert outbound.csat_request("+52155", None, since=0) is None
    outbound.enqueue_many([survey("csat:WA-1:1")])
    (first,) = outbound.claim_due("me")
    outbound.mark_sent(first.id, wamid="wamid.s1")
    clock.advance(100)
    outbound.enqueue_many([survey("csat:WA-1:2"), survey("csat:WA-1:3")])
    (second,) = outbound.claim_due("me")
    outbound.mark_sent(second.id, wamid="wamid.s2")
    # csat:WA-1:3 is not sent yet: no wamid, so not what the customer saw.
    found = outbound.csat_request("+52155", None, since=0)
    assert found is not None and found.dedupe_key == "csat:WA-1:2"
    assert outbound.csat_request("+4477", None, since=0) is None
    assert outbound.csat_request("+52155", None, since=clock.now + 1) is None
    # Created before `since` is too old, even when newer than another survey.
    clock.advance(100)
    assert outbound.csat_request("+52155", None, since=clock.now - 100) is not None
    assert outbound.csat_request("+52155", None, since=clock.now - 99) is None


def test_the_survey_lookups_use_the_step_8_index(db, outbound):
    if dialect(db) != "sqlite":
        pytest.skip("planners of the server engines pick scans on tables this small")
    outbound.enqueue_many([survey("csat:WA-1:1")])
    for context in ("wamid.s1", None):
        plan = _sqlite_plan(db, "outbound_message", context)
        assert "outbound_message_conversation_key_kind_id" in plan or (
            context is not None and "outbound_message_wamid" in plan
        ), plan


def _sqlite_plan(db: peewee.Database, table: str, context: str | None) -> str:
    from storage.models import OutboundMessageRow as M

    where = (M.conversation_key == "+52155") & (M.kind == "csat")
    where &= (M.wamid == context) if context else (M.wamid.is_null(False) & (M.created_at >= 0))
    sql, params = M.select().where(where).order_by(M.id.desc()).limit(1).sql()
    return " ".join(str(r[-1]) for r in db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())


# -- a ticket's first customer message ----------------------------------------------------------


def test_customer_delivered_on_counts_other_done_customer_messages(db, clock):
    inbound = InboundQueue(db, clock=clock)
    echo = dataclasses.replace(message("w.echo", ts=1_700_000_001), origin="echo", from_business=True)
    inbound.store_batch(ParsedBatch(messages=(message("w1"), message("w2", ts=1_700_000_002), echo)))
    rows = {m.wamid: m.id for m in inbound.pending_for("+525512345678")}
    assert set(rows) == {"w1", "w2", "w.echo"}
    assert inbound.customer_delivered_on("WA-1", excluding=rows["w1"]) is False
    inbound.mark_done(rows["w.echo"], issue_key="WA-1", comment_id="10")
    assert inbound.customer_delivered_on("WA-1", excluding=rows["w1"]) is False  # echoes are not the customer
    inbound.mark_done(rows["w1"], issue_key="WA-1", comment_id="11")
    assert inbound.customer_delivered_on("WA-1", excluding=rows["w1"]) is False  # itself
    assert inbound.customer_delivered_on("WA-1", excluding=rows["w2"]) is True
    assert inbound.customer_delivered_on("WA-2", excluding=rows["w2"]) is False
    inbound.mark_done(rows["w2"], issue_key="WA-1", comment_id="12")
    assert inbound.customer_delivered_on("WA-1", excluding=rows["w1"]) is True


# -- schema step 8 ------------------------------------------------------------------------------


def test_a_v7_database_gets_step_8_and_keeps_its_rows(db_url, clock):
    database = open_database(db_url)
    try:
        assert migrate(database, target=7) == 7
        assert not {"status_watch", "csat_rating"} & set(database.get_tables())
        p = database.param
        database.execute_sql(
            "INSERT INTO outbound_message (dedupe_key, issue_key, conversation_key, phone_number_id, kind, "
            "body, next_attempt_at, created_at, updated_at, wamid) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
            ("csat:WA-1:1", "WA-1", "+52155", "1001", "csat", "How did we do?", 0.0, 1.0, 1.0, "wamid.s1"),
        )
        assert migrate(database) == SCHEMA_VERSION == 8
        assert migrate(database) == 8  # a no-op the second time
        versions = [v for (v,) in database.execute_sql("SELECT version FROM schema_version").fetchall()]
        assert sorted(versions) == list(range(1, 9))
        for model in ALL_MODELS:
            columns = {c.name for c in database.get_columns(model._meta.table_name)}
            assert columns == {f.column_name for f in model._meta.sorted_fields}, model
        _assert_step_8_indexes(database)
        bind(database)
        found = OutboundQueue(database, clock=clock).csat_request("+52155", "wamid.s1", since=0)
        assert found is not None and found.dedupe_key == "csat:WA-1:1"
        watch = StatusWatch(database, clock=clock)
        watch.baseline("WA-1")
        assert watch.observe("WA-1", "Done") == 1
    finally:
        database.close()


def test_step_8_cut_short_runs_again(db_url):
    from storage.schema_v8 import step_8

    database = open_database(db_url)
    try:
        migrate(database, target=7)
        step_8(database)  # as if it had run and the version row had not been written
        step_8(database)
        assert migrate(database) == 8
        _assert_step_8_indexes(database)
    finally:
        database.close()


def test_request_ids_are_unique(db):
    p = db.param
    insert = (
        "INSERT INTO csat_rating (request_id, service_id, issue_key, conversation_key, wamid, rating, rated_at) "
        f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
    )
    db.execute_sql(insert, (7, "sales", "WA-1", "+52155", "w1", 5, 1.0))
    with pytest.raises(peewee.IntegrityError):
        db.execute_sql(insert, (7, "sales", "WA-1", "+52155", "w2", 4, 2.0))


def _assert_step_8_indexes(database: peewee.Database) -> None:
    def indexes(table: str) -> dict[str, tuple[list[str], bool]]:
        return {i.name: (i.columns, i.unique) for i in database.get_indexes(table)}

    assert indexes("outbound_message")["outbound_message_conversation_key_kind_id"] == (
        ["conversation_key", "kind", "id"],
        False,
    )
    assert indexes("inbound_message")["inbound_message_issue_key_state"] == (["issue_key", "state"], False)
    csat = indexes("csat_rating")
    assert csat["csat_rating_request_id"] == (["request_id"], True)
    assert csat["csat_rating_service_id_rated_at"] == (["service_id", "rated_at"], False)
