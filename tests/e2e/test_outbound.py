"""Jira → AI → WhatsApp through the real daemon, with sandbox Jira, Graph and OpenAI on loopback."""

from __future__ import annotations

import dataclasses
import sqlite3
import time

import pytest

from bot.rules.adf import text_from_doc
from sandbox import whatsapp_payloads as wa
from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, wait_until

pytestmark = pytest.mark.e2e

NAME, PHONE = "Ana García", "5215512345678"


class Customer:
    """Writes like a WhatsApp user: Meta delivers to the daemon, the Graph sandbox sees the window open."""

    def __init__(self, daemon, graph, name=NAME, phone=PHONE) -> None:
        self.meta = MetaSender(daemon.webhook_url, APP_SECRET)
        self.graph, self.name, self.phone = graph, name, phone

    def says(self, text: str, *, at: float | None = None) -> str:
        message = wa.text(self.phone, text, timestamp=int(at or time.time()))
        payload = wa.message_payload([message], contacts=[wa.contact(self.name, self.phone)])
        self.graph.observe_webhook(payload)
        assert self.meta.deliver(payload) == 200
        return message["id"]


def texts(jira, key):
    return [
        text_from_doc(c["body"]) if isinstance(c["body"], dict) else c["body"] for c in jira.comments(key)
    ]


def sent_to_customer(graph):
    return [m for m in graph.sent() if m.get("type") == "text"]


def the_issue(jira):
    issues = wait_until(lambda: jira.issues(), what="a ticket")
    assert len(issues) == 1
    return issues[0]["key"]


@pytest.fixture
def story(jira, graph_sandbox, openai_sandbox, make_daemon):
    def start(**options):
        daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, **options).start()
        return daemon, Customer(daemon, graph_sandbox)

    return start


def test_ai_answers_on_whatsapp_within_seconds_not_a_poll_interval(
    story, jira, graph_sandbox, openai_sandbox
):
    _daemon, ana = story(assistant=True, poll_interval=30)
    started = time.monotonic()
    ana.says("Where is my order 1042?")
    sent = wait_until(lambda: sent_to_customer(graph_sandbox), timeout=15, what="AI reply on WhatsApp")
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"reply took {elapsed:.1f}s with a 30s poll interval"
    key = the_issue(jira)
    comments = texts(jira, key)
    assert comments[0] == f"[WhatsApp] {NAME}: Where is my order 1042?"
    assert comments[1].startswith("[AI] ")
    assert sent[0]["to"] == PHONE and comments[1].removeprefix("[AI] ")[:30] in sent[0]["body"]
    assert jira.comments(key)[1]["properties"]["wajira"]["kind"] == "ai"
    # Marked read with a typing indicator while the AI worked.
    assert graph_sandbox.reads() and graph_sandbox.reads()[0]["typing"] is True


def test_agent_comment_reaches_customer_and_internal_never_leaves_jira(
    story, jira, graph_sandbox, openai_sandbox
):
    _daemon, ana = story(assistant=True)
    ana.says("Hello?")
    wait_until(lambda: sent_to_customer(graph_sandbox), what="AI reply")
    key = the_issue(jira)
    secret = "INTERNAL: customer owes 3 invoices, refund denied"
    jira.add_agent_comment(key, secret, internal=True, author="Agent Smith")
    jira.add_agent_comment(key, "Hi Ana, I'm **checking** your order now.", author="Agent Smith")
    wait_until(lambda: len(sent_to_customer(graph_sandbox)) == 2, timeout=10, what="agent push")
    agent_msg = sent_to_customer(graph_sandbox)[1]["body"]
    assert agent_msg == "*Agent Smith:* Hi Ana, I'm *checking* your order now."
    # After the handoff the AI stays quiet, and the internal comment is in no message and no prompt.
    ana.says("Thanks!")
    time.sleep(4)
    bodies = [m["body"] for m in sent_to_customer(graph_sandbox)]
    assert len(bodies) == 2
    assert all("invoices" not in b for b in bodies)
    assert "invoices" not in openai_sandbox.prompts_text()
    assert len(openai_sandbox.requests()) == 1


