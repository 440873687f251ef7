"""The outbox job on real storage (every engine) with a fake Graph API and Jira: at most once,
in order, back-off, the 24-hour window, crashes, and delivery statuses."""

from __future__ import annotations

import pytest

from bot.config import parse_config
from bot.rules.outgoing import WHATSAPP_TEXT_LIMIT
from bot.rules.payload import parse_webhook
from bot.rules.phones import conversation_key_for_phone
from bot.whatsapp.graph import (
    GraphRateLimited,
    GraphRejected,
    GraphUnavailable,
    Recipient,
    WindowClosed,
)
from jobs.notes import Notes
from jobs.outbox import UNMATCHED_STATUS_PATIENCE, OutboxJob
from jobs.poll import PollJob
from sandbox import whatsapp_payloads as wa
from storage.ai_switch import AiSwitch
from storage.customer_window import CustomerWindow
from storage.hot_tickets import HotTickets
from storage.inbound import InboundQueue
from storage.leases import Leases
from storage.outbound import OutboundQueue, StatusFeed
from storage.polling import HandledComments, PollState
from tests.fakes import FakeClock, FakeGraph, FakeJira

PHONE = "447700900123"
CONVERSATION = conversation_key_for_phone(PHONE)
OTHER_PHONE = "447700900456"
PNID = wa.PHONE_NUMBER_ID
DAY = 24 * 3600


def settings(*, template: bool = False):
    whatsapp = {
        "verify_token": "v",
        "app_secret": "test-app-secret-0123",
        "access_token": "a",
        "phone_number_id": "1",
    }
    if template:
        whatsapp.update(
            template_name="follow_up",
            template_language="en_US",
            template_parameters=["{name}", "{issue_key}"],
        )
    return parse_config(
        {
            "storage": {"url": "sqlite:///:memory:"},
            "whatsapp": whatsapp,
            "jira": {"url": "http://127.0.0.1:9", "email": "e@example.com", "api_token": "t"},
            "openai": {"api_key": "k"},
            "outbox": {"max_attempts": 3, "retry_base_seconds": 2.0, "retry_max_seconds": 60.0},
            "services": [{"id": "support", "project_key": "WA", "assistant": {"enabled": False}}],
        },
        env={},
    )


class World:
    def __init__(self, db, s) -> None:
        self.db, self.settings = db, s
        self.clock = clock = FakeClock()
        self.jira, self.graph = FakeJira(clock=clock), FakeGraph()
        self.key = self.jira.open_ticket(
            wajira={
                "conversation": CONVERSATION,
                "wa_id": PHONE,
                "service": "support",
                "phone_number_id": PNID,
            }
        )
        self.inbound = InboundQueue(db, clock=clock)
        self.outbound = OutboundQueue(db, clock=clock)
        self.statuses = StatusFeed(db)
        self.job = OutboxJob(
            settings=s,
            graph=self.graph,
            jira=self.jira,
            outbound=self.outbound,
            statuses=self.statuses,
            inbound=self.inbound,
            notes=Notes(self.jira),
            owner="test:1",
            clock=clock,
        )

    def customer_wrote(self, ago: float = 60.0, *, phone: str = PHONE) -> None:
        payload = wa.message_payload(
            [wa.text(phone, "hello", timestamp=int(self.clock() - ago))], contacts=[wa.contact("Ana", phone)]
        )
        self.inbound.store_batch(parse_webhook(payload))

    def queue(self, *bodies: str, ref: str = "comment:1", phone: str = PHONE) -> list[int]:
        rows = [
            {
                "dedupe_key": f"{ref}:{n}",
                "issue_key": self.key,
                "conversation_key": conversation_key_for_phone(phone),
                "to_wa_id": phone,
                "to_user_id": None,
                "phone_number_id": PNID,
                "kind": "agent",
                "body": body,
            }
            for n, body in enumerate(bodies)
        ]
        self.outbound.enqueue_many(rows)
        return [r.id for r in self.outbound.for_issue(self.key) if r.dedupe_key.startswith(f"{ref}:")]

    def status(self, wamid: str, status: str, *, at: float | None = None, errors=None) -> None:
        payload = wa.status_payload(
            wamid, status, PHONE, timestamp=int(self.clock() if at is None else at), errors=errors
        )
        self.inbound.store_batch(parse_webhook(payload))

    def row(self, row_id: int):
        return self.outbound.get(row_id)

    def notes(self):
        return self.jira.notes(self.key)


