"""Coexistence through the real daemon: the team also answers from the WhatsApp Business App.

Sandbox Jira, Graph and OpenAI on loopback; Meta's coexistence webhooks (`smb_message_echoes`,
`history`) signed and delivered like the real ones.
"""

from __future__ import annotations

import time

import pytest

from bot.rules.adf import text_from_doc
from sandbox import whatsapp_payloads as wa
from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, wait_until
from tests.e2e.test_outbound import NAME, PHONE, Customer, sent_to_customer, the_issue

pytestmark = pytest.mark.e2e

APP = f"+{wa.DISPLAY_PHONE} (app)"  # how the comment names the business number
HISTORY_SETTLE = 10  # storage.inbound.HISTORY_SETTLE_SECONDS, the daemon's default


def comments(jira, key):
    return [(text_from_doc(c["body"]), c["properties"].get("wajira") or {}) for c in jira.comments(key)]


@pytest.fixture
def team(jira, graph_sandbox, openai_sandbox, make_daemon):
    """(daemon, the customer, Meta delivering what the team does in the app)."""
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, assistant=True).start()
    return daemon, Customer(daemon, graph_sandbox), MetaSender(daemon.webhook_url, APP_SECRET)


def test_an_echo_is_mirrored_and_pauses_the_ai(team, jira, graph_sandbox, openai_sandbox):
    _, ana, meta = team
    ana.says("Where is my order 1042?")
    wait_until(lambda: sent_to_customer(graph_sandbox), timeout=15, what="AI reply")
    key = the_issue(jira)

    # Someone in the shop answers from the WhatsApp Business App on their phone.
    assert meta.deliver(wa.echo_payload(PHONE, "Hi Ana, I'll check with the courier.")) == 200
    wait_until(lambda: len(jira.comments(key)) == 3, timeout=10, what="echo comment")
    text, prop = comments(jira, key)[2]
    assert text == f"[WhatsApp] {APP}: Hi Ana, I'll check with the courier."
    assert prop["kind"] == "echo" and prop["wamid"] and not prop.get("history")
    time.sleep(2)  # the poll job sees the echo: a human reply

    ana.says("Thanks! Any news?")
    wait_until(lambda: len(jira.comments(key)) == 4, timeout=10, what="customer comment")
    time.sleep(4)  # debounce, polls, AI job: nothing answers
    assert len(openai_sandbox.requests()) == 1
    assert len(sent_to_customer(graph_sandbox)) == 1  # the echo is never sent back to WhatsApp
    assert [p.get("kind") for _, p in comments(jira, key)] == ["customer", "ai", "echo", "customer"]


def test_history_is_imported_once_in_order_and_never_answered(team, jira, graph_sandbox, openai_sandbox):
    _, ana, meta = team
    ana.says("Hello, it's me again")
    wait_until(lambda: sent_to_customer(graph_sandbox), timeout=15, what="AI reply")
    key = the_issue(jira)

    days_ago = int(time.time()) - 3 * 86400
    old = [
        wa.history_message(PHONE, "Do you ship to Monterrey?", timestamp=days_ago),
        wa.history_message(PHONE, "Yes, in 2 days.", from_business=True, timestamp=days_ago + 60),
        wa.history_message(PHONE, "Great, ordering now", timestamp=days_ago + 120),
        wa.history_message(PHONE, "Thank you!", from_business=True, timestamp=days_ago + 180),
    ]
    chunks = [
        wa.history_payload(PHONE, old[:2], phase=0, chunk_order=1, progress=50),
        wa.history_payload(PHONE, old[2:], phase=0, chunk_order=2, progress=100),
    ]
    for doc in reversed(chunks):  # Meta may deliver chunks out of order
        assert meta.deliver(doc) == 200
    for doc in chunks:  # and deliver again
        assert meta.deliver(doc) == 200

    wait_until(lambda: len(jira.comments(key)) == 6, timeout=HISTORY_SETTLE + 15, what="history comments")
    time.sleep(3)
    imported = comments(jira, key)[2:]
    assert len(jira.comments(key)) == 6  # each once
    assert [t.split("] ", 1)[1] for t, _ in imported] == [
        f"{NAME}: Do you ship to Monterrey?",
        f"{APP}: Yes, in 2 days.",
        f"{NAME}: Great, ordering now",
        f"{APP}: Thank you!",
    ]
    assert all(
        t.startswith("[WhatsApp history ") and t.split("] ", 1)[0].endswith(" UTC") for t, _ in imported
    )
    assert [(p["kind"], p["history"]) for _, p in imported] == [
        ("customer", True),
        ("echo", True),
        ("customer", True),
        ("echo", True),
    ]
    assert len(openai_sandbox.requests()) == 1  # history is not a turn
    assert len(sent_to_customer(graph_sandbox)) == 1  # and nothing of it goes back to WhatsApp


def test_an_echo_alone_does_not_open_the_window(team, jira, graph_sandbox, openai_sandbox):
    _, ana, meta = team
    ana.says("old question", at=time.time() - 25 * 3600)
    key = the_issue(jira)
    wait_until(lambda: len(jira.comments(key)) == 1, what="customer comment")
    # The team writes from the app now: Meta took it (the app may), but the customer did not write.
    assert meta.deliver(wa.echo_payload(PHONE, "Sorry, we missed this!")) == 200
    wait_until(lambda: len(jira.comments(key)) == 2, timeout=10, what="echo comment")

    jira.add_agent_comment(key, "Your refund is on its way.", author="Agent Smith")
    wait_until(lambda: len(jira.comments(key)) == 4, timeout=10, what="held note")
    text, prop = comments(jira, key)[3]
    assert prop["kind"] == "note" and "24-hour window" in text and "Your refund is on its way." in text
    assert graph_sandbox.sent() == []
    assert openai_sandbox.requests() == []
