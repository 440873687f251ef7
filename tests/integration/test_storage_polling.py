"""Poll state, handled comments and AI turns, on every engine."""

from __future__ import annotations

import pytest

from storage import AiTurns, HandledComments, OutboundQueue, PollRecord, PollState
from tests.integration.test_storage import run_threads
from tests.integration.test_storage_outbound import keys, row


@pytest.fixture
def turns(db, clock):
    return AiTurns(db, clock=clock)


def turn(n: int, issue: str = "WA-1", due: float = 0.0, service: str = "support") -> dict:
    return {
        "issue_key": issue,
        "service_id": service,
        "conversation_key": "+52155",
        "trigger_comment_id": f"c{n}",
        "due_at": due,
    }


# -- poll state -------------------------------------------------------------------------------


def test_watermark_never_moves_backwards(db, clock):
    state = PollState(db, clock=clock)
    assert state.get() == PollRecord("jira", None, None, None, None, 0)
    state.save_success("jira", watermark_ms=1_700_000_000_500)
    clock.advance(30)
    state.save_success("jira", watermark_ms=1_700_000_000_000)  # a slower, older run
    got = state.get("jira")
    assert (got.watermark_ms, got.runs, got.last_success_at, got.last_run_at, got.last_error) == (
        1_700_000_000_500,
        2,
        clock.now,
        clock.now,
        None,
    )
    clock.advance(30)
    state.save_failure("jira", error="Jira 503 " + "x" * 5000)
    got = state.get("jira")
    assert (got.watermark_ms, got.runs, got.last_run_at, got.last_success_at) == (
        1_700_000_000_500,
        3,
        clock.now,
        clock.now - 30,
    )
    assert got.last_error.startswith("Jira 503") and len(got.last_error) <= 2000
    state.save_success("jira", watermark_ms=1_700_000_060_000)
    got = state.get("jira")
    assert (got.watermark_ms, got.last_error, got.runs) == (1_700_000_060_000, None, 4)
    state.save_failure("catch-up", error="first run failed")
    assert state.get("catch-up").watermark_ms is None and state.get("catch-up").runs == 1


def test_concurrent_saves_keep_the_highest_watermark(db, clock):
    marks = [1_000 * (i + 1) for i in range(8)]
    run_threads(db, 8, lambda i: PollState(db, clock=clock).save_success("jira", watermark_ms=marks[-1 - i]))
    got = PollState(db, clock=clock).get("jira")
    assert (got.watermark_ms, got.runs) == (max(marks), 8)


# -- handled comments -------------------------------------------------------------------------


def test_record_marks_seen_and_enqueues_together_once(db, clock):
    handled = HandledComments(db, clock=clock)
    queue = OutboundQueue(db, clock=clock)
    parts = [row("10001:0", body="Agent Ana: part 1"), row("10001:1", body="part 2")]
    assert handled.record(
        comment_id="10001",
        issue_key="WA-1",
        route="to_customer",
        comment_created=1_700_000_000.0,
        outbound=parts,
        author_kind="agent",
    )
    # Seen again (overlap window, a second daemon): nothing happens, nothing is enqueued.
    assert not handled.record(
        comment_id="10001",
        issue_key="WA-1",
        route="to_customer",
        comment_created=1_700_000_000.0,
        outbound=[row("10001:0"), row("other-key")],
    )
    assert keys(queue.for_issue("WA-1")) == ["10001:0", "10001:1"]
    assert handled.known(["10001", "10002", "10001"]) == {"10001"}
    assert handled.known([]) == set()
    assert handled.record(
        comment_id="10002", issue_key="WA-1", route="internal", comment_created=1_700_000_001.0
    )
    assert handled.known(["10001", "10002"]) == {"10001", "10002"}