@pytest.fixture
def world(db):
    yield lambda **kw: World(db, settings(**kw))


# -- sending ------------------------------------------------------------------------------------


def test_a_reply_is_sent_once_and_its_wamid_recorded(world):
    w = world()
    w.customer_wrote()
    (row_id,) = w.queue("*Bruno:* your parcel left the warehouse")
    assert w.job.run() == 1
    w.clock.advance(60)
    assert w.job.run() == 0
    (sent,) = w.graph.sent
    assert (sent["phone_number_id"], sent["to"], sent["body"]) == (
        PNID,
        Recipient(wa_id=PHONE),
        "*Bruno:* your parcel left the warehouse",
    )
    row = w.row(row_id)
    assert (row.state, row.wamid, row.sent_at, row.via_template) == (
        "sent",
        sent["wamid"],
        w.clock() - 60,
        False,
    )
    assert w.notes() == []


def test_rate_limit_retries_later_without_counting_attempts_and_honours_retry_after(world):
    w = world()
    w.customer_wrote()
    (row_id,) = w.queue("hello")
    limits = 5  # more than max_attempts: rate limits are not failures
    w.graph.fail(
        "send_text",
        *[GraphRateLimited("(#130429) Rate limit hit", code=130429, status=429, retry_after=30)] * limits,
    )
    for n in range(limits):
        assert w.job.run() == 0
        row = w.row(row_id)
        assert (row.state, row.attempts, row.error_code) == ("pending", 0, 130429)
        assert row.next_attempt_at == pytest.approx(w.clock() + 30)
        w.clock.advance(29)
        w.job.run()
        assert len(w.graph.calls) == n + 1  # not before Meta said
        w.clock.advance(2)
    assert w.job.run() == 1
    assert w.row(row_id).state == "sent" and w.graph.bodies() == ["hello"]
    assert w.notes() == []


def test_rate_limit_without_retry_after_backs_off_within_the_cap(world):
    w = world()
    w.customer_wrote()
    (row_id,) = w.queue("hello")
    w.graph.fail("send_text", GraphRateLimited("(#131056) pair rate limit", code=131056, status=429))
    w.job.run()
    wait = w.row(row_id).next_attempt_at - w.clock()
    assert 0 < wait <= 60
    w.clock.advance(wait + 0.01)
    assert w.job.run() == 1


def test_unavailable_is_retried_then_failed_with_one_note(world):
    w = world()
    w.customer_wrote()
    (row_id,) = w.queue("hello")
    w.graph.fail("send_text", *[GraphUnavailable("Graph 500", code=131000, status=500)] * 5)
    w.job.run()
    assert (w.row(row_id).state, w.row(row_id).attempts) == ("pending", 1)
    w.clock.advance(61)
    w.job.run()
    assert (w.row(row_id).state, w.row(row_id).attempts) == ("pending", 2)
    w.clock.advance(61)
    w.job.run()
    row = w.row(row_id)
    assert (row.state, row.error_code) == ("failed", 131000)
    for _ in range(3):
        w.clock.advance(300)
        w.job.run()
    assert w.graph.calls == ["send_text"] * 3 and w.graph.sent == []
    (note,) = w.notes()
    assert note["prop"] == {"kind": "note", "ref": f"failed:{row_id}"}
    assert "131000" in note["text"] and note["text"].endswith("hello")


def test_undeliverable_fails_at_once_with_a_note_naming_the_code(world):
    w = world()
    w.customer_wrote()
    (row_id,) = w.queue("hello")
    w.graph.fail(
        "send_text",
        GraphRejected(
            "(#131026) Message undeliverable", code=131026, status=400, title="Message undeliverable"
        ),
    )
    w.job.run()
    w.clock.advance(300)
    w.job.run()
    row = w.row(row_id)
    assert (row.state, row.error_code, row.attempts) == ("failed", 131026, 0)
    assert w.graph.calls == ["send_text"]
    (note,) = w.notes()
    assert "Meta error 131026" in note["text"]
    assert note["extra_props"] == {"sd.public.comment": {"internal": True}}


