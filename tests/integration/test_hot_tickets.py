"""Tickets whose customer wrote lately, read from the inbound rows on every engine."""

from __future__ import annotations

import itertools

import pytest

from storage import HotTickets
from storage.models import InboundMessageRow

NOW = 1_800_000_000
_ids = itertools.count()


@pytest.fixture
def hot(db):
    return HotTickets(db)


def message(db, issue_key: str | None, ts: int, *, origin: str = "customer") -> None:
    n = next(_ids)
    InboundMessageRow.insert(
        wamid=f"wamid.{n}",
        conversation_key=f"+52{issue_key}",
        phone_number_id="1001",
        meta_timestamp=ts,
        kind="text",
        raw_json="{}",
        state="done" if issue_key else "pending",
        next_attempt_at=0.0,
        issue_key=issue_key,
        created_at=0.0,
        updated_at=0.0,
        origin=origin,
        from_business=int(origin != "customer"),
    ).execute(db)


def test_nothing_stored_means_no_hot_ticket(hot):
    assert hot.hot_issue_keys(since=NOW - 900) == []


def test_since_is_inclusive_and_older_messages_do_not_count(db, hot):
    message(db, "WA-1", NOW - 900)
    message(db, "WA-2", NOW - 901)
    assert hot.hot_issue_keys(since=NOW - 900) == ["WA-1"]
    # A fractional bound: the message at NOW-900 is before NOW-899.5.
    assert hot.hot_issue_keys(since=NOW - 899.5) == []
    assert hot.hot_issue_keys(since=NOW - 900.5) == ["WA-1"]


def test_only_the_customers_own_messages_on_a_ticket_count(db, hot):
    message(db, "WA-1", NOW, origin="echo")  # the team wrote from the app
    message(db, "WA-2", NOW, origin="history")
    message(db, None, NOW)  # not on a ticket yet
    message(db, "WA-3", NOW - 10)
    assert hot.hot_issue_keys(since=NOW - 60) == ["WA-3"]


def test_keys_are_distinct_most_recent_writer_first(db, hot):
    for issue_key, ts in (("WA-1", NOW - 50), ("WA-2", NOW - 40), ("WA-1", NOW - 5), ("WA-3", NOW - 20)):
        message(db, issue_key, ts)
    message(db, "WA-2", NOW - 1, origin="echo")  # an echo does not make WA-2 the latest
    assert hot.hot_issue_keys(since=NOW - 60) == ["WA-1", "WA-3", "WA-2"]


def test_limit_keeps_the_most_recent(db, hot):
    for n in range(10):
        message(db, f"WA-{n}", NOW - 100 + n)
    assert hot.hot_issue_keys(since=NOW - 100, limit=3) == ["WA-9", "WA-8", "WA-7"]
    assert hot.hot_issue_keys(since=NOW - 100, limit=0) == []
    assert len(hot.hot_issue_keys(since=NOW - 100)) == 10


def test_the_query_uses_the_timestamp_index(db):
    names = {i.name for i in db.get_indexes("inbound_message")}
    assert "inbound_message_meta_timestamp" in names
