"""`[server] workers = 2` through the real `wajira run` process: every webhook stored once, the
inbox nudged across processes (long before its sweep), /metrics summing every process, and
SIGTERM ending the workers with the daemon."""

from __future__ import annotations

import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from sandbox import whatsapp_payloads as wa
from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, wait_until

pytestmark = pytest.mark.e2e

SWEEP_SECONDS = 3600
PEOPLE = 8
MESSAGES = 48
REDELIVERED = 16


def _with_workers(config: Path, workers: int) -> None:
    """The harness writes one process and a 1 s inbox sweep: two workers, an hourly sweep."""
    text = config.read_text()
    text = re.sub(
        r"^admin_port = (\d+)$", rf"admin_port = \1\nworkers = {workers}", text, count=1, flags=re.M
    )
    text = text.replace(
        "[inbox]\ninterval_seconds = 1\n", f"[inbox]\ninterval_seconds = {SWEEP_SECONDS}\n", 1
    )
    assert f"workers = {workers}" in text and f"interval_seconds = {SWEEP_SECONDS}" in text
    config.write_text(text)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _comment_count(jira) -> int:
    return sum(len(jira.comments(issue["key"])) for issue in jira.issues())


def _metric(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_two_workers_store_every_webhook_once_nudge_the_inbox_and_sum_metrics(make_daemon, jira, tmp_path):
    daemon = make_daemon()
    _with_workers(daemon.config_path, 2)
    daemon.start()
    try:
        # The harness's health check went through the public port: a worker answered it.
        assert daemon.proc is not None
        pid = daemon.proc.pid
        wait_until(lambda: len(_children(pid)) >= 2, what="the webhook workers")
        workers = _children(pid)  # and multiprocessing's resource tracker
        meta = MetaSender(daemon.webhook_url, APP_SECRET)
        payloads = []
        for n in range(MESSAGES):
            phone = f"4520{n % PEOPLE:06d}"
            message = wa.text(
                phone, f"workers message {n}", wamid=f"wamid.e2e-workers-{n}", timestamp=1_700_000_000 + n
            )
            payloads.append(
                wa.message_payload([message], contacts=[wa.contact(f"Customer {n % PEOPLE}", phone)])
            )
        sent_at = time.monotonic()
        deliveries = payloads + payloads[:REDELIVERED]  # Meta's redeliveries
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(meta.deliver, deliveries))
        assert statuses == [200] * len(deliveries)

        # Inbox nudged across processes: every message in Jira long before the hourly sweep.
        wait_until(lambda: _comment_count(jira) == MESSAGES, timeout=30, what="every message in Jira")
        assert time.monotonic() - sent_at < 30 < SWEEP_SECONDS
        assert len(jira.issues()) == PEOPLE

        db = sqlite3.connect(tmp_path / "wajira.db")
        try:
            wamids = [row[0] for row in db.execute("SELECT wamid FROM inbound_message")]
        finally:
            db.close()
        assert sorted(wamids) == sorted(f"wamid.e2e-workers-{n}" for n in range(MESSAGES))

        # Both workers took a share (SO_REUSEPORT spreads connections), and /metrics sums them.
        def started() -> list[dict]:
            return [e for e in daemon.log_events() if e.get("event") == "webhook_worker_started"]

        wait_until(lambda: len(started()) >= 2, what="both workers' start lines")
        assert len(started()) == 2
        metrics = requests.get(f"{daemon.admin_url}/metrics", timeout=5).text
        assert _metric(metrics, "wajira_webhook_requests_total", 'outcome="stored"') == len(deliveries)
        # ... and the main process's own: the jobs' calls to Jira.
        jira_calls = re.findall(
            r'^wajira_external_calls_total\{[^}]*service="jira"[^}]*\} (\S+)$', metrics, re.M
        )
        assert sum(float(v) for v in jira_calls) >= MESSAGES
        assert "wajira_queue_rows" in metrics  # the storage gauges, read at scrape time
    finally:
        code = daemon.terminate()
    assert code == 0
    # The workers are gone with the daemon; multiprocessing's resource tracker (also a child)
    # leaves a moment later, when it sees the daemon's end of its pipe close.
    wait_until(lambda: not [pid for pid in workers if _alive(pid)], timeout=10, what="every child gone")
    events = [e.get("event") for e in daemon.log_events()]
    assert events.count("webhook_worker_stopped") == 2
    assert "webhook_worker_exited" not in events
    assert events[-1] == "daemon_stopped"