# -- the 24-hour window -------------------------------------------------------------------------


def test_window_closed_by_meta_sends_the_template_when_configured(world):
    w = world(template=True)
    w.customer_wrote(ago=DAY - 5)  # open by our clock; Meta disagrees by a few seconds
    (row_id,) = w.queue("your refund is done")
    w.graph.fail("send_text", WindowClosed("(#131047) Re-engagement message", code=131047, status=400))
    assert w.job.run() == 1
    (template,) = w.graph.templates
    assert (template["name"], template["language"], template["body_parameters"], template["to"]) == (
        "follow_up",
        "en_US",
        ["Ana", w.key],
        Recipient(wa_id=PHONE),
    )
    row = w.row(row_id)
    assert (row.state, row.via_template, row.wamid) == ("sent", True, template["wamid"])
    (note,) = w.notes()
    assert "follow_up" in note["text"] and "your refund is done" in note["text"]
    w.job.run()
    assert len(w.graph.templates) == 1 and len(w.notes()) == 1


def test_window_closed_without_a_template_holds_the_reply_with_a_note(world):
    w = world()
    w.customer_wrote(ago=DAY - 5)
    (row_id,) = w.queue("your refund is done")
    w.graph.fail("send_text", WindowClosed("(#131047) Re-engagement message", code=131047, status=400))
    w.job.run()
    w.clock.advance(300)
    w.job.run()
    assert w.row(row_id).state == "held"
    assert w.graph.calls == ["send_text"] and w.graph.templates == []
    (note,) = w.notes()
    assert "template_name" in note["text"] and "your refund is done" in note["text"]


@pytest.mark.parametrize("template", [True, False], ids=["template", "no-template"])
@pytest.mark.parametrize("last_message", [DAY + 1, None], ids=["25h-ago", "never"])
def test_our_own_clock_closes_the_window_before_any_graph_call(world, template, last_message):
    w = world(template=template)
    if last_message is not None:
        w.customer_wrote(ago=last_message)
    (row_id,) = w.queue("late answer")
    w.job.run()
    assert "send_text" not in w.graph.calls
    assert w.row(row_id).state == ("sent" if template else "held")
    assert len(w.graph.templates) == (1 if template else 0)
    assert len(w.notes()) == 1


def test_a_split_reply_outside_the_window_sends_one_template(world):
    w = world(template=True)
    w.customer_wrote(ago=DAY + 60)
    w.queue("part one", "part two", "part three")
    w.job.run()
    assert "send_text" not in w.graph.calls
    assert len(w.graph.templates) == 1


# -- crashes ------------------------------------------------------------------------------------


def test_a_row_stuck_in_sending_becomes_unknown_and_is_never_resent(world):
    w = world()
    w.customer_wrote()
    first, _second = w.queue("first", "second")
    (claimed,) = w.outbound.claim_due("crashed-worker", limit=20, lease_seconds=60)
    assert claimed.id == first  # then the worker died mid-send
    w.clock.advance(30)
    w.job.run()
    assert w.graph.calls == []  # its claim still holds, and the row behind it waits its turn
    w.clock.advance(31)
    w.job.run()
    assert w.row(first).state == "unknown"
    assert w.graph.bodies() == ["second"]
    for _ in range(3):
        w.clock.advance(120)
        w.job.run()
    assert w.graph.bodies() == ["second"]
    (note,) = w.notes()
    assert note["prop"]["ref"] == f"unknown:{first}"
    assert "may or may not" in note["text"] and note["text"].endswith("first")


# -- order --------------------------------------------------------------------------------------