def test_no_ai_reply_to_ai_or_agent_comments_over_many_polls(story, jira, graph_sandbox, openai_sandbox):
    _daemon, ana = story(assistant=True, poll_interval=1)
    ana.says("One question")
    wait_until(lambda: sent_to_customer(graph_sandbox), what="AI reply")
    time.sleep(6)  # six polls over the same comments
    assert len(openai_sandbox.requests()) == 1
    assert len(sent_to_customer(graph_sandbox)) == 1
    key = the_issue(jira)
    assert sum(t.startswith("[AI]") for t in texts(jira, key)) == 1


def test_jira_user_far_from_utc_loses_nothing(jira, graph_sandbox, openai_sandbox, make_daemon):
    # UTC+14: a zone-naive JQL date would be read 14 hours off.
    jira.settings = dataclasses.replace(jira.settings, time_zone="Pacific/Kiritimati")
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, assistant=False).start()
    ana = Customer(daemon, graph_sandbox)
    ana.says("hi")
    key = the_issue(jira)
    wait_until(lambda: len(jira.comments(key)) == 1, what="customer comment")
    jira.add_agent_comment(key, "Hello from Jira", author="Agent Kiri")
    wait_until(lambda: sent_to_customer(graph_sandbox), timeout=10, what="agent push")
    assert sent_to_customer(graph_sandbox)[0]["body"] == "*Agent Kiri:* Hello from Jira"


def test_more_comments_than_search_inlines(jira, graph_sandbox, openai_sandbox, make_daemon):
    jira.settings = dataclasses.replace(jira.settings, search_inline_comment_limit=2)
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, assistant=False).start()
    ana = Customer(daemon, graph_sandbox)
    for i in range(4):
        ana.says(f"message {i}")
    key = the_issue(jira)
    wait_until(lambda: len(jira.comments(key)) == 4, what="customer comments")
    for i in range(3):
        jira.add_agent_comment(key, f"answer {i}", author="Agent Lee")
    wait_until(lambda: len(sent_to_customer(graph_sandbox)) == 3, timeout=10, what="three pushes")
    time.sleep(2)
    assert [m["body"] for m in sent_to_customer(graph_sandbox)] == [
        f"*Agent Lee:* answer {i}" for i in range(3)
    ]


def test_closed_window_without_template_leaves_a_note(
    jira, graph_sandbox, openai_sandbox, make_daemon, tmp_path
):
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, assistant=True).start()
    ana = Customer(daemon, graph_sandbox)
    ana.says("old message", at=time.time() - 26 * 3600)
    key = the_issue(jira)
    wait_until(lambda: len(jira.comments(key)) == 1, what="customer comment")
    jira.add_agent_comment(key, "Sorry for the delay!", author="Agent Smith")
    wait_until(lambda: len(jira.comments(key)) == 3, timeout=10, what="internal note")
    note = jira.comments(key)[2]
    assert note["properties"]["wajira"]["kind"] == "note"
    assert note["properties"]["sd.public.comment"] == {"internal": True}
    assert "24-hour window" in text_from_doc(note["body"])
    assert sent_to_customer(graph_sandbox) == [] and graph_sandbox.sent() == []
    assert openai_sandbox.requests() == []  # a day-old message is history, not a turn


def test_closed_window_with_template_sends_the_template(jira, graph_sandbox, openai_sandbox, make_daemon):
    daemon = make_daemon(
        graph=graph_sandbox,
        openai=openai_sandbox,
        whatsapp='template_name = "ticket_update"\ntemplate_language = "es_MX"\ntemplate_parameters = ["{name}", "{issue_key}"]',
    ).start()
    ana = Customer(daemon, graph_sandbox)
    ana.says("old message", at=time.time() - 26 * 3600)
    key = the_issue(jira)
    wait_until(lambda: len(jira.comments(key)) == 1, what="customer comment")
    jira.add_agent_comment(key, "We have news about your order", author="Agent Smith")
    [template] = wait_until(lambda: graph_sandbox.sent(), timeout=10, what="template")
    assert template["type"] == "template"
    assert template["template"]["name"] == "ticket_update"
    params = [p["text"] for p in template["template"]["components"][0]["parameters"]]
    assert params == [NAME, key]