def test_record_is_all_or_nothing(db, clock, monkeypatch):
    handled = HandledComments(db, clock=clock)

    def crash(*args, **kwargs):
        raise RuntimeError("crashed between seen and acted on")

    monkeypatch.setattr("storage.polling.add_turn", crash)
    with pytest.raises(RuntimeError):
        handled.record(
            comment_id="10001",
            issue_key="WA-1",
            route="ai_turn",
            comment_created=1.0,
            outbound=[row("x")],
            ai_turn={"service_id": "support", "conversation_key": "+52155", "due_at": 5.0},
        )
    assert handled.known(["10001"]) == set()
    assert OutboundQueue(db, clock=clock).for_issue("WA-1") == []
    with pytest.raises(ValueError):
        handled.record(
            comment_id="10001",
            issue_key="WA-1",
            route="to_customer",
            comment_created=1.0,
            outbound=[{**row("y"), "body": None}],
        )
    with pytest.raises(ValueError):
        handled.record(comment_id="1" * 65, issue_key="WA-1", route="to_customer", comment_created=1.0)
    assert handled.known(["10001"]) == set()


def test_record_adds_the_ai_turn_with_the_comment_time(db, clock, turns):
    handled = HandledComments(db, clock=clock)
    ai = {"service_id": "support", "conversation_key": "+52155", "due_at": clock.now + 3}
    assert handled.record(
        comment_id="10001", issue_key="WA-1", route="ai_turn", comment_created=clock.now - 10, ai_turn=ai
    )
    assert not handled.record(
        comment_id="10001", issue_key="WA-1", route="ai_turn", comment_created=clock.now - 10, ai_turn=ai
    )
    assert turns.stats()["pending"] == 1
    clock.advance(3)
    (t,) = turns.claim_due("w")
    assert (t.trigger_comment_id, t.issue_key, t.trigger_created, t.due_at) == (
        "10001",
        "WA-1",
        clock.now - 13,
        clock.now,
    )


def test_last_human_and_customer_times(db, clock):
    handled = HandledComments(db, clock=clock)
    assert handled.last_human_at("WA-1") is None and handled.last_customer_at("WA-1") is None
    for cid, route, created in [
        ("1", "ai_turn", 100.0),
        ("2", "to_customer", 200.0),
        ("3", "echo", 300.0),
        ("4", "ai_turn", 250.0),
        ("5", "internal", 400.0),
        ("6", "own_reply", 500.0),
    ]:
        handled.record(comment_id=cid, issue_key="WA-1", route=route, comment_created=created)
    handled.record(comment_id="7", issue_key="WA-2", route="echo", comment_created=900.0)
    assert handled.last_human_at("WA-1") == 300.0
    assert handled.last_customer_at("WA-1") == 250.0


# -- AI turns ---------------------------------------------------------------------------------


def test_add_once_per_comment_and_supersede_older_pending(turns, clock):
    assert turns.add(**turn(1, due=clock.now + 3))
    assert not turns.add(**turn(1, due=clock.now + 30))
    clock.advance(2)
    assert turns.add(**turn(2, due=clock.now + 3))  # the burst goes on
    assert turns.add(**turn(3, issue="WA-2", due=clock.now))  # another ticket: untouched
    stats = turns.stats()
    assert (stats["pending"], stats["superseded"]) == (2, 1)
    assert [t.trigger_comment_id for t in turns.claim_due("w")] == ["c3"]
    assert turns.claim_due("w") == []  # c2 is still debouncing
    clock.advance(3)
    (t,) = turns.claim_due("w")
    assert (t.trigger_comment_id, t.state, t.trigger_created) == ("c2", "working", clock.now - 3)
    with pytest.raises(ValueError):
        turns.add(**{**turn(9), "service_id": None})


def test_claim_reclaims_expired_work_and_keeps_one_worker_per_ticket(turns, clock):
    turns.add(**turn(1, due=clock.now))
    (first,) = turns.claim_due("a", lease_seconds=120)
    # A message arriving while the AI is working is a new turn; it waits for the first.
    turns.add(**turn(2, due=clock.now))
    assert turns.claim_due("b") == []
    clock.advance(121)  # worker a died
    (again,) = turns.claim_due("b", lease_seconds=120)
    assert (again.id, again.attempts, again.state) == (first.id, 1, "working")
    assert turns.claim_due("c") == []
    turns.mark_done(again.id, reply_comment_id="20001", tokens=150)
    (second,) = turns.claim_due("c")
    assert second.trigger_comment_id == "c2" and second.attempts == 0


