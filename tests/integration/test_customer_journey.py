"""The customer's journey on real storage (every engine) with fake Jira and Graph: the
acknowledgement, status notices once per entry, out-of-hours once a day, and a CSAT rating that
lands on the ticket it was asked for (issue 13)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bot.config import parse_config
from bot.rules.payload import parse_webhook
from jobs.csat import CsatDesk
from jobs.inbox import InboxJob
from jobs.notes import Notes
from jobs.notices import CustomerNotices
from jobs.outbox import OutboxJob
from jobs.tickets import TicketOpener
from sandbox import whatsapp_payloads as wa
from storage.csat import CsatRatings
from storage.customer_window import CustomerWindow
from storage.inbound import InboundQueue
from storage.leases import Leases
from storage.mappings import Mappings
from storage.outbound import OutboundQueue
from storage.status_watch import StatusWatch
from storage.statuses import StatusFeed
from tests.fakes import FakeGraph, FakeJira
from tests.support.clock import FakeClock

PHONE = "5215512345678"
# Monday 2026-12-07 10:00 in Berlin (09:00 UTC): open; 20:00 UTC the same day: closed.
MONDAY_OPEN = 1796634000.0
MONDAY_CLOSED = MONDAY_OPEN + 11 * 3600


def settings() -> Any:
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
            "services": [
                {
                    "id": "support",
                    "project_key": "WA",
                    "assistant": {"enabled": False},
                    "notify": {
                        "on_create": "Hi {name}, ticket {issue_key}.",
                        "on_status": {"done": "{issue_key} is {status}."},
                        "out_of_hours": "Closed now, {name}.",
                    },
                    "hours": {"timezone": "Europe/Berlin"},
                    "csat": {"enabled": True, "question": "How was {issue_key}?"},
                }
            ],
        },
        env={},
    )


class World:
    def __init__(self, db) -> None:
        self.clock = clock = FakeClock(MONDAY_OPEN)
        s = settings()
        self.jira, self.graph = FakeJira(clock=clock), FakeGraph(clock=clock)
        self.queue = InboundQueue(db, clock=clock)
        self.outbound = OutboundQueue(db, clock=clock)
        self.ratings = CsatRatings(db, clock=clock)
        self.notices = CustomerNotices(
            settings=s,
            outbound=self.outbound,
            inbound=self.queue,
            watch=StatusWatch(db, clock=clock),
            window=CustomerWindow(db),
            clock=clock,
        )
        self.inbox = InboxJob(
            settings=s,
            queue=self.queue,
            leases=Leases(db, clock=clock),
            jira=self.jira,
            tickets=TicketOpener(self.jira, Mappings(db), clock=clock),
            owner="test:1",
            clock=clock,
            csat=CsatDesk(self.outbound, self.ratings, self.jira, clock=clock),
        )
        self.inbox.on_delivered.append(self.notices.after_delivery)
        self.outbox = OutboxJob(
            settings=s,
            graph=self.graph,
            jira=self.jira,
            outbound=self.outbound,
            statuses=StatusFeed(db),
            inbound=CustomerWindow(db),
            notes=Notes(self.jira),
            owner="test:1",
            clock=clock,
        )

    def send(self, *messages: dict[str, Any]) -> None:
        payload = wa.message_payload(list(messages), contacts=[wa.contact("Ana", PHONE)])
        self.queue.store_batch(parse_webhook(payload))
        self.inbox.run()
        self.outbox.run()

    def now(self) -> int:
        return int(self.clock())

    def poll_sees(self, status: str, category: str, key: str = "WA-1") -> None:
        """One poll snapshot of the issue, as `PollJob.on_issue_seen` hands it over."""
        issue = self.jira.issues[key]
        fields = {"status": {"name": status, "statusCategory": {"key": category}}}
        self.notices.status_seen(key, fields, issue["properties"]["wajira"])
        self.outbox.run()

    def texts_sent(self) -> list[str]:
        return self.graph.bodies()

    def comments(self, kind: str, key: str = "WA-1") -> list[dict[str, Any]]:
        return [c for c in self.jira.comments[key] if (c.get("prop") or {}).get("kind") == kind]


@pytest.fixture
def world(db) -> World:
    return World(db)


def test_acknowledged_once_with_the_key_and_recorded_as_auto(world: World) -> None:
    world.send(wa.text(PHONE, "hello", timestamp=world.now()))
    world.send(wa.text(PHONE, "again", timestamp=world.now()))
    assert world.texts_sent() == ["Hi Ana, ticket WA-1."]
    [auto] = world.comments("auto")
    assert world.jira.texts("WA-1")[1] == "[Auto] Hi Ana, ticket WA-1."
    assert auto["prop"] == {"kind": "auto", "ref": "ack:WA-1"}


def test_status_notice_once_per_entry_and_never_on_a_reread(world: World) -> None:
    world.send(wa.text(PHONE, "hello", timestamp=world.now()))
    world.poll_sees("To Do", "new")
    world.poll_sees("Done", "done")
    world.poll_sees("Done", "done")  # the next pass, or a catch-up, reads it again
    assert world.texts_sent() == ["Hi Ana, ticket WA-1.", "WA-1 is Done."]
    assert len(world.graph.lists) == 1
    survey = world.graph.lists[0]
    assert survey["body"] == "How was WA-1?"
    assert [r["id"] for r in survey["rows"]] == ["csat:1", "csat:2", "csat:3", "csat:4", "csat:5"]
    # Reopened and done again: a second entry, a second notice and survey.
    world.poll_sees("In Progress", "indeterminate")
    world.poll_sees("Done", "done")
    assert world.texts_sent()[-1] == "WA-1 is Done." and len(world.texts_sent()) == 3
    assert len(world.graph.lists) == 2


def test_an_old_ticket_seen_first_as_done_is_not_announced(world: World) -> None:
    key = world.jira.open_ticket(
        wajira={"conversation": "+525500000001", "wa_id": "5215500000001", "service": "support"}
    )
    world.poll_sees("Done", "done", key=key)
    assert world.texts_sent() == [] and world.graph.lists == []


def test_out_of_hours_text_once_a_day(world: World) -> None:
    world.clock.now = MONDAY_CLOSED
    for n in range(3):
        world.send(wa.text(PHONE, f"late {n}", timestamp=world.now()))
    assert world.texts_sent() == ["Hi Ana, ticket WA-1.", "Closed now, Ana."]
    world.clock.advance(86400)  # Tuesday 21:00 Berlin: closed, another day
    world.send(wa.text(PHONE, "still there?", timestamp=world.now()))
    assert world.texts_sent()[-1] == "Closed now, Ana." and len(world.texts_sent()) == 3


def test_rating_lands_on_the_ticket_it_was_asked_for(world: World) -> None:
    world.jira.service_desk_projects.add("WA")
    world.send(wa.text(PHONE, "hello", timestamp=world.now()))
    world.poll_sees("To Do", "new")
    world.poll_sees("Done", "done")
    survey = world.graph.lists[0]
    world.send(
        wa.list_reply(
            PHONE,
            "Excellent",
            row_id="csat:5",
            timestamp=world.now(),
            context={"from": "x", "id": survey["wamid"]},
        )
    )
    [rating] = world.comments("csat")
    assert world.jira.texts("WA-1")[-1] == "[CSAT] Ana rated 5/5"
    assert rating["prop"]["rating"] == 5
    assert world.jira.feedback == {"WA-1": 5}
    assert world.ratings.summary(since=0) == {"support": (1, 5.0)}


def test_a_csat_id_that_answers_no_survey_is_an_ordinary_message(world: World) -> None:
    world.send(wa.text(PHONE, "hello", timestamp=world.now()))
    world.send(wa.list_reply(PHONE, "Excellent", row_id="csat:5", timestamp=world.now()))
    assert world.comments("csat") == []
    assert world.jira.texts("WA-1")[-1].startswith("[WhatsApp] Ana:")


def test_window_closed_notice_leaves_a_note_and_survey_is_not_sent(world: World) -> None:
    world.send(wa.text(PHONE, "hello", timestamp=world.now()))
    world.poll_sees("To Do", "new")
    world.clock.advance(25 * 3600)  # the customer's window has closed
    world.poll_sees("Done", "done")
    assert world.texts_sent() == ["Hi Ana, ticket WA-1."] and world.graph.lists == []
    notes = [c["text"] for c in world.comments("note")]
    assert any("24-hour window has closed" in n and "WA-1 is Done." in n for n in notes)
    assert any("satisfaction survey was not sent" in n for n in notes)
    # Still recorded for the agents as what wajira would have said.
    assert "[Auto] WA-1 is Done." in world.jira.texts("WA-1")


# ---- a closed window with `[whatsapp] template_name`: the template goes instead of a note -------

TEMPLATE = "ticket_update"


def with_template(world: World) -> World:
    """The same world with an approved re-engagement template configured."""
    s = world.outbox.settings
    whatsapp = dataclasses.replace(
        s.whatsapp, template_name=TEMPLATE, template_parameters=("{name}", "{issue_key}")
    )
    world.outbox.settings = dataclasses.replace(s, whatsapp=whatsapp)
    return world


def template_notes(world: World) -> list[str]:
    return [c["text"] for c in world.comments("note") if f"template '{TEMPLATE}' was sent" in c["text"]]


def test_acknowledgement_in_a_closed_window_sends_the_template(world: World) -> None:
    with_template(world)
    world.send(wa.text(PHONE, "written yesterday", timestamp=world.now() - 26 * 3600))
    assert world.texts_sent() == []  # no free-form text outside the window
    [template] = world.graph.templates
    assert template["name"] == TEMPLATE and template["body_parameters"] == ["Ana", "WA-1"]
    assert template["to"].wa_id == PHONE
    [note] = template_notes(world)
    assert note.endswith("instead of this reply:\nHi Ana, ticket WA-1.")
    assert not [c for c in world.comments("note") if "Not sent to WhatsApp" in c["text"]]
    assert "[Auto] Hi Ana, ticket WA-1." in world.jira.texts("WA-1")


def test_status_notice_in_a_closed_window_sends_the_template_and_holds_the_survey(world: World) -> None:
    with_template(world)
    world.send(wa.text(PHONE, "hello", timestamp=world.now()))
    world.poll_sees("To Do", "new")
    world.clock.advance(25 * 3600)  # the customer's window has closed
    world.poll_sees("Done", "done")
    world.poll_sees("Done", "done")  # a re-read sends nothing more
    assert world.texts_sent() == ["Hi Ana, ticket WA-1."]  # the acknowledgement, in the window
    [template] = world.graph.templates
    assert template["name"] == TEMPLATE and template["body_parameters"] == ["Ana", "WA-1"]
    [note] = template_notes(world)
    assert note.endswith("instead of this reply:\nWA-1 is Done.")
    assert world.graph.lists == []  # a survey is no template: it stays held
    assert any("satisfaction survey was not sent" in c["text"] for c in world.comments("note"))


def test_one_template_until_the_customer_answers_then_notices_are_held(world: World) -> None:
    with_template(world)
    world.send(wa.text(PHONE, "written yesterday", timestamp=world.now() - 26 * 3600))
    world.poll_sees("To Do", "new")
    world.poll_sees("Done", "done")  # still no answer to the template
    assert len(world.graph.templates) == 1 and world.texts_sent() == []
    held = [c["text"] for c in world.comments("note") if "Not sent to WhatsApp" in c["text"]]
    assert len(held) == 1
    assert "re-engagement template was already sent" in held[0] and held[0].endswith("WA-1 is Done.")
