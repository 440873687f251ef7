"""Several business numbers on one daemon: `metadata.phone_number_id` picks the `[[services]]`
(project, assistant), and every reply leaves from the number that received the conversation.

Three numbers: A is listed by service "support" (project WA, assistant on), B by service "sales"
(project SUP, assistant off, the default), and C by nobody, so it falls to the default.
"""

from __future__ import annotations

import time

import pytest

from bot.rules.adf import text_from_doc
from sandbox import whatsapp_payloads as wa
from sandbox.graph import GraphSandbox
from sandbox.meta import MetaSender
from tests.e2e.harness import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, wait_until

pytestmark = pytest.mark.e2e

NUMBER_A, DISPLAY_A = PHONE_NUMBER_ID, "15550783881"  # also [whatsapp] phone_number_id
NUMBER_B, DISPLAY_B = "107771112223334", "15550783882"
NUMBER_C, DISPLAY_C = "108882223334445", "15550783883"

ANA = ("Ana", "5215512345678", NUMBER_A, DISPLAY_A)
BO = ("Bo", "447911123456", NUMBER_B, DISPLAY_B)
CY = ("Cy", "16505551234", NUMBER_C, DISPLAY_C)

SUPPORT = f'phone_number_ids = ["{NUMBER_A}"]'
SALES = f"""
[[services]]
id = "sales"
project_key = "SUP"
labels = ["whatsapp"]
default = true
phone_number_ids = ["{NUMBER_B}"]

[services.assistant]
enabled = false
"""


@pytest.fixture
def graph(daemon_port):
    # The conftest's sandbox knows one number; this one knows three. Statuses go to the daemon.
    sandbox = GraphSandbox(
        access_token=ACCESS_TOKEN,
        app_secret=APP_SECRET,
        webhook_url=f"http://127.0.0.1:{daemon_port}/api/whatsapp/webhook",
        phone_numbers={NUMBER_A: DISPLAY_A, NUMBER_B: DISPLAY_B, NUMBER_C: DISPLAY_C},
    )
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def daemon(make_daemon, graph, openai_sandbox):
    return make_daemon(
        graph=graph, openai=openai_sandbox, assistant=True, service=SUPPORT, extra=SALES
    ).start()


def writes(daemon, graph, customer, text: str) -> str:
    name, phone, number, display = customer
    message = wa.text(phone, text)
    payload = wa.message_payload(
        [message], phone_number_id=number, display_phone=display, contacts=[wa.contact(name, phone)]
    )
    graph.observe_webhook(payload)  # the window opens on the number written to, and only there
    assert MetaSender(daemon.webhook_url, APP_SECRET).deliver(payload) == 200
    return message["id"]


def texts(jira, key):
    return [
        text_from_doc(c["body"]) if isinstance(c["body"], dict) else c["body"] for c in jira.comments(key)
    ]


def tickets_by_phone(jira):
    return {i["properties"]["wajira"]["wa_id"]: i for i in jira.issues()}


def test_each_number_routes_to_its_service_and_replies_leave_from_it(daemon, jira, graph, openai_sandbox):
    for customer in (ANA, BO, CY):
        writes(daemon, graph, customer, f"hello from {customer[0]}")
    wait_until(lambda: len(jira.issues()) == 3, what="three tickets")
    tickets = tickets_by_phone(jira)
    for _name, phone, _number, _display in (ANA, BO, CY):
        wait_until(lambda p=phone: jira.comments(tickets[p]["key"]), what=f"comment on {phone}'s ticket")

    # Tickets land in the routed service's project, and remember the number and the service.
    routed = {
        phone: (
            t["project"],
            t["properties"]["wajira"]["service"],
            t["properties"]["wajira"]["phone_number_id"],
        )
        for phone, t in tickets.items()
    }
    assert routed == {
        ANA[1]: ("WA", "support", NUMBER_A),
        BO[1]: ("SUP", "sales", NUMBER_B),
        CY[1]: ("SUP", "sales", NUMBER_C),  # unlisted number: the default service
    }

    # Only the support service's assistant answers, from number A.
    [ai_reply] = wait_until(lambda: graph.sent(), timeout=15, what="the AI reply to Ana")
    assert (ai_reply["to"], ai_reply["phone_number_id"]) == (ANA[1], NUMBER_A)
    assert graph.reads() and {r["phone_number_id"] for r in graph.reads()} == {NUMBER_A}
    time.sleep(2)  # the sales assistant is off: nothing more may come
    assert len(openai_sandbox.requests()) == 1 and len(graph.sent()) == 1
    assert texts(jira, tickets[ANA[1]]["key"])[1].startswith("[AI] ")
    for customer in (BO, CY):
        assert not any(t.startswith("[AI]") for t in texts(jira, tickets[customer[1]]["key"]))

    # Agents answer every ticket: each answer leaves from the number that customer wrote to.
    for name, phone, _number, _display in (ANA, BO, CY):
        jira.add_agent_comment(tickets[phone]["key"], f"Hi {name}", author="Agent Smith")
    wait_until(lambda: len(graph.sent()) == 4, timeout=15, what="three agent replies")
    time.sleep(1)
    agent_replies = {m["to"]: (m["phone_number_id"], m["body"]) for m in graph.sent()[1:]}
    assert agent_replies == {
        ANA[1]: (NUMBER_A, "*Agent Smith:* Hi Ana"),
        BO[1]: (NUMBER_B, "*Agent Smith:* Hi Bo"),
        CY[1]: (NUMBER_C, "*Agent Smith:* Hi Cy"),
    }
    # The Graph send path carried the same number: no send went anywhere else.
    assert {m["phone_number_id"] for m in graph.sent()} == {NUMBER_A, NUMBER_B, NUMBER_C}


def test_second_message_on_a_routed_number_stays_in_its_service(daemon, jira, graph, openai_sandbox):
    writes(daemon, graph, BO, "first")
    [issue] = wait_until(lambda: jira.issues(), what="Bo's ticket")
    wait_until(lambda: len(jira.comments(issue["key"])) == 1, what="first comment")
    writes(daemon, graph, BO, "second")
    wait_until(lambda: len(jira.comments(issue["key"])) == 2, what="second comment")
    time.sleep(1.5)
    assert [i["key"] for i in jira.issues()] == [issue["key"]] and issue["project"] == "SUP"
    assert openai_sandbox.requests() == [] and graph.sent() == []


def test_one_customer_writing_to_two_numbers_is_served_by_each(daemon, jira, graph, openai_sandbox):
    writes(daemon, graph, ANA, "to support")
    wait_until(lambda: graph.sent(), timeout=15, what="the support AI's reply")
    writes(daemon, graph, ("Ana", ANA[1], NUMBER_B, DISPLAY_B), "to sales")
    time.sleep(4)
    projects = sorted(i["project"] for i in jira.issues())
    senders = [m["phone_number_id"] for m in graph.sent()]
    # Routed by the number she wrote to: a sales ticket, no AI there, nothing sent from A for it.
    assert (projects, senders) == (["SUP", "WA"], [NUMBER_A])
