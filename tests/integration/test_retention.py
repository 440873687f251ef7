"""Bounded storage on every engine: housekeeping deletes old finished rows through the real storage
classes, never a live row, and never a row that still guards exactly-once or the 24-hour window."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from bot.rules.events import ParsedBatch
from bot.rules.retention import DAY_SECONDS, RetentionReport, retention_cutoff
from jobs.housekeeping import HOUSEKEEPING_INTERVAL_SECONDS, HousekeepingJob
from storage.ai_turns import AiTurns
from storage.inbound import InboundQueue
from storage.leases import Leases
from storage.media import MediaTasks
from storage.models import (
    AiTurnRow,
    HandledCommentRow,
    InboundMessageRow,
    Lease,
    MediaTaskRow,
    OutboundMessageRow,
    StatusRow,
    WebhookEventRow,
)
from storage.outbound import OutboundQueue
from storage.polling import HandledComments
from storage.retention import Retention
from storage.statuses import StatusFeed
from tests.integration.test_storage import message, other, status
from tests.integration.test_storage_outbound import row
from tests.unit.test_retention_rules import settings

CONV, OTHER_CONV = "+525512345678", "+525598765432"
MONTH = 31 * DAY_SECONDS


class World:
    """The storage classes the jobs use, over one database and one fake clock."""

    def __init__(self, db, clock) -> None:
        self.db, self.clock = db, clock
        self.inbound = InboundQueue(db, clock=clock)
        self.outbound = OutboundQueue(db, clock=clock)
        self.turns = AiTurns(db, clock=clock)
        self.media = MediaTasks(db, clock=clock)
        self.handled = HandledComments(db, clock=clock)
        self.statuses = StatusFeed(db)
        self.leases = Leases(db, clock=clock)
        self._n = itertools.count(1)

    def sweep(self, retention_days: int = 30, **kw) -> RetentionReport:
        cutoff = retention_cutoff(self.clock(), retention_days)
        assert cutoff is not None
        return Retention(self.db, pause_seconds=0, **kw).delete_expired(cutoff=cutoff)

    # -- inbound ------------------------------------------------------------------------------

    def receive(self, wamid: str, conv: str = CONV, *, echo: bool = False, name: str | None = "Ana") -> int:
        """A message stored by the webhook; returns its row id (still pending)."""
        m = message(wamid, conv, ts=int(self.clock()), name=None if echo else name)
        if echo:
            m = dataclasses.replace(m, origin="echo", from_business=True)
        assert self.inbound.store_batch(ParsedBatch(messages=(m,))).messages_new == 1
        return int(InboundMessageRow.get(InboundMessageRow.wamid == wamid).id)

    def delivered(self, wamid: str, conv: str = CONV, **kw) -> int:
        row_id = self.receive(wamid, conv, **kw)
        self.inbound.mark_done(row_id, issue_key="WA-1", comment_id=f"c-{wamid}")
        return row_id

    # -- outbound -----------------------------------------------------------------------------

    def queued(self, key: str, conv: str = CONV) -> int:
        assert self.outbound.enqueue_many([row(key, conv)]) == 1
        return int(OutboundMessageRow.get(OutboundMessageRow.dedupe_key == key).id)

    def claimed(self, key: str, conv: str = CONV, lease_seconds: float = 60) -> int:
        row_id = self.queued(key, conv)
        claimed = self.outbound.claim_due("w", limit=50, lease_seconds=lease_seconds)
        assert row_id in [c.id for c in claimed]
        return row_id

    def sent(self, key: str, conv: str = CONV, *, outcome: str = "sent", template: bool = False) -> int:
        row_id = self.claimed(key, conv)
        wamid = f"wamid.out.{next(self._n)}"
        if outcome in ("sent", "delivered", "read"):
            self.outbound.mark_sent(row_id, wamid=wamid, via_template=template)
            if outcome != "sent":
                self.outbound.apply_status(wamid, outcome, at=self.clock())
        elif outcome == "failed":
            self.outbound.mark_failed(row_id, error="rejected", code=131000)
        elif outcome == "held":
            self.outbound.mark_held(row_id, reason="window closed")
        got = self.outbound.get(row_id)
        assert got is not None and got.state == outcome
        return row_id

    # -- the rest -----------------------------------------------------------------------------

    def turn(self, outcome: str | None, issue: str | None = None) -> int:
        issue = issue or f"WA-T{next(self._n)}"
        comment = f"cust-{next(self._n)}"
        assert self.turns.add(
            issue_key=issue, service_id="support", conversation_key=CONV, trigger_comment_id=comment, due_at=0
        )
        row_id = int(AiTurnRow.get(AiTurnRow.trigger_comment_id == comment).id)
        if outcome is None:
            return row_id
        (claimed,) = self.turns.claim_due("w", limit=1)
        assert claimed.id == row_id
        if outcome == "done":
            self.turns.mark_done(row_id, reply_comment_id="r", tokens=5)
        elif outcome == "skipped":
            self.turns.mark_skipped(row_id, reason="quiet")
        elif outcome == "failed":
            self.turns.mark_failed(row_id, error="boom")
        return row_id

    def medium(self, outcome: str | None) -> int:
        n = next(self._n)
        assert self.media.add(
            wamid=f"wamid.media.{n}",
            media_id=f"m{n}",
            kind="image",
            mime_type="image/jpeg",
            filename=f"photo-{n}.jpg",
            expected_sha256="",
            issue_key="WA-1",
        )
        row_id = int(MediaTaskRow.get(MediaTaskRow.media_id == f"m{n}").id)
        if outcome is None:
            return row_id
        (task,) = self.media.claim_due("w")
        assert task.id == row_id
        if outcome == "done":
            self.media.mark_done(row_id, attachment_id="a1", size=10)
        elif outcome == "failed":
            self.media.mark_failed(row_id, error="gone")
        elif outcome == "too_large":
            self.media.mark_too_large(row_id, size=10**9, reason="too large")
        return row_id

    def status_stored(self, applied: bool) -> int:
        wamid = f"wamid.status.{next(self._n)}"
        self.inbound.store_batch(ParsedBatch(statuses=(status(wamid, "delivered"),)))
        row_id = int(StatusRow.get(StatusRow.wamid == wamid).id)
        if applied:
            self.statuses.mark_applied([row_id])
        return row_id

    def comment(
        self, comment_id: str, route: str, issue: str = "WA-1", *, created: float | None = None
    ) -> None:
        when = self.clock() if created is None else created
        assert self.handled.record(comment_id=comment_id, issue_key=issue, route=route, comment_created=when)

    def fresh_row_everywhere(self) -> None:
        """A new row in each id table: the highest id is always kept, so a test about old rows
        puts a fresh one above them."""
        self.receive(f"wamid.fresh.{next(self._n)}", OTHER_CONV)
        self.queued(f"fresh:{next(self._n)}", OTHER_CONV)
        self.turn(None)
        self.medium(None)
        self.status_stored(applied=False)
        self.inbound.store_batch(ParsedBatch(others=(other(next(self._n) + 10_000),)))


def ids(model, field=None) -> set:
    key = field or model.id
    return {value for (value,) in model.select(key).tuples()}


@pytest.fixture
def world(db, clock):
    return World(db, clock)


# -- live rows --------------------------------------------------------------------------------------


def test_live_rows_are_never_touched_whatever_their_age(world, clock):
    w = world
    pending_in = w.receive("wamid.pending")
    retrying_in = w.receive("wamid.retrying", OTHER_CONV)
    w.inbound.mark_retry(retrying_in, error="jira down", delay_seconds=60, count_attempt=True)
    parked = w.receive("wamid.echo", "+525500000001", echo=True)
    w.inbound.mark_parked(parked)
    sending = w.claimed("agent:2", "+525500000003", lease_seconds=10 * 365 * DAY_SECONDS)
    pending_out = w.queued("agent:1", "+525500000002")
    turn_working = w.turn(None)
    assert [t.id for t in w.turns.claim_due("w", limit=5)] == [turn_working]
    turn_pending = w.turn(None)
    medium_working = w.medium(None)
    assert [t.id for t in w.media.claim_due("w", limit=1)] == [medium_working]
    medium_pending = w.medium(None)
    unapplied = w.status_stored(applied=False)
    live_lease = w.leases.acquire("poll", "a", 100 * 365 * DAY_SECONDS)
    assert live_lease

    clock.advance(1000 * DAY_SECONDS)
    report = w.sweep(retention_days=8)

    assert report.total == 0, report.deleted
    assert {pending_in, retrying_in, parked} <= ids(InboundMessageRow)
    assert {pending_out, sending} <= ids(OutboundMessageRow)
    assert {turn_pending, turn_working} <= ids(AiTurnRow)
    assert {medium_pending, medium_working} <= ids(MediaTaskRow)
    assert unapplied in ids(StatusRow)
    assert "poll" in ids(Lease, Lease.name)
    states = [getattr(w.outbound.get(row_id), "state", None) for row_id in (pending_out, sending)]
    assert states == ["pending", "sending"]
    assert w.turns.get(turn_working).state == "working"


# -- old finished rows ------------------------------------------------------------------------------


def test_each_kind_of_old_finished_row_is_deleted(world, clock):
    w = world
    old_in = [w.delivered(f"wamid.{n}") for n in range(3)]
    dead_in = w.receive("wamid.dead")
    w.inbound.mark_dead(dead_in, error="rejected by Jira")
    newest_in = w.delivered("wamid.newest")  # the window's message: kept
    outcomes = ("sent", "delivered", "read", "failed", "held")
    old_out = [w.sent(f"comment:{n}:0", f"+5255000001{n:02d}", outcome=o) for n, o in enumerate(outcomes)]
    unknown = w.claimed("comment:u:0", "+525500000199", lease_seconds=1)
    clock.advance(2)
    assert [r.id for r in w.outbound.recover_stale()] == [unknown]
    old_out.append(unknown)
    old_turns = [w.turn("done"), w.turn("skipped"), w.turn("failed")]
    superseded = w.turn(None, issue="WA-S")
    w.turn(None, issue="WA-S")  # a newer turn of the ticket supersedes the pending one
    assert w.turns.get(superseded).state == "superseded"
    old_media = [w.medium("done"), w.medium("failed"), w.medium("too_large")]
    old_status = w.status_stored(applied=True)
    w.inbound.store_batch(ParsedBatch(others=(other(1),)))
    old_event = max(ids(WebhookEventRow))
    w.comment("100", "to_customer")
    w.comment("101", "to_customer")
    w.comment("200", "customer")
    w.comment("201", "customer")
    assert w.leases.acquire("conversation:+52", "a", 60)

    clock.advance(MONTH)
    w.fresh_row_everywhere()
    report = w.sweep(retention_days=30)

    assert report.complete
    assert not set(old_in) & ids(InboundMessageRow)
    assert dead_in not in ids(InboundMessageRow)
    assert newest_in in ids(InboundMessageRow)
    assert not set(old_out) & ids(OutboundMessageRow)
    assert not (set(old_turns) | {superseded}) & ids(AiTurnRow)
    assert not set(old_media) & ids(MediaTaskRow)
    assert old_status not in ids(StatusRow)
    assert old_event not in ids(WebhookEventRow)
    # The newest comment of each route on the ticket stays (the AI's quiet and hand-off rules).
    assert ids(HandledCommentRow, HandledCommentRow.comment_id) == {"101", "201"}
    assert "conversation:+52" not in ids(Lease, Lease.name)
    assert report.deleted == {
        "inbound_message": 4,
        "media_task": 3,
        "ai_turn": 4,
        "outbound_message": 6,
        "message_status": 1,
        "webhook_event": 1,
        "handled_comment": 2,
        "lease": 1,
    }


def test_rows_younger_than_retention_stay(world, clock):
    w = world
    kept = [w.delivered(f"wamid.{n}") for n in range(3)]
    kept_out = w.sent("comment:1:0")
    clock.advance(29 * DAY_SECONDS)
    w.fresh_row_everywhere()
    assert w.sweep(retention_days=30).total == 0
    assert set(kept) <= ids(InboundMessageRow)
    assert kept_out in ids(OutboundMessageRow)


def test_the_highest_id_of_a_table_is_kept_so_sqlite_never_hands_it_out_again(world, clock):
    w = world
    w.delivered("wamid.a")
    top_in = w.delivered("wamid.b", OTHER_CONV)
    first = w.sent("comment:1:0")
    top_out = w.sent("comment:2:0")
    clock.advance(MONTH)
    w.delivered("wamid.c")  # makes wamid.a deletable; wamid.b is its conversation's newest anyway
    w.sweep()
    assert top_in in ids(InboundMessageRow)
    assert first not in ids(OutboundMessageRow)
    assert top_out in ids(OutboundMessageRow)
    assert w.queued("comment:3:0") > top_out


# -- the guards -------------------------------------------------------------------------------------


def test_a_wamid_is_remembered_for_eight_days_whatever_retention_says(world, clock):
    w = world
    w.delivered("wamid.old")
    w.delivered("wamid.newer")
    clock.advance(8 * DAY_SECONDS - 60)
    w.fresh_row_everywhere()
    assert w.sweep(retention_days=1).deleted["inbound_message"] == 0
    # Meta's redelivery on day 7 is still recognised.
    redelivery = w.inbound.store_batch(ParsedBatch(messages=(message("wamid.old", CONV),)))
    assert (redelivery.messages_new, redelivery.messages_duplicate) == (0, 1)
    clock.advance(120)
    assert w.sweep(retention_days=1).deleted["inbound_message"] == 1


def test_the_customers_latest_message_stays_so_the_window_is_unchanged(world, clock):
    w = world
    w.delivered("wamid.1")
    last = w.delivered("wamid.2")
    w.delivered("wamid.echo", echo=True)  # the team wrote later: does not open the window
    before = w.inbound.last_customer_message(CONV)
    clock.advance(MONTH)
    w.fresh_row_everywhere()
    report = w.sweep()
    assert report.deleted["inbound_message"] == 2  # wamid.1 and the echo
    assert ids(InboundMessageRow) >= {last}
    assert w.inbound.last_customer_message(CONV) == before
    assert before is not None and before.profile_name == "Ana"


def test_the_latest_profile_name_stays_when_the_latest_message_has_none(world, clock):
    w = world
    w.delivered("wamid.named", name="Ana")
    w.delivered("wamid.unnamed", name=None)
    clock.advance(MONTH)
    w.fresh_row_everywhere()
    w.sweep()
    assert w.inbound.last_customer_message(CONV).profile_name == "Ana"


def test_acknowledgements_stay_so_a_ticket_is_never_acknowledged_twice(world, clock):
    w = world
    ack = w.sent("ack:WA-1")
    status_notice = w.sent("status:WA-1:1")
    clock.advance(400 * DAY_SECONDS)
    w.fresh_row_everywhere()
    w.sweep()
    assert ack in ids(OutboundMessageRow)
    assert status_notice not in ids(OutboundMessageRow)  # entries only count up: status:WA-1:1 never recurs
    assert w.outbound.enqueue_many([row("ack:WA-1")]) == 0


def test_a_survey_answers_unquoted_ratings_for_seven_days_even_with_retention_one(world, clock):
    w = world
    survey = w.sent("csat:WA-1:1")
    OutboundMessageRow.update(kind="csat").where(OutboundMessageRow.id == survey).execute(w.db)
    clock.advance(7 * DAY_SECONDS - 60)
    w.fresh_row_everywhere()
    w.sweep(retention_days=1)
    found = w.outbound.csat_request(CONV, None, since=clock() - 7 * DAY_SECONDS)
    assert found is not None and found.id == survey


def test_a_conversations_newest_template_stays(world, clock):
    w = world
    older = w.sent("template:1", template=True)
    newest = w.sent("template:2", template=True)
    sent_at = w.outbound.get(newest).sent_at
    clock.advance(MONTH)
    w.fresh_row_everywhere()
    w.sweep()
    assert older not in ids(OutboundMessageRow)
    assert newest in ids(OutboundMessageRow)
    assert w.outbound.template_sent_since(CONV, sent_at)


def test_command_comments_stay_handled_for_ever(world, clock):
    w = world
    w.comment("300", "command")
    w.comment("301", "command")
    clock.advance(400 * DAY_SECONDS)
    w.sweep()
    assert w.handled.known(["300", "301"]) == {"300", "301"}


# -- batches, budget, the job ----------------------------------------------------------------------


def test_more_rows_than_a_batch_are_all_deleted(world, clock):
    w = world
    rows = [w.delivered(f"wamid.{n}") for n in range(11)]
    comments = [w.comment(str(n), "customer") for n in range(7)]
    clock.advance(MONTH)
    w.fresh_row_everywhere()
    report = w.sweep(batch_size=3)
    assert report.deleted["inbound_message"] == 10  # all but the conversation's latest
    assert ids(InboundMessageRow) & set(rows) == {rows[-1]}
    assert report.deleted["handled_comment"] == 6
    del comments


def test_a_pass_stops_at_its_budget_and_the_next_goes_on(world, clock):
    w = world
    for n in range(7):
        w.delivered(f"wamid.{n}")
    clock.advance(MONTH)
    w.fresh_row_everywhere()
    ticks = itertools.count()
    cutoff = retention_cutoff(clock(), 30)
    assert cutoff is not None
    # Each look at the budget's clock costs a second: the budget allows two batches.
    retention = Retention(
        w.db, batch_size=2, budget_seconds=3, pause_seconds=0, monotonic=lambda: next(ticks)
    )
    first = retention.delete_expired(cutoff=cutoff)
    assert not first.complete
    assert 0 < first.deleted["inbound_message"] < 6
    second = Retention(w.db, batch_size=2, pause_seconds=0).delete_expired(cutoff=cutoff)
    assert second.complete
    assert first.deleted["inbound_message"] + second.deleted["inbound_message"] == 6


def test_the_job_sweeps_with_its_clock_once_per_interval_across_instances(world, clock, db):
    w = world
    w.delivered("wamid.1")
    w.delivered("wamid.2")
    clock.advance(MONTH)
    w.fresh_row_everywhere()

    def instance(owner: str, days: int = 30) -> HousekeepingJob:
        return HousekeepingJob(
            settings=settings(days),
            retention=Retention(db, pause_seconds=0),
            leases=w.leases,
            owner=owner,
            clock=clock,
        )

    assert instance("a", days=0).run() is None  # retention 0: nothing deleted, no lease taken
    assert len(ids(InboundMessageRow)) == 3
    a, b = instance("a"), instance("b")
    report = a.run()
    assert report is not None and report.deleted["inbound_message"] == 1
    assert b.run() is None  # one pass per interval, whichever instance
    clock.advance(HOUSEKEEPING_INTERVAL_SECONDS + 1)
    assert b.run() is not None


# -- what the poll makes of a forgotten comment -----------------------------------------------------


def test_an_old_agent_comment_whose_records_were_deleted_is_never_sent_again(db):
    from tests.integration.test_poll_job import World as PollWorld
    from tests.integration.test_poll_job import settings as poll_settings

    w = PollWorld(db, poll_settings())
    first = w.agent("Your parcel left the warehouse.")
    w.job.run()
    w.clock.advance(60)
    second = w.agent("It arrives tomorrow.")
    w.job.run()
    for _ in range(2):  # the outbox sends both, one at a time (same conversation)
        (claimed,) = w.outbound.claim_due("outbox")
        w.outbound.mark_sent(claimed.id, wamid=f"wamid.{claimed.dedupe_key}")
    assert [r.dedupe_key for r in w.rows()] == [f"comment:{first}:0", f"comment:{second}:0"]

    w.clock.advance(MONTH)
    cutoff = retention_cutoff(w.clock(), 30)
    assert cutoff is not None
    report = Retention(db, pause_seconds=0).delete_expired(cutoff=cutoff)
    # The first comment is forgotten entirely: its handled row and its outbound row.
    assert w.handled.known([first, second]) == {second}
    assert [r.dedupe_key for r in w.rows()] == [f"comment:{second}:0"]
    assert report.deleted["handled_comment"] == report.deleted["outbound_message"] == 1

    third = w.agent("Did it arrive?")  # the ticket moves again: the poll lists every comment
    w.job.run()
    assert [r.dedupe_key for r in w.rows()] == [f"comment:{second}:0", f"comment:{third}:0"]
    assert w.handled.known([first]) == {first}  # read again, recorded as stale, not sent
    route = HandledCommentRow.get(HandledCommentRow.comment_id == first).route
    assert route == "stale"


# -- the wiring -------------------------------------------------------------------------------------


def test_the_daemon_schedules_housekeeping_hourly_over_its_own_storage(tmp_path, clock):
    from bot.bootstrap import bootstrap
    from tests.fakes import FakeJira
    from tests.fakes.ai import FakeAI
    from tests.fakes.graph import FakeGraph

    s = dataclasses.replace(settings(30))
    s = dataclasses.replace(s, storage=dataclasses.replace(s.storage, url=f"sqlite:///{tmp_path}/w.db"))
    parts = bootstrap(
        s, owner="host-a", clock=clock, jira=FakeJira(clock=clock), graph=FakeGraph(), ai=FakeAI()
    )
    try:
        job = parts.jobs.scheduler.jobs["housekeeping"]
        assert parts.jobs.schedule.housekeeping is job
        assert (
            parts.jobs.scheduler._scheduler.get_job("housekeeping").trigger.interval.total_seconds() == 3600
        )
        w = World(parts.storage.db, clock)
        w.delivered("wamid.1")
        w.delivered("wamid.2")
        clock.advance(MONTH)
        w.fresh_row_everywhere()
        report = parts.jobs.runners.housekeeping.run()
        assert report is not None and report.deleted["inbound_message"] == 1
        assert parts.storage.leases.holder("housekeeping") == ("host-a", clock() + 3600)
    finally:
        parts.close()
