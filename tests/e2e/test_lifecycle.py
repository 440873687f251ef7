"""Closed tickets through the real `wajira run` process and the sandbox Jira over loopback:
a message after an agent closes the ticket opens a new linked one, reopens it, or reuses it."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from bot.rules.adf import text_from_doc
from sandbox import whatsapp_payloads as wa
from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, wait_until

pytestmark = pytest.mark.e2e

NAME, PHONE = "Ana García", "5215512345678"
CONVERSATION = "+525512345678"


class Customer:
    def __init__(self, daemon) -> None:
        self.meta = MetaSender(daemon.webhook_url, APP_SECRET)
        self.stamp = 1_700_000_000

    def says(self, text: str) -> None:
        self.stamp += 10
        payload = wa.message_payload(
            [wa.text(PHONE, text, timestamp=self.stamp)], contacts=[wa.contact(NAME, PHONE)]
        )
        assert self.meta.deliver(payload) == 200


def texts(jira, key: str) -> list[str]:
    return [
        text_from_doc(c["body"]) if isinstance(c["body"], dict) else c["body"] for c in jira.comments(key)
    ]


def query(tmp_path, sql: str, *args) -> list[tuple]:
    with closing(sqlite3.connect(tmp_path / "wajira.db")) as conn:
        return conn.execute(sql, args).fetchall()


def close_and_wait_for_poll(jira, tmp_path, key: str = "WA-1") -> None:
    """An agent closes the ticket; wait until the daemon's poll job has seen it."""
    jira.set_status(key, "Done", "done")
    wait_until(
        lambda: (
            query(tmp_path, "SELECT status_category FROM issue_state WHERE issue_key = ?", key) == [("done",)]
        ),
        what=f"the poll to see {key} done",
    )


def first_ticket(jira, customer: Customer) -> None:
    customer.says("my order is late")
    wait_until(lambda: texts(jira, "WA-1") if jira.issues() else None, what="WA-1 with its comment")


def test_a_closed_ticket_gives_a_new_linked_one(jira, make_daemon, tmp_path):
    daemon = make_daemon().start()
    customer = Customer(daemon)
    first_ticket(jira, customer)
    close_and_wait_for_poll(jira, tmp_path)

    customer.says("it is late again")
    wait_until(lambda: len(jira.issues()) == 2 and texts(jira, "WA-2"), what="WA-2 with its comment")

    assert texts(jira, "WA-1") == [f"[WhatsApp] {NAME}: my order is late"]
    assert texts(jira, "WA-2") == [f"[WhatsApp] {NAME}: it is late again"]
    new = jira.issue("WA-2")
    assert new["properties"]["wajira"]["previous"] == "WA-1"
    assert new["links"] == [{"type": "Relates", "inward": "WA-1", "outward": "WA-2"}]
    assert query(
        tmp_path, "SELECT issue_key FROM whatsapp_ticket_mapping WHERE phone_number = ?", CONVERSATION
    ) == [("WA-2",)]
    assert query(
        tmp_path,
        "SELECT issue_key, service_id, replaced_by FROM ticket_history WHERE phone_number = ?",
        CONVERSATION,
    ) == [("WA-1", "support", "WA-2")]

    # Back to normal: one Jira call for the next message, and no status look-ups.
    jira.reset_calls()
    customer.says("thanks")
    wait_until(lambda: len(texts(jira, "WA-2")) == 2, what="the third comment")
    calls = jira.calls
    assert calls["POST /rest/api/3/issue/{key}/comment"] == 1
    assert not any("transitions" in c or c == "GET /rest/api/3/issue/{key}" for c in calls)
    assert daemon.terminate() == 0


def test_reopen_moves_the_ticket_back_and_comments_on_it(jira, make_daemon, tmp_path):
    daemon = make_daemon(service='on_closed = "reopen"\nreopen_transition = "reopen"').start()
    customer = Customer(daemon)
    first_ticket(jira, customer)
    close_and_wait_for_poll(jira, tmp_path)

    customer.says("it is late again")
    wait_until(lambda: len(texts(jira, "WA-1")) == 2, what="the second comment on WA-1")

    issue = jira.issue("WA-1")
    assert (issue["status"], issue["statusCategory"]) == ("To Do", "new")
    assert texts(jira, "WA-1")[-1] == f"[WhatsApp] {NAME}: it is late again"
    assert [i["key"] for i in jira.issues()] == ["WA-1"]
    assert query(tmp_path, "SELECT COUNT(*) FROM ticket_history") == [(0,)]
    assert daemon.terminate() == 0


def test_reuse_comments_on_the_closed_ticket(jira, make_daemon, tmp_path):
    daemon = make_daemon(service='on_closed = "reuse"').start()
    customer = Customer(daemon)
    first_ticket(jira, customer)
    close_and_wait_for_poll(jira, tmp_path)

    customer.says("one more thing")
    wait_until(lambda: len(texts(jira, "WA-1")) == 2, what="the second comment on WA-1")

    issue = jira.issue("WA-1")
    assert issue["statusCategory"] == "done"
    assert [i["key"] for i in jira.issues()] == ["WA-1"]
    assert daemon.terminate() == 0
