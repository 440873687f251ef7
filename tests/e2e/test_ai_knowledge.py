"""The AI's knowledge through the real daemon (issue 14): a fact only in the knowledge file and a
fact only in a resolved ticket both reach the model's request, the resolved ticket's internal
comment never does, and the model calling `hand_over` hands the ticket to people."""

from __future__ import annotations

import time

import pytest
import requests

from bot.rules.comment_property import customer_value, entity_properties
from tests.e2e.conftest import JIRA_EMAIL, JIRA_TOKEN
from tests.e2e.harness import wait_until
from tests.e2e.test_outbound import Customer, sent_to_customer, texts

pytestmark = pytest.mark.e2e

KNOWLEDGE = """\
# Shipping

## Delivery times
Parcels inside the country arrive in 2 to 3 working days.

# Returns

## Refunds for damaged goods
A damaged parcel is refunded in full within 5 days: send a photo of the box.
The refund code is REFUND-KB-7731.
"""
INTERNAL_SECRET = "INTERNAL-ONLY-4411: customer is on the fraud watch list"
RESOLVED_ANSWER = "Your warranty claim for the blender motor is approved; the code is WARRANTY-TK-5520."
HAND_OVER_TEXT = "A colleague takes over {issue_key} now, {name}."


def knowledge_config(tmp_path) -> str:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "shop.md").write_text(KNOWLEDGE, encoding="utf-8")
    # make_daemon writes its config into tmp_path: the path is relative to it.
    return f"""
knowledge_files = ["kb/shop.md"]
resolved_examples = 3
hand_over_message = "{HAND_OVER_TEXT}"
"""


def resolved_ticket(jira) -> str:
    """A ticket of the project solved last week: the customer's question, an agent's public answer
    and an internal comment, then Done."""
    auth = (JIRA_EMAIL, JIRA_TOKEN)
    created = requests.post(
        f"{jira.url}/rest/api/3/issue",
        auth=auth,
        json={
            "fields": {
                "project": {"key": "WA"},
                "issuetype": {"name": "Task"},
                "summary": "Blender motor stopped working",
                "labels": ["whatsapp"],
            }
        },
        timeout=5,
    )
    created.raise_for_status()
    key = created.json()["key"]
    question = {
        "body": _doc("[WhatsApp] Ben: My blender motor stopped, is the warranty claim possible?"),
        "properties": entity_properties(customer_value("wamid.resolved-1")),
    }
    requests.post(
        f"{jira.url}/rest/api/3/issue/{key}/comment", auth=auth, json=question, timeout=5
    ).raise_for_status()
    jira.add_agent_comment(key, RESOLVED_ANSWER)
    jira.add_agent_comment(key, INTERNAL_SECRET, internal=True)
    jira.set_status(key, "Done", "done")
    return key


def _doc(text: str) -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def new_ticket(jira, other: str) -> str:
    found = wait_until(
        lambda: [i["key"] for i in jira.issues() if i["key"] != other], what="the customer's ticket"
    )
    assert len(found) == 1
    return found[0]


def ai_replies(jira, key) -> list[str]:
    return [t for t in texts(jira, key) if t.startswith("[AI]")]


def test_knowledge_and_resolved_tickets_reach_the_model_and_internal_comments_never_do(
    jira, graph_sandbox, openai_sandbox, make_daemon, tmp_path
):
    old = resolved_ticket(jira)
    daemon = make_daemon(
        graph=graph_sandbox, openai=openai_sandbox, assistant=True, extra=knowledge_config(tmp_path)
    ).start()
    ana = Customer(daemon, graph_sandbox)

    ana.says("My parcel arrived damaged, how do I get a refund?")
    key = new_ticket(jira, old)
    wait_until(lambda: ai_replies(jira, key), what="the first AI reply")
    first = openai_sandbox.requests()[-1]["messages"]
    assert "REFUND-KB-7731" in _reference(first)
    assert "REFUND-KB-7731" not in first[0]["content"]  # never merged into the operator's prompt

    ana.says("And the warranty claim for my blender motor?")
    wait_until(lambda: len(ai_replies(jira, key)) == 2, what="the second AI reply")
    second = openai_sandbox.requests()[-1]["messages"]
    assert "WARRANTY-TK-5520" in _reference(second)
    assert INTERNAL_SECRET not in openai_sandbox.prompts_text()
    assert "INTERNAL-ONLY" not in openai_sandbox.prompts_text()

    # Agents can audit what each answer was based on.
    sources = [c["properties"]["wajira"].get("sources", {}) for c in jira.comments(key) if _kind(c) == "ai"]
    assert any("shop.md#" in s for s in sources[0]["sections"])
    assert old in sources[1]["tickets"]


def test_the_model_handing_over_tells_the_customer_labels_the_ticket_and_stays_silent(
    jira, graph_sandbox, openai_sandbox, make_daemon, tmp_path
):
    daemon = make_daemon(
        graph=graph_sandbox, openai=openai_sandbox, assistant=True, extra=knowledge_config(tmp_path)
    ).start()
    ana = Customer(daemon, graph_sandbox)
    ana.says("Hello, where is my parcel?")
    key = new_ticket(jira, "")
    wait_until(lambda: ai_replies(jira, key), what="the first AI reply")

    ana.says("I want to talk to a human please")
    hand_over = HAND_OVER_TEXT.format(issue_key=key, name=ana.name)
    wait_until(
        lambda: hand_over in [m["body"] for m in sent_to_customer(graph_sandbox)], what="the hand-over text"
    )
    assert f"[AI] {hand_over}" in texts(jira, key)
    wait_until(lambda: "wajira-handover" in jira.issue(key)["labels"], what="the hand-over label")
    notes = [t for t in texts(jira, key) if "handed this conversation" in t]
    assert len(notes) == 1
    assert "customer asked" in notes[0]

    requests_before = len(openai_sandbox.requests())
    ana.says("Hello? Anyone?")
    time.sleep(4)  # several polls and AI runs later
    assert len(openai_sandbox.requests()) == requests_before
    assert len(ai_replies(jira, key)) == 2
    assert [m["body"] for m in sent_to_customer(graph_sandbox)].count(hand_over) == 1


def _reference(messages: list[dict]) -> str:
    """The reference message: its own message after the system prompt."""
    found = [
        m["content"]
        for m in messages[1:]
        if "<section" in str(m["content"]) or "<ticket" in str(m["content"])
    ]
    assert len(found) == 1, messages
    return found[0]


def _kind(comment: dict) -> str | None:
    value = (comment.get("properties") or {}).get("wajira")
    return value.get("kind") if isinstance(value, dict) else None
