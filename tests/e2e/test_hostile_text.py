"""Issue 10: an agent's comment built to make a regex backtrack must not stall the daemon.

A regex holds the GIL for its whole search, so one quadratic rule in the poll job's rendering
would keep the webhook's threads from answering anyone. Here an agent posts such comments on a
managed ticket while Meta's deliveries and health checks keep coming: each must still be answered
within a second, and the comments must still reach the customer, rendered.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from bot.rules.adf import text_from_doc
from bot.rules.markdown import markdown_to_whatsapp
from bot.rules.outgoing import agent_message, split_message
from sandbox import whatsapp_payloads as wa
from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, wait_until
from tests.e2e.test_outbound import PHONE, Customer, sent_to_customer, the_issue

pytestmark = pytest.mark.e2e

AGENT = "Agent Smith"
ANSWER_WITHIN = 1.0  # seconds, for every probe
# Both fit Jira's 32,767-character comment limit. Before the fix the first took seconds to
# render (the heading rule was quadratic in the blanks), the second about as long again.
HOSTILE_COMMENTS = [
    "# a" + " " * 16_000 + "b",
    "**a " * 3_000 + "\n\n" + "## b" + "\t" * 6_000 + "c\n\n" + "[" * 2_000 + " ~~x " * 500,
]


class Probe(threading.Thread):
    """Alternates a signed status delivery and `GET /healthz`, timing each answer, until stopped."""

    def __init__(self, daemon) -> None:
        super().__init__(daemon=True)
        self.meta = MetaSender(daemon.webhook_url, APP_SECRET)
        self.health_url = f"{daemon.url}/healthz"
        self.answers: list[tuple[str, int, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            kind = "webhook" if n % 2 else "healthz"
            started = time.monotonic()
            try:
                if kind == "webhook":
                    status = self.meta.deliver(wa.status_payload(f"wamid.probe{n}", "delivered", PHONE))
                else:
                    status = requests.get(self.health_url, timeout=30).status_code
            except requests.RequestException:
                status = 0
            self.answers.append((kind, status, time.monotonic() - started))
            time.sleep(0.05)

    def stop(self) -> list[tuple[str, int, float]]:
        self.stopping.set()
        self.join(timeout=60)
        return self.answers


def test_hostile_agent_comments_neither_stall_the_webhook_nor_get_lost(
    jira, graph_sandbox, openai_sandbox, make_daemon
):
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, assistant=False).start()
    Customer(daemon, graph_sandbox).says("Hello, my order?")
    key = the_issue(jira)
    wait_until(lambda: len(jira.comments(key)) == 1, what="the customer's comment")

    probe = Probe(daemon)
    probe.start()
    try:
        time.sleep(0.5)
        expected: list[str] = []
        for text in HOSTILE_COMMENTS:
            jira.add_agent_comment(key, text, author=AGENT)
            # As the daemon reads it back from Jira (ADF), then renders and cuts it.
            as_read = text_from_doc(jira.comments(key)[-1]["body"])
            expected += split_message(agent_message(AGENT, markdown_to_whatsapp(as_read)))
        wait_until(
            lambda: len(sent_to_customer(graph_sandbox)) >= len(expected),
            timeout=60,
            what="the agent's comments on WhatsApp",
        )
        time.sleep(1.5)  # and a little longer: the daemon keeps answering after the pushes
    finally:
        answers = probe.stop()

    assert len(answers) > 20
    slow = [a for a in answers if a[1] != 200 or a[2] >= ANSWER_WITHIN]
    assert not slow, f"{len(slow)} of {len(answers)} probes failed or took ≥ {ANSWER_WITHIN}s: {slow[:10]}"
    assert [m["body"] for m in sent_to_customer(graph_sandbox)] == expected
    assert expected[:2] == [f"*{AGENT}:* *a", "b*"]  # the heading, cut where its blanks are
