"""The inbox job on real storage (every engine) with a fake Jira: order, exactly once, back-off."""

from __future__ import annotations

import threading

import pytest

from bot.config import parse_config
from bot.jira_api.errors import JiraRejected, JiraUnavailable, RateLimited
from bot.rules.payload import parse_webhook
from jobs.inbox import InboxJob
from jobs.tickets import TicketOpener
from sandbox import whatsapp_payloads as wa
from storage.inbound import InboundQueue
from storage.leases import Leases
from storage.mappings import Mappings
from tests.fakes import FakeJira
from tests.support.clock import FakeClock

PHONE = "5215512345678"


def settings(**inbox):
    return parse_config(
        {
            "storage": {"url": "sqlite:///:memory:"},
            "whatsapp": {
                "verify_token": "v",
                "app_secret": "test-app-secret-0123",
                "access_token": "a",
                "phone_number_id": "1",
            },
            "jira": {"url": "http://127.0.0.1:9", "email": "e@example.com", "api_token": "t"},
            "inbox": {
                "workers": 2,
                "max_attempts": 3,
                "retry_base_seconds": 1.0,
                "retry_max_seconds": 8.0,
                **inbox,
            },
            "services": [{"id": "support", "project_key": "WA", "assistant": {"enabled": False}}],
        },
        env={},
    )


@pytest.fixture
def world(db):
    clock = FakeClock()
    jira = FakeJira(clock=clock)
    queue = InboundQueue(db, clock=clock)
    mappings = Mappings(db)
    job = InboxJob(
        settings=settings(),
        queue=queue,
        leases=Leases(db, clock=clock),
        jira=jira,
        tickets=TicketOpener(jira, mappings, clock=clock, search_grace_seconds=10),
        owner="test:1",
        clock=clock,
    )

    class World:
        pass

    w = World()
    w.db, w.clock, w.jira, w.queue, w.mappings, w.job = db, clock, jira, queue, mappings, job

    def send(*messages, name="Ana", phone=PHONE):
        payload = wa.message_payload(list(messages), contacts=[wa.contact(name, phone)])
        return queue.store_batch(parse_webhook(payload))

    w.send = send
    yield w


def texts(w, key="WA-1"):
    return w.jira.texts(key)


def test_first_contact_creates_one_ticket_then_reuses_it(world):
    world.send(wa.text(PHONE, "hello", timestamp=100))
    world.job.run()
    world.send(wa.text(PHONE, "second", timestamp=101))
    world.job.run()
    assert list(world.jira.issues) == ["WA-1"]
    assert texts(world) == ["[WhatsApp] Ana: hello", "[WhatsApp] Ana: second"]
    issue = world.jira.issues["WA-1"]
    assert issue["labels"] == ["whatsapp"] and "Ana" in issue["summary"]
    assert issue["properties"]["wajira"]["conversation"] == "+525512345678"
    assert world.mappings.get("+525512345678").issue_key == "WA-1"
    props = [c["prop"] for c in world.jira.comments["WA-1"]]
    assert all(p["kind"] == "customer" for p in props) and len({p["wamid"] for p in props}) == 2


def test_messages_go_in_meta_timestamp_order_not_arrival_order(world):
    world.send(wa.text(PHONE, "third", timestamp=300), wa.text(PHONE, "first", timestamp=100))
    world.send(wa.text(PHONE, "second", timestamp=200))
    world.job.run()
    assert texts(world) == ["[WhatsApp] Ana: first", "[WhatsApp] Ana: second", "[WhatsApp] Ana: third"]


def test_the_same_batch_three_times_makes_one_comment_each(world):
    batch = [wa.text(PHONE, "a", timestamp=1), wa.text(PHONE, "b", timestamp=2)]
    for _ in range(3):
        world.send(*batch)
    world.job.run()
    assert texts(world) == ["[WhatsApp] Ana: a", "[WhatsApp] Ana: b"]


