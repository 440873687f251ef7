"""The claimable-queue mechanism (storage/queue.py) as the four queues configure it, on every engine."""

from __future__ import annotations

import pytest

from bot.metrics import Metrics
from bot.rules.events import ParsedBatch
from storage import AiTurns, InboundQueue, MediaTasks, OutboundQueue
from storage.last_error import MAX_ERROR_CHARS, clip_error
from storage.queue import OLDEST_DUE_LAG, OLDEST_PENDING_AGE, RETRYING
from tests.integration.test_storage import message
from tests.integration.test_storage_outbound import row

AGES_AND_RETRYING = {RETRYING, OLDEST_PENDING_AGE, OLDEST_DUE_LAG}


def media_task(tasks: MediaTasks, n: int) -> None:
    tasks.add(
        wamid=f"w{n}",
        media_id=f"m{n}",
        kind="image",
        mime_type="image/jpeg",
        filename=f"{n}.jpg",
        expected_sha256="",
        issue_key="WA-1",
    )


def test_every_queue_reports_its_states_and_the_same_ages(db, clock):
    inbound, outbound = InboundQueue(db, clock=clock), OutboundQueue(db, clock=clock)
    turns, tasks = AiTurns(db, clock=clock), MediaTasks(db, clock=clock)
    queues = {"inbound": inbound, "outbound": outbound, "ai_turns": turns, "media": tasks}
    for name, queue in queues.items():
        stats = queue.stats()
        assert set(stats) >= AGES_AND_RETRYING, name
        assert (stats[OLDEST_PENDING_AGE], stats[OLDEST_DUE_LAG]) == (None, None), name
        states = {k: v for k, v in stats.items() if k not in AGES_AND_RETRYING}
        assert set(states.values()) == {0}, name  # every state named, zeros included

    inbound.store_batch(ParsedBatch(messages=(message("w1"),)))
    outbound.enqueue_many([row("a", "+1")])
    turns.add(
        issue_key="WA-1", service_id="s", conversation_key="+1", trigger_comment_id="c1", due_at=clock.now + 3
    )
    media_task(tasks, 1)
    clock.advance(5)
    for name, queue in queues.items():
        stats = queue.stats()
        assert (stats["pending"], stats[RETRYING], stats[OLDEST_PENDING_AGE]) == (1, 0, 5.0), name
    assert turns.stats()[OLDEST_DUE_LAG] == 2.0  # due 3 s after it was added
    assert outbound.stats()[OLDEST_DUE_LAG] == 5.0


def test_inbound_counts_parked_rows(db, clock):
    queue = InboundQueue(db, clock=clock)
    queue.store_batch(ParsedBatch(messages=(message("w1"), message("w2", key="+2"))))
    queue.mark_parked(queue.pending_for("+2")[0].id)
    stats = queue.stats()
    assert (stats["pending"], stats["parked"]) == (1, 1)


def test_a_retry_counts_only_the_rows_own_failures_and_backs_off(db, clock):
    tasks = MediaTasks(db, clock=clock)
    media_task(tasks, 1)
    (task,) = tasks.claim_due("w")
    assert tasks.mark_retry(task.id, error="Graph 503", delay_seconds=30, count_attempt=False) == 0
    assert tasks.claim_due("w") == []
    clock.advance(30)
    (task,) = tasks.claim_due("w")
    assert tasks.mark_retry(task.id, error="bad hash", delay_seconds=-5, count_attempt=True) == 1
    assert tasks.stats()[RETRYING] == 1
    (task,) = tasks.claim_due("w")  # a negative delay is no delay
    tasks.mark_failed(task.id, error="given up")
    assert tasks.mark_retry(task.id, error="late", delay_seconds=0, count_attempt=True) == 1  # stays failed
    assert tasks.get(task.id).state == "failed"
    with pytest.raises(KeyError):
        tasks.mark_retry(999_999, error="gone", delay_seconds=0, count_attempt=True)


def test_errors_are_clipped_for_operators():
    assert clip_error("short") == "short"
    clipped = clip_error("x" * (MAX_ERROR_CHARS + 10))
    assert len(clipped) == MAX_ERROR_CHARS and clipped.endswith("…")


def test_metrics_report_every_queues_oldest_pending_age(db, clock):
    turns, tasks = AiTurns(db, clock=clock), MediaTasks(db, clock=clock)
    turns.add(
        issue_key="WA-1", service_id="s", conversation_key="+1", trigger_comment_id="c1", due_at=clock.now
    )
    media_task(tasks, 1)
    clock.advance(7)
    metrics = Metrics()
    metrics.add_storage_gauges({"ai_turns": turns.stats, "media": tasks.stats}, lambda: None)
    text = metrics.render()[0].decode()
    assert 'wajira_queue_oldest_pending_seconds{queue="ai_turns"} 7.0' in text
    assert 'wajira_queue_oldest_pending_seconds{queue="media"} 7.0' in text
    assert 'wajira_queue_rows{queue="media",state="pending"} 1.0' in text
