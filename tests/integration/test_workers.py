"""`[server] workers = 2` in a real Daemon: worker processes on one port (SO_REUSEPORT), storage
on SQLite and PostgreSQL, the inbox nudged across processes, a killed worker restarted,
/metrics summed over every process, and a clean stop."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bot.config import parse_config
from bot.daemon import Daemon
from bot.rules.signature import sign
from sandbox import whatsapp_payloads as wa
from storage.models import InboundMessageRow
from tests.e2e.harness import free_port
from tests.fakes import FakeAI, FakeGraph, FakeJira
from tests.support.databases import engine_params, isolated_for_pytest

APP_SECRET = "workers-app-secret-0123"
WEBHOOK = "/api/whatsapp/webhook"


def _settings(db_url: str, admin_port: int, *, inbox_interval: int = 3600):
    return parse_config(
        {
            "server": {"host": "127.0.0.1", "port": 0, "admin_port": admin_port, "workers": 2},
            "storage": {"url": db_url},
            "whatsapp": {
                "verify_token": "v",
                "app_secret": APP_SECRET,
                "access_token": "a",
                "phone_number_id": "1",
            },
            "jira": {"url": "http://127.0.0.1:9", "email": "e@example.com", "api_token": "t"},
            "openai": {"api_key": "k", "model": "gpt-test"},
            "poller": {"interval_seconds": 3600, "overlap_seconds": 120},
            # A sweep an hour away: a ticket opened within seconds was opened by a nudge.
            "inbox": {"interval_seconds": inbox_interval},
            "logging": {"level": "warning"},
            "services": [{"id": "support", "project_key": "WA"}],
        },
        env={},
    )


def _delivery(n: int) -> tuple[bytes, str]:
    phone = f"4477009{n % 7:05d}"
    payload = wa.message_payload([wa.text(phone, f"hello {n}", wamid=f"wamid.workers-{n}")])
    body = json.dumps(payload).encode()
    return body, sign(APP_SECRET, body)


def _post(port: int, body: bytes, signature: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(
            "POST", WEBHOOK, body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {predicate}")


def _stored_counter(admin_port: int) -> float:
    text = requests.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).text
    match = re.search(r'^wajira_webhook_requests_total\{outcome="stored"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.fixture(params=engine_params()[:2])
def workers_db_url(request):
    """SQLite in a file (the workers open it too) and PostgreSQL when it is configured."""
    with isolated_for_pytest(request.param) as url:
        yield url


@pytest.fixture
def daemon(workers_db_url):
    admin_port = free_port()
    jira = FakeJira()
    d = Daemon(_settings(workers_db_url, admin_port), jira=jira, graph=FakeGraph(), ai=FakeAI())
    d.start()
    d.admin_port, d.fake_jira = admin_port, jira  # type: ignore[attr-defined]
    yield d
    d.stop()


def test_every_webhook_is_stored_once_by_two_workers_and_metrics_sum(daemon):
    port = int(daemon.url.rsplit(":", 1)[1])
    assert len(daemon.workers.pids) == 2
    deliveries = [_delivery(n) for n in range(200)]
    # Each delivery twice: Meta's redeliveries must still store one row.
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda d: _post(port, *d), deliveries + deliveries))
    assert statuses == [200] * 400
    wamids = [row.wamid for row in InboundMessageRow.select(InboundMessageRow.wamid)]
    assert sorted(wamids) == sorted(f"wamid.workers-{n}" for n in range(200))
    assert _stored_counter(daemon.admin_port) == 400
    # The inbox sweeps hourly: tickets this soon come from the workers' nudges.
    _wait(lambda: len(daemon.fake_jira.issues) == 7)


def test_a_killed_worker_is_restarted_and_the_port_keeps_answering(daemon):
    port = int(daemon.url.rsplit(":", 1)[1])
    victim, survivor = daemon.workers.pids
    os.kill(victim, signal.SIGKILL)
    # Connections already queued on the victim's socket die with it (the kernel resets them;
    # Meta redelivers). Once it is reaped (every thread gone, so its socket is closed: a
    # zombie leader alone is not enough), the other worker answers every request.
    _wait(lambda: victim not in daemon.workers.pids)
    for n in range(20):
        assert _post(port, *_delivery(1000 + n)) == 200
    pids = _wait(
        lambda: len(daemon.workers.pids) == 2 and victim not in daemon.workers.pids and daemon.workers.pids
    )
    assert survivor in pids
    _wait(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200)
    assert _stored_counter(daemon.admin_port) >= 20  # the dead worker's counts stay in the sum


def test_a_worker_whose_channel_to_the_main_process_ends_is_replaced(daemon):
    port = int(daemon.url.rsplit(":", 1)[1])
    before = set(daemon.workers.pids)
    daemon._store_service.close()  # every channel ends, as if the main process had dropped them
    # Each worker can store nothing more: it exits, and the supervisor starts one with a
    # fresh channel in its place.
    _wait(lambda: len(daemon.workers.pids) == 2 and not before & set(daemon.workers.pids), timeout=30)

    def stores() -> bool:
        try:
            return _post(port, *_delivery(5000)) == 200
        except OSError:  # both restarting at once: nobody listens for a moment
            return False

    _wait(stores, timeout=20)
    for n in range(5001, 5011):
        assert _post(port, *_delivery(n)) == 200
    stored = {row.wamid for row in InboundMessageRow.select(InboundMessageRow.wamid)}
    assert {f"wamid.workers-{n}" for n in range(5000, 5011)} <= stored


def test_stop_ends_every_worker_and_frees_the_port(workers_db_url):
    admin_port = free_port()
    d = Daemon(_settings(workers_db_url, admin_port), jira=FakeJira(), graph=FakeGraph(), ai=FakeAI())
    d.start()
    port = int(d.url.rsplit(":", 1)[1])
    assert d.workers is not None
    pids = d.workers.pids
    d.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_a_workers_healthz_says_unavailable_once_the_main_process_jobs_stop(daemon):
    port = int(daemon.url.rsplit(":", 1)[1])
    healthz = f"http://127.0.0.1:{port}/healthz"
    assert requests.get(healthz, timeout=5).json() == {"status": "ok"}
    daemon.parts.components.jobs.scheduler.stop(wait=True)
    daemon.heartbeat.flatline()
    # Each worker caches its verdict for a second: one that said "ok" just before the flatline
    # may say it again until then, so only answers after that second count.
    time.sleep(1.2)
    # Whichever worker answers says so.
    _wait(lambda: all(requests.get(healthz, timeout=5).status_code == 503 for _ in range(6)), timeout=20)
    assert requests.get(healthz, timeout=5).json() == {"status": "unavailable"}
