"""WhatsApp Flows through the real `wajira run` process: the encrypted data-exchange endpoint
(played from Meta's side by sandbox.flows_client, with a key pair made here) and a completed
flow opening a ticket with the fields its `[[services.flows]]` table maps."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.rules.adf import text_from_doc
from bot.rules.signature import sign
from sandbox import whatsapp_payloads as wa
from sandbox.flows_client import FlowsClient, new_key_pair
from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, REPO, wait_until

pytestmark = pytest.mark.e2e

PASSPHRASE = "e2e-pem-passphrase"
ANA = ("Ana García", "5215512345678")


def flows_config(key_file, passphrase: str = PASSPHRASE) -> str:
    return f"""
[[services.flows]]
id = "order-issue"
flow_token_prefix = "order-issue:"
summary = "Order issue: {{order_id}}"
description_fields = ["order_id", "problem", "details"]
labels = ["flow", "problem-{{problem}}"]
custom_fields = {{ customfield_10010 = "{{order_id}}" }}

[flows]
private_key_file = "{key_file}"
private_key_passphrase = "{passphrase}"

[[flows.screens]]
id = "INIT"
next_screen = "DETAILS"
data = {{ problems = [{{ id = "late", title = "Late delivery" }}] }}

[[flows.screens]]
id = "DETAILS"
next_screen = "CONFIRM"
data = {{ summary = "Order {{order_id}}: {{problem}}", editable = true }}
"""


@pytest.fixture
def flows_daemon(tmp_path, make_daemon):
    pem, public = new_key_pair(PASSPHRASE)
    key_file = tmp_path / "flows.pem"
    key_file.write_bytes(pem)
    daemon = make_daemon(extra=flows_config(key_file)).start()
    client = FlowsClient(f"{daemon.url}/api/whatsapp/flows", APP_SECRET, public)
    return daemon, client


def test_ping_and_data_exchange_are_answered_encrypted(flows_daemon) -> None:
    daemon, client = flows_daemon
    ping = client.ping()
    assert ping.status == 200 and ping.data == {"data": {"status": "active"}}

    init = client.init("order-issue:1")
    assert init.data == {
        "screen": "DETAILS",
        "data": {"problems": [{"id": "late", "title": "Late delivery"}]},
    }
    step = client.data_exchange("DETAILS", {"order_id": "A-17", "problem": "late"}, "order-issue:1")
    assert step.data == {"screen": "CONFIRM", "data": {"summary": "Order A-17: late", "editable": True}}
    back = client.back("DETAILS", "order-issue:1")
    assert back.data == {
        "screen": "DETAILS",
        "data": {"problems": [{"id": "late", "title": "Late delivery"}]},
    }

    outcomes = [e.get("outcome") for e in daemon.log_events() if e.get("event") == "flow_request_answered"]
    assert outcomes == ["ping", "init", "data_exchange", "back"]
    # The customer's answers never reach the log.
    assert "A-17" not in daemon.logs_text()


def test_unsigned_garbage_and_foreign_requests_are_refused(flows_daemon) -> None:
    _daemon, client = flows_daemon
    sealed = json.dumps(
        {"encrypted_flow_data": "AAAA", "encrypted_aes_key": "AAAA", "initial_vector": "AAAA"}
    )
    body = sealed.encode()
    assert client.post_raw(body, signature=None)[0] == 432
    assert client.post_raw(body, signature=sign("not-the-app-secret", body))[0] == 432
    assert client.post_raw(body)[0] == 421  # signed, but not encrypted for our key
    assert client.post_raw(b"garbage")[0] == 400
    other = FlowsClient(client.url, APP_SECRET, new_key_pair()[1])
    assert other.ping().status == 421  # Meta holds an old public key: it refetches on 421


def test_a_bad_key_file_is_a_config_error(tmp_path, make_daemon) -> None:
    key_file = tmp_path / "flows.pem"
    key_file.write_bytes(new_key_pair(PASSPHRASE)[0])
    daemon = make_daemon(extra=flows_config(key_file, passphrase="wrong-passphrase"))
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(daemon.config_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "flows.private_key_file" in result.stderr and "wrong-passphrase" not in result.stderr


def test_a_flow_as_first_contact_opens_a_ticket_with_the_mapped_fields(jira, flows_daemon) -> None:
    daemon, _client = flows_daemon
    meta = MetaSender(daemon.webhook_url, APP_SECRET)
    name, phone = ANA
    answers = {"order_id": "A-17", "problem": "late delivery", "details": "Box\nwet"}
    first = wa.nfm_reply(phone, answers, flow_token="order-issue:8f3a", timestamp=1_700_000_000)
    assert meta.deliver(wa.message_payload([first], contacts=[wa.contact(name, phone)])) == 200
    wait_until(lambda: jira.issues() and jira.comments(jira.issues()[0]["key"]), what="ticket and comment")

    [issue] = jira.issues()
    assert issue["summary"] == "Order issue: A-17"
    assert issue["labels"] == ["whatsapp", "flow", "problem-late_delivery"]
    assert issue["custom"] == {"customfield_10010": "A-17"}
    description = text_from_doc(issue["description"])
    assert "Flow answers:\norder_id: A-17\nproblem: late delivery\ndetails: Box\n    wet" in description

    # Later flows (and messages) are comments on the same ticket.
    again = wa.nfm_reply(phone, {"order_id": "B-2"}, flow_token="order-issue:9c1d", timestamp=1_700_000_010)
    assert meta.deliver(wa.message_payload([again], contacts=[wa.contact(name, phone)])) == 200
    wait_until(lambda: len(jira.comments(issue["key"])) == 2, what="second comment")
    assert len(jira.issues()) == 1
