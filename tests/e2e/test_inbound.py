"""WhatsApp → Jira through the real `wajira run` process and the sandbox Jira over loopback."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
import requests

from bot.rules.adf import text_from_doc
from bot.rules.signature import sign
from sandbox import whatsapp_payloads as wa
from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, wait_until

pytestmark = pytest.mark.e2e

ANA = ("Ana García", "5215512345678")
BO = ("Bo Jensen", "4520123456")


def texts(jira, key):
    out = []
    for comment in jira.comments(key):
        body = comment["body"]
        out.append(text_from_doc(body) if isinstance(body, dict) else body)
    return out


def deliver(meta, person, *messages):
    name, phone = person
    payload = wa.message_payload(list(messages), contacts=[wa.contact(name, phone)])
    assert meta.deliver(payload) == 200
    return payload


def comment_count(jira):
    return sum(len(jira.comments(i["key"])) for i in jira.issues())


def test_first_contact_creates_a_ticket_and_later_messages_reuse_it(jira, meta):
    name, phone = ANA
    deliver(meta, ANA, wa.text(phone, "Hola, my order is late", timestamp=1_700_000_000))
    wait_until(lambda: comment_count(jira) == 1, what="first comment")
    deliver(meta, ANA, wa.text(phone, "It is order 1042", timestamp=1_700_000_010))
    wait_until(lambda: comment_count(jira) == 2, what="second comment")

    [issue] = jira.issues()
    assert issue["project"] == "WA" and issue["labels"] == ["whatsapp"]
    assert name in issue["summary"]
    assert "Hola, my order is late" in text_from_doc(issue["description"])
    assert issue["properties"]["wajira"]["conversation"] == "+525512345678"
    assert texts(jira, issue["key"]) == [
        f"[WhatsApp] {name}: Hola, my order is late",
        f"[WhatsApp] {name}: It is order 1042",
    ]
    props = [c["properties"]["wajira"] for c in jira.comments(issue["key"])]
    assert [p["kind"] for p in props] == ["customer", "customer"]


def test_same_batch_three_times_gives_one_comment_per_message(jira, meta):
    _, phone = BO
    payload = wa.message_payload(
        [wa.text(phone, f"part {i}", timestamp=1_700_000_000 + i) for i in range(4)],
        contacts=[wa.contact(*BO)],
    )
    for _ in range(3):
        assert meta.deliver(payload) == 200
    wait_until(lambda: comment_count(jira) == 4, what="four comments")
    time.sleep(1.5)  # a duplicate would have arrived by now
    [issue] = jira.issues()
    assert texts(jira, issue["key"]) == [f"[WhatsApp] Bo Jensen: part {i}" for i in range(4)]


def test_every_message_kind_lands_rendered(jira, meta):
    name, phone = ANA
    messages = []
    for i, (_kind, example) in enumerate(wa.ALL_KINDS):
        message = dict(example, id=wa.new_wamid(), timestamp=str(1_700_000_000 + i))
        message["from"] = phone
        messages.append(message)
    deliver(meta, ANA, *messages)
    wait_until(lambda: comment_count(jira) == len(messages), timeout=30, what="all kinds")
    [issue] = jira.issues()
    got = texts(jira, issue["key"])
    assert all(t.startswith(f"[WhatsApp] {name}: ") for t in got)
    assert any("[unsupported:" in t for t in got)
    assert any("[image]" in t for t in got) and any("[location]" in t for t in got)


def test_jira_outage_then_everything_lands_once_in_order(jira, meta):
    _, phone = ANA
    jira.faults.fail_for(4.0, status=503)
    for i in range(6):
        deliver(meta, ANA, wa.text(phone, f"msg {i}", timestamp=1_700_000_000 + i))
    time.sleep(2)
    assert comment_count(jira) == 0
    wait_until(lambda: comment_count(jira) == 6, timeout=40, what="recovery")
    time.sleep(1)
    [issue] = jira.issues()
    assert texts(jira, issue["key"]) == [f"[WhatsApp] Ana García: msg {i}" for i in range(6)]


def test_rate_limited_jira_is_waited_out(jira, meta):
    _, phone = BO
    jira.faults.fail_next(429, count=2, retry_after=1)
    deliver(meta, BO, wa.text(phone, "hello", timestamp=1_700_000_000))
    wait_until(lambda: comment_count(jira) == 1, timeout=20, what="comment after 429s")
    assert len(jira.issues()) == 1


def test_kill_9_mid_burst_then_restart_delivers_every_message_once(jira, make_daemon, tmp_path):
    first = make_daemon(name="a", inbox="lease_seconds = 5").start()
    phones = [f"4477009{n:05d}" for n in range(8)]
    payloads = [
        wa.message_payload(
            [wa.text(p, f"{p} #{i}", timestamp=1_700_000_000 + i)], contacts=[wa.contact(f"C{p[-2:]}", p)]
        )
        for i in range(6)
        for p in phones
    ]
    jira.faults.set_latency(0.05)  # keep the burst in flight long enough to be cut
    sender = MetaSender(first.webhook_url, APP_SECRET)
    acked = set()
    for n, payload in enumerate(payloads):
        if n == len(payloads) // 2:
            first.kill9()
            break
        if sender.deliver(payload) == 200:
            acked.add(n)
    jira.faults.set_latency(0)
    second = first.start()  # same config and port: the same instance, restarted
    sender = MetaSender(second.webhook_url, APP_SECRET)
    for payload in payloads:
        # Meta redelivers whatever it has no 200 for; we redeliver everything, which is harsher.
        assert sender.deliver(payload, retries_until_200=True) == 200
    wait_until(lambda: comment_count(jira) == len(payloads), timeout=60, what="all comments")
    time.sleep(2)
    assert len(jira.issues()) == len(phones)
    for issue in jira.issues():
        got = [t.rsplit("#", 1)[1] for t in texts(jira, issue["key"])]
        assert got == [str(i) for i in range(6)], issue["key"]
    assert second.terminate() == 0


def test_bad_deliveries_are_refused_and_nothing_is_stored(daemon, jira, tmp_path):
    good = json.dumps(wa.message_payload([wa.text(ANA[1], "x")], contacts=[wa.contact(*ANA)])).encode()
    url = daemon.webhook_url
    post = lambda body, headers: requests.post(url, data=body, headers=headers, timeout=5)  # noqa: E731
    assert post(good, {}).status_code == 401
    assert post(good, {"X-Hub-Signature-256": sign("wrong-secret", good)}).status_code == 403
    big = b"{" + b" " * (3 * 1024 * 1024 + 10) + b"}"
    assert post(big, {"X-Hub-Signature-256": sign(APP_SECRET, big)}).status_code == 413
    assert post(b"nope", {"X-Hub-Signature-256": sign(APP_SECRET, b"nope")}).status_code == 400
    time.sleep(1.5)
    assert jira.issues() == []
    db = sqlite3.connect(tmp_path / "wajira.db")
    assert db.execute("select count(*) from inbound_message").fetchone() == (0,)


def test_verification_handshake(daemon):
    ok = requests.get(
        daemon.webhook_url,
        params={"hub.mode": "subscribe", "hub.verify_token": "e2e-verify-token", "hub.challenge": "42"},
        timeout=5,
    )
    assert (ok.status_code, ok.text) == (200, "42")
    bad = requests.get(
        daemon.webhook_url,
        params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "42"},
        timeout=5,
    )
    assert bad.status_code == 403


def test_sigterm_finishes_and_exits_zero(daemon, meta, jira):
    deliver(meta, ANA, wa.text(ANA[1], "last words", timestamp=1_700_000_000))
    assert daemon.terminate() == 0
    events = [e.get("event") for e in daemon.log_events()]
    assert "daemon_stopped" in events


def test_missing_app_secret_is_a_config_error_exit_2(tmp_path, jira):
    import subprocess
    import sys

    from tests.e2e.harness import REPO

    config = tmp_path / "c.toml"
    config.write_text(
        '[whatsapp]\nverify_token="v"\naccess_token="a"\nphone_number_id="1"\n'
        f'[jira]\nurl="{jira.url}"\nemail="e@x.org"\napi_token="t"\n[[services]]\nid="s"\nproject_key="WA"\n'
        "[services.assistant]\nenabled=false\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("WHATSAPP_")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "whatsapp.app_secret" in done.stderr
