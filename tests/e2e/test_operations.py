"""What an operator sees: /healthz, /metrics, SIGHUP."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from tests.e2e.harness import wait_until
from tests.e2e.test_outbound import Customer, sent_to_customer

pytestmark = pytest.mark.e2e


def test_metrics_and_health_after_a_conversation(jira, graph_sandbox, openai_sandbox, make_daemon):
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, assistant=True).start()
    Customer(daemon, graph_sandbox).says("hello")
    wait_until(lambda: sent_to_customer(graph_sandbox), what="AI reply")
    health = requests.get(f"{daemon.admin_url}/healthz", timeout=5)
    assert health.status_code == 200
    detail = health.json()
    assert detail["status"] == "ok" and detail["last_poll"] and detail["problems"] == []
    # The public port says only the verdict, and has no /metrics.
    public = requests.get(f"{daemon.url}/healthz", timeout=5)
    assert (public.status_code, public.json()) == (200, {"status": "ok"})
    assert requests.get(f"{daemon.url}/metrics", timeout=5).status_code == 404
    text = requests.get(f"{daemon.admin_url}/metrics", timeout=5).text
    for needle in (
        'wajira_webhook_requests_total{outcome="stored"}',
        'wajira_external_calls_total{operation="add_comment",outcome="ok",service="jira"}',
        'wajira_external_calls_total{operation="send_text",outcome="ok",service="graph"}',
        'service="openai"',
        "wajira_external_call_seconds_bucket",
        'wajira_queue_rows{queue="inbound",state="done"} 1.0',
        'wajira_queue_rows{queue="outbound",state=',
        'wajira_ai_tokens_total{service="support"}',
        "wajira_poll_lag_seconds",
    ):
        assert needle in text, needle


@pytest.mark.postgres
def test_storage_outage_gives_503s_and_meta_redelivers_later(
    jira, graph_sandbox, openai_sandbox, make_daemon
):
    from urllib.parse import urlsplit, urlunsplit

    from sandbox import whatsapp_payloads as wa
    from sandbox.meta import MetaSender
    from tests.e2e.harness import APP_SECRET
    from tests.support.databases import isolated_for_pytest
    from tests.support.tcp_proxy import TcpProxy

    with isolated_for_pytest("postgres") as url:
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname, parts.port).start()
        try:
            proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
            daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, db_url=proxied).start()
            meta = MetaSender(daemon.webhook_url, APP_SECRET)
            payload = wa.message_payload(
                [wa.text("447700900123", "during the outage")], contacts=[wa.contact("Bo", "447700900123")]
            )
            time.sleep(1.5)  # the jobs' first runs open their connections: cut a settled daemon
            proxy.cut()
            assert meta.deliver(payload) == 503
            # (a Response is falsy when not ok, hence the list)
            [health] = wait_until(
                lambda: [
                    r
                    for r in [requests.get(f"{daemon.admin_url}/healthz", timeout=5)]
                    if r.status_code == 503
                ],
                timeout=15,
                what="503",
            )
            assert any("storage" in p for p in health.json()["problems"])
            # The public port says no more than that: a database error may name internal hosts.
            public = wait_until(
                lambda: [
                    r for r in [requests.get(f"{daemon.url}/healthz", timeout=5)] if r.status_code == 503
                ],
                timeout=5,
                what="public 503",
            )
            assert public[0].json() == {"status": "unavailable"}
            proxy.restore()
            assert meta.deliver(payload, retries_until_200=True) == 200  # Meta's retry
            [issue] = wait_until(lambda: jira.issues(), timeout=20, what="ticket after recovery")
            wait_until(lambda: len(jira.comments(issue["key"])) == 1, what="the comment")
            wait_until(
                lambda: requests.get(f"{daemon.url}/healthz", timeout=5).status_code == 200,
                timeout=20,
                what="healthy again",
            )
            assert daemon.terminate() == 0
        finally:
            proxy.close()


def test_sighup_keeps_running_and_says_a_restart_is_needed(jira, graph_sandbox, openai_sandbox, make_daemon):
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox).start()
    daemon.proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert daemon.proc.poll() is None
    assert requests.get(f"{daemon.url}/healthz", timeout=5).status_code == 200
    assert any(e.get("event") == "reload_not_supported" for e in daemon.log_events())
    assert daemon.terminate() == 0
