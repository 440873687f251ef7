"""The webhook workers' pure parts: the restart policy, the heartbeat, a worker's "ready" over
its store channel, and multiprocess metrics within one process."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest
from prometheus_client import values

from bot.metrics import MULTIPROC_ENV, Metrics, use_multiprocess_dir
from bot.store_channel import StoreClient, StoreService
from bot.workers import MAX_BACKOFF_SECONDS, STABLE_SECONDS, Heartbeat, restart_plan


@pytest.mark.parametrize(
    "streak, lived, expected_streak, expected_delay",
    [
        (0, 0.5, 1, 0.0),  # the first early death: restart at once
        (1, 0.5, 2, 1.0),
        (2, 3.0, 3, 2.0),
        (3, 3.0, 4, 4.0),
        (9, 1.0, 10, MAX_BACKOFF_SECONDS),  # capped
        (9, STABLE_SECONDS, 1, 0.0),  # it ran long enough: the streak starts over
        (0, STABLE_SECONDS + 1, 1, 0.0),
    ],
)
def test_restart_plan_backs_off_while_a_worker_keeps_dying_young(
    streak, lived, expected_streak, expected_delay
):
    plan = restart_plan(streak, lived)
    assert (plan.streak, plan.delay) == (expected_streak, expected_delay)


def test_restart_delays_grow_then_stay_capped():
    streak, delays = 0, []
    for _ in range(10):
        plan = restart_plan(streak, 0.1)
        streak = plan.streak
        delays.append(plan.delay)
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_heartbeat_is_running_only_while_fresh():
    heartbeat = Heartbeat(max_age=0.2)
    assert not heartbeat.running  # never beaten: the main process's jobs have not started
    heartbeat.beat()
    assert heartbeat.running
    time.sleep(0.3)
    assert not heartbeat.running


def test_a_workers_ready_notice_reaches_the_supervisor_and_garbage_is_ignored():
    ready: list[int] = []
    heard = threading.Event()

    def on_ready(pid: int) -> None:
        ready.append(pid)
        heard.set()

    ours, theirs = socket.socketpair()
    service = StoreService(lambda batch, done: None, on_stored=lambda result: None, on_ready=on_ready)
    service.attach(ours, 0)
    # Notices a broken worker might send: none of them is a pid, none ends the channel.
    for junk in (b"not json", b'{"ready": "12"}', b'{"ready": true}', b"[]", b'{"other": 1}', b"[" * 100_000):
        theirs.sendall(struct.pack(">IQ", len(junk), 0) + junk)
    client = StoreClient(theirs, wait_seconds=2)
    client.ready(4321)
    assert heard.wait(5)
    assert ready == [4321]
    client.close()
    service.close()


def test_multiprocess_metrics_render_from_the_directory_and_switch_back(tmp_path):
    use_multiprocess_dir(str(tmp_path))
    try:
        assert os.environ[MULTIPROC_ENV] == str(tmp_path)
        writer = Metrics()  # a worker's: writes files, never renders
        reader = Metrics(multiprocess_dir=str(tmp_path))  # the main process's /metrics
        writer.webhooks.labels("stored").inc(3)
        reader.webhooks.labels("stored").inc(2)
        assert list(tmp_path.glob("counter_*.db"))
        body, _content_type = reader.render()
        assert b'wajira_webhook_requests_total{outcome="stored"} 5.0' in body
    finally:
        use_multiprocess_dir(None)
    assert MULTIPROC_ENV not in os.environ
    assert values.ValueClass is values.MutexValue
    single = Metrics()
    single.webhooks.labels("stored").inc()
    assert b'wajira_webhook_requests_total{outcome="stored"} 1.0' in single.render()[0]
