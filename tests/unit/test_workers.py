"""The webhook workers' pure parts: the restart policy, the nudge notes, the heartbeat, and the
nudge channel and multiprocess metrics within one process."""

from __future__ import annotations

import os
import threading
import time

import pytest
from prometheus_client import values

from bot.metrics import MULTIPROC_ENV, Metrics, use_multiprocess_dir
from bot.nudge import Notes, NudgeReceiver, NudgeSender, channel, read_notes
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


@pytest.mark.parametrize(
    "datagrams, expected",
    [
        ([], Notes()),
        ([b"inbox", b"inbox", b"inbox"], Notes(inbox=True)),
        ([b"outbox"], Notes(outbox=True)),
        ([b"inbox", b"ready 42", b"outbox", b"ready 7"], Notes(inbox=True, outbox=True, ready=[42, 7])),
        ([b"ready x", b"ready ", b"garbage", b""], Notes()),
    ],
)
def test_read_notes_folds_a_burst(datagrams, expected):
    assert read_notes(datagrams) == expected


def test_heartbeat_is_running_only_while_fresh():
    heartbeat = Heartbeat(max_age=0.2)
    assert not heartbeat.running  # never beaten: the main process's jobs have not started
    heartbeat.beat()
    assert heartbeat.running
    time.sleep(0.3)
    assert not heartbeat.running


def test_nudges_reach_the_receiver_and_a_burst_is_few_calls():
    receiving, sending = channel()
    calls: dict[str, int] = {"inbox": 0, "outbox": 0}
    ready: list[int] = []
    seen = threading.Event()

    def count(name: str):
        def call() -> None:
            calls[name] += 1
            seen.set()

        return call

    receiver = NudgeReceiver(receiving, inbox=count("inbox"), outbox=count("outbox"), ready=ready.append)
    sender = NudgeSender(sending)
    # Sent before the thread reads: one burst, so one nudge per job.
    for _ in range(50):
        sender.inbox()
    sender.outbox()
    sender.ready(1234)
    receiver.start()
    try:
        assert seen.wait(5)
        deadline = time.monotonic() + 5
        while (calls["outbox"] == 0 or not ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls == {"inbox": 1, "outbox": 1}
        assert ready == [1234]
    finally:
        receiver.stop()
        receiving.close()
        sending.close()


def test_a_sender_never_blocks_or_raises_when_nobody_reads():
    receiving, sending = channel()
    sender = NudgeSender(sending)
    started = time.monotonic()
    for _ in range(100_000):  # far beyond the socket buffer
        sender.inbox()
    receiving.close()
    sender.inbox()  # the reader is gone: still quiet
    sending.close()
    assert time.monotonic() - started < 5


def test_a_failing_callback_does_not_end_the_receiver():
    receiving, sending = channel()
    inbox_calls = threading.Semaphore(0)

    def broken() -> None:
        raise RuntimeError("boom")

    receiver = NudgeReceiver(receiving, inbox=inbox_calls.release, outbox=broken, ready=lambda _pid: None)
    sender = NudgeSender(sending)
    receiver.start()
    try:
        sender.outbox()
        time.sleep(0.1)
        sender.inbox()
        assert inbox_calls.acquire(timeout=5)
    finally:
        receiver.stop()
        receiving.close()
        sending.close()


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