def test_mark_done_enqueues_the_reply_once(db, turns, clock):
    queue = OutboundQueue(db, clock=clock)
    turns.add(**turn(1, due=clock.now))
    (t,) = turns.claim_due("w")
    reply = [row("ai:20001:0", kind="ai"), row("ai:20001:1", kind="ai")]
    turns.mark_done(t.id, reply_comment_id="20001", tokens=321, outbound=reply)
    turns.mark_done(t.id, reply_comment_id="20002", tokens=999, outbound=[row("ai:20002:0")])
    assert keys(queue.for_issue("WA-1")) == ["ai:20001:0", "ai:20001:1"]
    got = turns.get(t.id)
    assert (got.state, got.reply_comment_id, got.tokens) == ("done", "20001", 321)
    with pytest.raises(ValueError):
        turns.mark_done(t.id, reply_comment_id="x", tokens=1, outbound=[{"dedupe_key": "k"}])


def test_postpone_retry_skip_fail(turns, clock):
    for n in range(1, 4):
        turns.add(**turn(n, issue=f"WA-{n}", due=clock.now))
    t1, t2, t3 = turns.claim_due("w")
    turns.postpone(t1.id, due_at=clock.now + 2)
    assert turns.mark_retry(t2.id, error="OpenAI 500", delay_seconds=10) == 1
    turns.mark_skipped(t3.id, reason="handoff")
    assert turns.claim_due("w") == []
    clock.advance(2)
    (again,) = turns.claim_due("w")
    assert (again.id, again.due_at, again.attempts) == (t1.id, clock.now, 0)
    turns.mark_failed(again.id, error="content filter")
    clock.advance(8)
    (retried,) = turns.claim_due("w")
    assert (retried.id, retried.attempts, retried.last_error) == (t2.id, 1, "OpenAI 500")
    assert turns.get(t3.id).state == "skipped" and turns.get(t1.id).state == "failed"
    with pytest.raises(KeyError):
        turns.mark_retry(999_999, error="x", delay_seconds=1)
    stats = turns.stats()
    assert (stats["working"], stats["skipped"], stats["failed"], stats["pending"]) == (1, 1, 1, 0)


def test_postponed_turn_is_superseded_by_a_newer_one(turns, clock):
    turns.add(**turn(1, due=clock.now))
    (t1,) = turns.claim_due("w")
    turns.add(**turn(2, due=clock.now + 3))  # the customer wrote again meanwhile
    turns.postpone(t1.id, due_at=clock.now + 3)
    assert turns.get(t1.id).state == "superseded"
    clock.advance(3)
    assert [t.trigger_comment_id for t in turns.claim_due("w")] == ["c2"]


def test_counters_for_the_policy(turns, clock):
    start = clock.now
    for n, issue, service in [(1, "WA-1", "support"), (2, "WA-1", "support"), (3, "WA-2", "sales")]:
        turns.add(**turn(n, issue=issue, service=service, due=clock.now), trigger_created=clock.now)
        (t,) = turns.claim_due("w")
        turns.mark_done(t.id, reply_comment_id=None if n == 2 else f"r{n}", tokens=100 * n)
        clock.advance(60)
    assert turns.replies_since("WA-1", start) == 1
    assert turns.replies_since("WA-1", start + 1) == 0
    assert turns.tokens_since("support", start) == 300
    assert turns.tokens_since("support", start + 61) == 0
    assert turns.tokens_since("nobody", start) == 0
    assert turns.answered_after("WA-1", start + 60)  # c2's turn: done, triggered then
    assert not turns.answered_after("WA-1", start + 61)
    assert not turns.answered_after("WA-3", 0)


def test_concurrent_claimers_get_each_turn_once(db, clock):
    for n in range(40):
        AiTurns(db, clock=clock).add(**turn(n, issue=f"WA-{n}", due=clock.now))

    def work(i: int) -> list[int]:
        turns = AiTurns(db, clock=clock)
        mine: list[int] = []
        while turns.stats()["pending"]:
            mine += [t.id for t in turns.claim_due(f"w{i}", limit=3)]
        return mine

    claimed = [i for ids in run_threads(db, 8, work) for i in ids]
    assert len(claimed) == len(set(claimed)) == 40