def test_jira_outage_keeps_order_and_loses_nothing(world):
    world.send(*(wa.text(PHONE, f"m{i}", timestamp=i) for i in range(5)))
    world.job.run()  # creates the ticket and posts all five
    world.jira.fail("add_comment", *[JiraUnavailable("Jira 503", status=503)] * 3)
    world.send(*(wa.text(PHONE, f"n{i}", timestamp=10 + i) for i in range(3)))
    for _ in range(10):
        world.clock.advance(10)
        world.job.run()
    assert texts(world)[5:] == ["[WhatsApp] Ana: n0", "[WhatsApp] Ana: n1", "[WhatsApp] Ana: n2"]
    assert world.queue.stats()["dead"] == 0


def test_outage_does_not_count_towards_dead_letter(world):
    world.send(wa.text(PHONE, "patience", timestamp=1))
    world.jira.fail("create_issue", *[JiraUnavailable("Jira 503", status=503)] * 12)
    for _ in range(14):
        world.clock.advance(10)
        world.job.run()
    assert texts(world) == ["[WhatsApp] Ana: patience"]


def test_rate_limit_waits_as_long_as_jira_asks(world):
    world.send(wa.text(PHONE, "hi", timestamp=1))
    world.jira.fail("create_issue", RateLimited("slow down", retry_after=30))
    world.job.run()
    world.clock.advance(29)
    world.job.run()
    assert world.jira.issues == {}
    world.clock.advance(2)
    world.job.run()
    assert texts(world) == ["[WhatsApp] Ana: hi"]


def test_lost_comment_response_is_found_not_posted_again(world):
    world.send(wa.text(PHONE, "once", timestamp=1))
    world.jira.lose_response["add_comment"] = JiraUnavailable("read timed out")
    world.job.run()
    world.clock.advance(10)
    world.job.run()
    assert texts(world) == ["[WhatsApp] Ana: once"]
    assert world.queue.stats()["pending"] == 0


def test_lost_create_response_is_found_not_created_again(world):
    world.send(wa.text(PHONE, "once", timestamp=1))
    world.jira.lose_response["create_issue"] = JiraUnavailable("read timed out")
    world.job.run()
    world.clock.advance(30)
    world.job.run()
    assert list(world.jira.issues) == ["WA-1"]
    assert texts(world) == ["[WhatsApp] Ana: once"]


def test_rejected_message_is_dead_lettered_and_does_not_block_the_next(world):
    world.send(wa.text(PHONE, "bad", timestamp=1), wa.text(PHONE, "good", timestamp=2))
    world.job.run()  # ticket + both comments
    world.send(wa.text(PHONE, "poison", timestamp=3), wa.text(PHONE, "after", timestamp=4))
    world.jira.fail("add_comment", *[JiraRejected("Jira 400: body invalid", status=400)] * 3)
    for _ in range(6):
        world.clock.advance(20)
        world.job.run()
    assert texts(world)[-1] == "[WhatsApp] Ana: after"
    assert "[WhatsApp] Ana: poison" not in texts(world)
    stats = world.queue.stats()
    assert stats["dead"] == 1 and stats["pending"] == 0
    failure = world.queue.recent_failures(1)[0]
    assert failure["state"] == "dead" and "body invalid" in failure["last_error"]


def test_deleted_ticket_gets_a_new_one(world):
    world.send(wa.text(PHONE, "one", timestamp=1))
    world.job.run()
    world.jira.delete_issue("WA-1")
    world.send(wa.text(PHONE, "two", timestamp=2))
    world.job.run()
    assert texts(world, "WA-2") == ["[WhatsApp] Ana: two"]
    assert world.mappings.get("+525512345678").issue_key == "WA-2"


def test_one_ticket_per_phone_under_concurrent_sweeps(world):
    phones = [f"44770090{i:04d}" for i in range(12)]
    for phone in phones:
        world.send(*(wa.text(phone, f"{phone}-{j}", timestamp=j) for j in range(3)), phone=phone)
    threads = [threading.Thread(target=world.job.run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    world.job.run()
    assert len(world.jira.issues) == len(phones)
    assert sum(len(c) for c in world.jira.comments.values()) == 3 * len(phones)
    for comments in world.jira.comments.values():
        assert [c["text"].rsplit("-", 1)[1] for c in comments] == ["0", "1", "2"]