def test_delivery_statuses_update_the_outbound_row_and_never_go_back(story, jira, graph_sandbox, tmp_path):
    daemon, ana = story(assistant=False)
    ana.says("hi")
    key = the_issue(jira)
    wait_until(lambda: len(jira.comments(key)) == 1, what="comment")
    jira.add_agent_comment(key, "Hello!", author="Agent Smith")
    [sent] = wait_until(lambda: sent_to_customer(graph_sandbox), timeout=10, what="push")
    db = sqlite3.connect(tmp_path / "wajira.db")
    state = lambda: db.execute("select state, wamid from outbound_message").fetchone()  # noqa: E731
    wait_until(lambda: state() and state()[0] == "read", timeout=10, what="read status")
    assert state()[1] == sent["wamid"]
    # Meta redelivers an older "delivered" after "read": still read.
    meta = MetaSender(daemon.webhook_url, APP_SECRET)
    assert meta.deliver(wa.status_payload(sent["wamid"], "delivered", PHONE)) == 200
    time.sleep(2)
    assert state()[0] == "read"


def test_failed_delivery_leaves_a_note_with_metas_reason(story, jira, graph_sandbox):
    _daemon, ana = story(assistant=False)
    ana.says("hi")
    key = the_issue(jira)
    wait_until(lambda: len(jira.comments(key)) == 1, what="comment")
    graph_sandbox.fail_delivery(True, code=131026)
    jira.add_agent_comment(key, "This will bounce", author="Agent Smith")
    wait_until(lambda: len(jira.comments(key)) == 3, timeout=10, what="failure note")
    note = texts(jira, key)[2]
    assert "131026" in note and "This will bounce" in note


def run_cli(daemon, *args):
    import subprocess
    import sys

    from tests.e2e.harness import REPO

    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "--config", str(daemon.config_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_catch_up_twice_pushes_once(jira, graph_sandbox, openai_sandbox, make_daemon):
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, assistant=False).start()
    ana = Customer(daemon, graph_sandbox)
    ana.says("hi")
    key = the_issue(jira)
    wait_until(lambda: len(jira.comments(key)) == 1, what="customer comment")
    time.sleep(1.5)  # let the poller record the customer comment
    assert daemon.terminate() == 0
    # While the daemon is down, agents answer.
    jira.add_agent_comment(key, "First answer", author="Agent Smith")
    jira.add_agent_comment(key, "Second answer", author="Agent Smith")
    dry = run_cli(daemon, "catch-up", "--since", "2h", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("send to WhatsApp") == 2 and graph_sandbox.sent() == []
    first = run_cli(daemon, "catch-up", "--since", "2h")
    assert first.returncode == 0, first.stderr
    second = run_cli(daemon, "catch-up", "--since", "2h")
    assert second.returncode == 0, second.stderr
    # And the daemon, back up, polls the same window: still nothing twice.
    daemon.start()
    time.sleep(3)
    assert [m["body"] for m in sent_to_customer(graph_sandbox)] == [
        "*Agent Smith:* First answer",
        "*Agent Smith:* Second answer",
    ]


def test_catch_up_rejects_a_bad_since(jira, graph_sandbox, openai_sandbox, make_daemon):
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox)
    done = run_cli(daemon, "catch-up", "--since", "yesterday-ish")
    assert done.returncode == 2 and "--since" in done.stderr


def test_no_secret_phone_number_or_message_text_in_any_log_line(story, jira, graph_sandbox, openai_sandbox):
    from tests.e2e.conftest import JIRA_TOKEN
    from tests.e2e.harness import ACCESS_TOKEN, OPENAI_KEY, VERIFY_TOKEN

    daemon, ana = story(assistant=True)
    ana.says("my card number is 4111 and my secret word is swordfish")
    wait_until(lambda: sent_to_customer(graph_sandbox), what="AI reply")
    key = the_issue(jira)
    jira.add_agent_comment(key, "Confidential agent text", author="Agent Smith")
    wait_until(lambda: len(sent_to_customer(graph_sandbox)) == 2, what="agent push")
    import requests

    requests.get(
        daemon.webhook_url,
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        timeout=5,
    )
    assert daemon.terminate() == 0
    logs = daemon.logs_text()
    assert "message_delivered" in logs and "whatsapp_sent" in logs  # the log is not empty
    for secret in (APP_SECRET, VERIFY_TOKEN, ACCESS_TOKEN, OPENAI_KEY, JIRA_TOKEN):
        assert secret not in logs, f"a configured secret appears in the log: {secret[:6]}…"
    assert PHONE not in logs and "5512345678" not in logs
    assert "swordfish" not in logs and "Confidential agent text" not in logs
