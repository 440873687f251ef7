"""Two services on two Jira accounts (and two AI accounts), one daemon.

Service "support" (number A, project WA) uses `[jira]` and `[openai]`; service "sales"
(number B, project SAL) has its own `[services.jira]` on another site and its own
`[services.openai]`, their secrets given as `WAJIRA_SERVICE_SALES_…` variables. Each customer's
ticket is made, commented and polled by its service's own account, each AI reply is paid by its
service's own AI account, and an agent's answer on either site reaches WhatsApp.
"""

from __future__ import annotations

import pytest

from bot.rules.adf import text_from_doc
from sandbox import whatsapp_payloads as wa
from sandbox.graph import GraphSandbox
from sandbox.jira import JiraSandbox
from sandbox.meta import MetaSender
from sandbox.openai_stub import OpenAISandbox
from tests.e2e.harness import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, wait_until

pytestmark = pytest.mark.e2e

NUMBER_A, DISPLAY_A = PHONE_NUMBER_ID, "15550783881"
NUMBER_B, DISPLAY_B = "107771112223334", "15550783882"
ANA = ("Ana", "5215512345678", NUMBER_A, DISPLAY_A)
BO = ("Bo", "447911123456", NUMBER_B, DISPLAY_B)

B_EMAIL, B_TOKEN, B_ACCOUNT = "bot-b@example.com", "e2e-jira-b-api-token", "account-b"
B_AI_KEY = "e2e-openai-key-b"


@pytest.fixture
def site_b():
    sandbox = JiraSandbox(email=B_EMAIL, api_token=B_TOKEN, account_id=B_ACCOUNT, display_name="sales bot")
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def ai_b():
    sandbox = OpenAISandbox(api_key=B_AI_KEY)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def graph(daemon_port):
    sandbox = GraphSandbox(
        access_token=ACCESS_TOKEN,
        app_secret=APP_SECRET,
        webhook_url=f"http://127.0.0.1:{daemon_port}/api/whatsapp/webhook",
        phone_numbers={NUMBER_A: DISPLAY_A, NUMBER_B: DISPLAY_B},
    )
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def daemon(make_daemon, graph, openai_sandbox, site_b, ai_b, monkeypatch):
    # The sales account's secrets come from the environment, by their documented names.
    monkeypatch.setenv("WAJIRA_SERVICE_SALES_JIRA_API_TOKEN", B_TOKEN)
    monkeypatch.setenv("WAJIRA_SERVICE_SALES_OPENAI_API_KEY", B_AI_KEY)
    sales = f"""
[[services]]
id = "sales"
project_key = "SAL"
labels = ["whatsapp"]
default = true
phone_number_ids = ["{NUMBER_B}"]

[services.assistant]
enabled = true
debounce_seconds = 0.5

[services.jira]
url = "{site_b.url}"
email = "{B_EMAIL}"

[services.openai]
base_url = "{ai_b.url}"
"""
    return make_daemon(
        graph=graph,
        openai=openai_sandbox,
        assistant=True,
        service=f'phone_number_ids = ["{NUMBER_A}"]',
        extra=sales,
    ).start()


def writes(daemon, graph, customer, text: str) -> None:
    name, phone, number, display = customer
    payload = wa.message_payload(
        [wa.text(phone, text)],
        phone_number_id=number,
        display_phone=display,
        contacts=[wa.contact(name, phone)],
    )
    graph.observe_webhook(payload)
    assert MetaSender(daemon.webhook_url, APP_SECRET).deliver(payload) == 200


def authors(site, key: str) -> list[tuple[str, str]]:
    """(account id, text) of each comment on the ticket."""
    return [
        (c["author"]["accountId"], text_from_doc(c["body"]) if isinstance(c["body"], dict) else c["body"])
        for c in site.comments(key)
    ]


def test_each_ticket_is_made_by_its_own_account(daemon, jira, site_b, graph, openai_sandbox, ai_b):
    a_account = jira.store.bot.account_id
    writes(daemon, graph, ANA, "hello support")
    writes(daemon, graph, BO, "hello sales")

    # Each ticket on its service's site, reported by that site's bot account, and on no other.
    wait_until(lambda: jira.issues(), what="Ana's ticket on site A")
    wait_until(lambda: site_b.issues(), what="Bo's ticket on site B")
    [on_a], [on_b] = jira.issues(), site_b.issues()
    assert (on_a["project"], on_a["reporter"]) == ("WA", a_account)
    assert (on_b["project"], on_b["reporter"]) == ("SAL", B_ACCOUNT)
    assert on_b["properties"]["wajira"]["service"] == "sales"

    # Each AI reply is asked of its service's AI account and written by its site's account.
    wait_until(lambda: len(authors(site_b, on_b["key"])) >= 2, timeout=20, what="the AI reply on SAL")
    wait_until(lambda: len(authors(jira, on_a["key"])) >= 2, timeout=20, what="the AI reply on WA")
    assert [who for who, _ in authors(site_b, on_b["key"])] == [B_ACCOUNT, B_ACCOUNT]
    assert [who for who, _ in authors(jira, on_a["key"])] == [a_account, a_account]
    assert authors(site_b, on_b["key"])[1][1].startswith("[AI] ")
    assert len(ai_b.requests()) == 1 and len(openai_sandbox.requests()) == 1
    assert "hello sales" in str(ai_b.requests()[0]) and "hello sales" not in str(openai_sandbox.requests())

    # An agent on site B answers: the poll of B's account finds it and it leaves from number B.
    site_b.add_agent_comment(on_b["key"], "A person from sales here")
    wait_until(
        lambda: [m for m in graph.sent() if "A person from sales here" in str(m)],
        timeout=15,
        what="agent reply",
    )
    sent = [m for m in graph.sent() if "A person from sales here" in str(m)]
    assert (sent[0]["to"], sent[0]["phone_number_id"]) == (BO[1], NUMBER_B)

    # The secrets never reach the log.
    logs = daemon.logs_text()
    assert B_TOKEN not in logs and B_AI_KEY not in logs
