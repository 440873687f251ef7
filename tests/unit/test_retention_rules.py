"""Bounded storage, the pure side: the retention cutoff and its floor, the once-only keys, and the
housekeeping job over fakes (its clock, its lease, its log line, retention 0)."""

from __future__ import annotations

import pytest
import structlog

from bot.config import parse_config
from bot.rules.retention import (
    DAY_SECONDS,
    MIN_KEEP_DAYS,
    RetentionReport,
    once_only,
    retention_cutoff,
)
from jobs.csat import UNQUOTED_RATING_DAYS
from jobs.housekeeping import HOUSEKEEPING_INTERVAL_SECONDS, HOUSEKEEPING_LEASE, HousekeepingJob
from jobs.poll import STALE_AGENT_SECONDS
from storage.retention import Checkpoint
from tests.support.clock import START, FakeClock

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("days", "kept_days"),
    [(30, 30), (8, 8), (9, 9), (365, 365), (7, MIN_KEEP_DAYS), (1, MIN_KEEP_DAYS)],
)
def test_the_cutoff_is_retention_days_back_but_never_under_the_floor(days, kept_days):
    assert retention_cutoff(NOW, days) == NOW - kept_days * DAY_SECONDS


def test_retention_zero_keeps_everything():
    assert retention_cutoff(NOW, 0) is None


@pytest.mark.parametrize("days", [-1, True])
def test_a_negative_or_boolean_retention_is_refused(days):
    with pytest.raises(ValueError):
        retention_cutoff(NOW, days)


def test_the_floor_outlasts_every_window_that_relies_on_old_rows():
    # Meta redelivers for 7 days; an unquoted rating answers a 7-day-old survey; an agent's
    # comment older than a day is never sent. The floor must outlast each with a margin.
    assert MIN_KEEP_DAYS >= 8
    assert MIN_KEEP_DAYS > UNQUOTED_RATING_DAYS
    assert MIN_KEEP_DAYS * DAY_SECONDS > STALE_AGENT_SECONDS


@pytest.mark.parametrize(
    ("key", "kept"),
    [
        ("ack:SUP-1", True),
        ("status:SUP-1:2", False),
        ("csat:SUP-1:1", False),
        ("comment:10001:0", False),
        ("ai:7:0", False),
        ("ooh:abc:2027-01-15", False),
        ("back:ack:SUP-1", False),
    ],
)
def test_only_acknowledgements_are_once_only_for_ever(key, kept):
    assert once_only(key) is kept


def test_a_report_totals_its_tables():
    report = RetentionReport({"inbound_message": 3, "lease": 0, "outbound_message": 4})
    assert (report.total, report.complete) == (7, True)


# -- the job over fakes ---------------------------------------------------------------------------


class FakeRetention:
    def __init__(self, report: RetentionReport) -> None:
        self.report = report
        self.cutoffs: list[float] = []
        self.checkpoints = 0

    def delete_expired(self, *, cutoff: float) -> RetentionReport:
        self.cutoffs.append(cutoff)
        return self.report

    def checkpoint(self) -> Checkpoint | None:
        self.checkpoints += 1
        return Checkpoint(busy=False, log_frames=0, checkpointed_frames=0)


class FakeLeases:
    """Leases as storage/leases.py keeps them: one owner until expiry, renewable by the owner."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.held: dict[str, tuple[str, float]] = {}
        self.asked: list[tuple[str, str, float]] = []

    def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        self.asked.append((name, owner, ttl_seconds))
        holder = self.held.get(name)
        if holder is not None and holder[0] != owner and holder[1] > self.clock():
            return False
        self.held[name] = (owner, self.clock() + ttl_seconds)
        return True

    def release(self, name: str, owner: str) -> None:
        if self.held.get(name, ("", 0.0))[0] == owner:
            del self.held[name]


def settings(retention_days: int):
    return parse_config(
        {
            "storage": {"url": "sqlite:///:memory:", "retention_days": retention_days},
            "whatsapp": {
                "verify_token": "v",
                "app_secret": "test-app-secret-0123",
                "access_token": "a",
                "phone_number_id": "1",
            },
            "jira": {"url": "http://127.0.0.1:9", "email": "e@example.com", "api_token": "t"},
            "openai": {"api_key": "k"},
            "services": [{"id": "support", "project_key": "WA", "labels": ["whatsapp"]}],
        },
        env={},
    )


def job(retention_days: int, report: RetentionReport, clock: FakeClock, leases: FakeLeases, owner: str = "a"):
    deleted: list[tuple[str, int]] = []
    fake = FakeRetention(report)
    housekeeping = HousekeepingJob(
        settings=settings(retention_days),
        retention=fake,
        leases=leases,
        owner=owner,
        clock=clock,
        on_deleted=lambda table, rows: deleted.append((table, rows)),
    )
    return housekeeping, fake, deleted


def test_a_pass_deletes_before_the_cutoff_of_the_clock_and_logs_one_line():
    clock = FakeClock(START)
    leases = FakeLeases(clock)
    report = RetentionReport({"inbound_message": 5, "outbound_message": 0, "lease": 1})
    housekeeping, fake, deleted = job(30, report, clock, leases)
    with structlog.testing.capture_logs() as logs:
        assert housekeeping.run() == report
    assert fake.cutoffs == [START - 30 * DAY_SECONDS]
    assert leases.asked == [(HOUSEKEEPING_LEASE, "a", HOUSEKEEPING_INTERVAL_SECONDS)]
    assert fake.checkpoints == 1  # something was deleted: the log goes back to the file system
    assert deleted == [("inbound_message", 5), ("lease", 1)]
    (line,) = [entry for entry in logs if entry["event"] == "housekeeping"]
    assert line["deleted"] == {"inbound_message": 5, "outbound_message": 0, "lease": 1}
    assert (line["total"], line["complete"], line["wal_truncated"], line["retention_days"]) == (
        6,
        True,
        True,
        30,
    )

    clock.advance(DAY_SECONDS)
    housekeeping.run()
    assert fake.cutoffs[-1] == START + DAY_SECONDS - 30 * DAY_SECONDS  # the clock moves the cutoff


def test_a_pass_that_deleted_nothing_does_not_checkpoint():
    clock = FakeClock(START)
    housekeeping, fake, deleted = job(30, RetentionReport({"inbound_message": 0}), clock, FakeLeases(clock))
    housekeeping.run()
    assert (fake.checkpoints, deleted) == (0, [])


def test_retention_zero_never_sweeps_nor_takes_the_lease():
    clock = FakeClock(START)
    leases = FakeLeases(clock)
    housekeeping, fake, _ = job(0, RetentionReport({"inbound_message": 9}), clock, leases)
    assert housekeeping.run() is None
    assert (fake.cutoffs, leases.asked) == ([], [])


def test_two_instances_make_one_pass_per_interval():
    clock = FakeClock(START)
    leases = FakeLeases(clock)
    report = RetentionReport({"inbound_message": 1})
    first, first_fake, _ = job(30, report, clock, leases, owner="host-a")
    second, second_fake, _ = job(30, report, clock, leases, owner="host-b")
    assert first.run() == report
    assert second.run() is None  # the lease is held for the whole interval, not released
    clock.advance(HOUSEKEEPING_INTERVAL_SECONDS / 2)
    assert second.run() is None
    assert first.run() == report  # the holder's own next run renews it
    clock.advance(HOUSEKEEPING_INTERVAL_SECONDS + 1)  # the holder died: the lease runs out
    assert second.run() == report
    assert (len(first_fake.cutoffs), len(second_fake.cutoffs)) == (2, 1)
