"""The customer's journey through the real daemon (issue 13): the acknowledgement with the
ticket key, a status notice exactly once over several polls, and a CSAT rating that becomes a
`[CSAT]` comment and not an AI turn."""

from __future__ import annotations

import time

import pytest

from sandbox import whatsapp_payloads as wa
from tests.e2e.harness import wait_until
from tests.e2e.test_outbound import NAME, PHONE, Customer, sent_to_customer, texts, the_issue

pytestmark = pytest.mark.e2e

JOURNEY = """
[services.notify]
on_create = "Hi {name}, we have it: {issue_key}."
on_status = { "Done" = "{issue_key} is solved." }

[services.csat]
enabled = true
question = "How did we do on {issue_key}?"
"""


def test_acknowledgement_notice_once_and_a_rating_on_its_ticket(
    jira, graph_sandbox, openai_sandbox, make_daemon
):
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, assistant=True, extra=JOURNEY).start()
    ana = Customer(daemon, graph_sandbox)
    ana.says("My order 1042 is late")
    key = the_issue(jira)
    ack = f"Hi {NAME}, we have it: {key}."
    wait_until(lambda: ack in [m["body"] for m in sent_to_customer(graph_sandbox)], what="acknowledgement")
    wait_until(lambda: any(t.startswith("[AI]") for t in texts(jira, key)), what="the first AI reply")
    ana.says("Any news?")
    wait_until(lambda: len([t for t in texts(jira, key) if t.startswith("[AI]")]) == 2, what="two AI replies")
    assert [m["body"] for m in sent_to_customer(graph_sandbox)].count(ack) == 1
    assert f"[Auto] {ack}" in texts(jira, key)

    jira.set_status(key, "Done", "done")
    wait_until(lambda: graph_sandbox.lists(), what="the satisfaction survey")
    time.sleep(3.5)  # three more poll passes (interval 1 s) read the same status
    notices = [m["body"] for m in sent_to_customer(graph_sandbox) if m["body"] == f"{key} is solved."]
    assert len(notices) == 1
    [survey] = graph_sandbox.lists()
    assert survey["body"] == f"How did we do on {key}?"
    assert [r["id"] for r in survey["rows"]] == [f"csat:{n}" for n in range(1, 6)]

    ai_before = len([t for t in texts(jira, key) if t.startswith("[AI]")])
    choice = wa.list_reply(
        PHONE,
        "Excellent",
        row_id="csat:5",
        timestamp=int(time.time()),
        context={"from": "x", "id": survey["wamid"]},
    )
    payload = wa.message_payload([choice], contacts=[wa.contact(NAME, PHONE)])
    graph_sandbox.observe_webhook(payload)
    assert ana.meta.deliver(payload) == 200
    wait_until(lambda: f"[CSAT] {NAME} rated 5/5" in texts(jira, key), what="the [CSAT] comment")
    rating = next(
        c for c in jira.comments(key) if (c.get("properties") or {}).get("wajira", {}).get("kind") == "csat"
    )
    assert rating["properties"]["wajira"]["rating"] == 5
    time.sleep(3)  # the AI would have answered within a poll and its debounce
    assert len([t for t in texts(jira, key) if t.startswith("[AI]")]) == ai_before