def test_parts_of_a_split_agent_comment_go_out_in_order(world):
    w = world()
    w.customer_wrote()
    w.customer_wrote(phone=OTHER_PHONE)
    poll = PollJob(
        settings=w.settings,
        jira=w.jira,
        state=PollState(w.db, clock=w.clock),
        handled=HandledComments(w.db, clock=w.clock),
        leases=Leases(w.db, clock=w.clock),
        switch=AiSwitch(w.db, clock=w.clock),
        window=CustomerWindow(w.db),
        hot=HotTickets(w.db),
        owner="test:1",
        clock=w.clock,
    )
    text = "\n\n".join(f"Step {i}: " + "check the cable and restart the router " * 40 for i in range(8))
    w.jira.human_comment(w.key, text)
    poll.run()
    parts = w.outbound.for_issue(w.key)
    assert len(parts) >= 3
    w.queue("meanwhile, to someone else", ref="comment:other", phone=OTHER_PHONE)
    # Meta slows us down on the second part (the third call): the third part must not overtake it.
    w.graph.fail(
        "send_text", None, None, GraphRateLimited("(#131056) pair rate limit", code=131056, retry_after=10)
    )
    w.job.run()
    assert w.graph.bodies() == [parts[0].body, "meanwhile, to someone else"]
    for _ in range(len(parts)):
        w.clock.advance(11)
        w.job.run()
    ours = [m["body"] for m in w.graph.sent if m["to"] == Recipient(wa_id=PHONE)]
    assert ours == [p.body for p in parts]
    assert all(len(body) <= WHATSAPP_TEXT_LIMIT for body in ours)
    assert ours[0].startswith("*Bruno Díaz:* Step 0:")
    assert " ".join(ours).split() == ("*Bruno Díaz:* " + text).split()


# -- delivery statuses --------------------------------------------------------------------------


def sent_rows(w, *bodies):
    ids = []
    for n, body in enumerate(bodies):
        ids += w.queue(body, ref=f"comment:{n + 10}")
    w.job.run()
    return ids


def test_statuses_move_a_row_forward_only(world):
    w = world()
    w.customer_wrote()
    a, b = sent_rows(w, "a", "b")
    wamid_a, wamid_b = w.row(a).wamid, w.row(b).wamid
    t = w.clock()
    w.status(wamid_a, "sent", at=t + 1)
    w.status(wamid_a, "delivered", at=t + 2)
    w.job.run()
    assert (w.row(a).state, w.row(a).status_at) == ("delivered", t + 2)
    w.status(wamid_a, "read", at=t + 3)
    w.job.run()
    assert (w.row(a).state, w.row(a).status_at) == ("read", t + 3)

    w.status(wamid_b, "read", at=t + 5)
    w.job.run()
    w.status(wamid_b, "delivered", at=t + 4)  # Meta's delivered arrives after its read
    w.status(wamid_b, "failed", at=t + 6, errors=[{"code": 131000, "title": "Something went wrong"}])
    w.job.run()
    assert (w.row(b).state, w.row(b).status_at) == ("read", t + 5)
    assert w.statuses.unapplied() == []
    assert w.notes() == []  # the customer read it: a late failure is not worth a note


def test_a_failed_status_gets_one_note(world):
    w = world()
    w.customer_wrote()
    (row_id,) = sent_rows(w, "hello")
    w.status(
        w.row(row_id).wamid,
        "failed",
        errors=[{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable"}],
    )
    w.job.run()
    w.clock.advance(60)
    w.job.run()
    row = w.row(row_id)
    assert (row.state, row.error_code) == ("failed", 131026)
    (note,) = w.notes()
    assert "131026" in note["text"] and note["text"].endswith("hello")


def test_a_status_for_an_unknown_wamid_waits_then_is_let_go(world):
    w = world()
    w.status("wamid.SENT-BY-ANOTHER-TOOL", "delivered")
    w.job.run()
    assert [s["wamid"] for s in w.statuses.unapplied()] == ["wamid.SENT-BY-ANOTHER-TOOL"]
    w.clock.advance(UNMATCHED_STATUS_PATIENCE - 1)
    w.job.run()
    assert len(w.statuses.unapplied()) == 1
    w.clock.advance(2)
    w.job.run()
    assert w.statuses.unapplied() == []


def test_a_status_that_overtakes_our_send_is_applied_once_the_row_knows_its_wamid(world):
    w = world()
    w.customer_wrote()
    (row_id,) = w.queue("hello")
    w.status("wamid.FAKE000001", "delivered")  # the wamid the fake Graph will give the send
    assert w.job.apply_statuses() == 0
    w.job.run()
    assert (w.row(row_id).wamid, w.row(row_id).state) == ("wamid.FAKE000001", "delivered")
    assert w.statuses.unapplied() == []
