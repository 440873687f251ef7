"""The ticket lifecycle on real storage (every engine) with a fake Jira: what a message to a
closed ticket does under each `on_closed`, and that an open ticket costs no extra Jira call."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from bot.config import parse_config
from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.errors import IssueNotFound, JiraRejected, JiraUnavailable
from bot.rules.payload import parse_webhook
from jobs.inbox import InboxJob
from jobs.lifecycle import IssueStateRecorder, find_transition
from jobs.poll import PollJob
from jobs.tickets import TicketOpener
from sandbox import whatsapp_payloads as wa
from sandbox.jira import JiraSandbox
from storage.ai_switch import AiSwitch
from storage.customer_window import CustomerWindow
from storage.hot_tickets import HotTickets
from storage.inbound import InboundQueue
from storage.issue_states import IssueStateRow, IssueStates
from storage.leases import Leases
from storage.mappings import Mappings
from storage.polling import HandledComments, PollState
from storage.schema import SCHEMA_VERSION
from storage.ticket_history import TicketHistory, TicketHistoryRow
from tests.fakes import FakeClock, FakeJira
from tests.support.spec import jira_spec

PHONE = "5215512345678"
CONVERSATION = "+525512345678"


def settings(service: dict):
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
            "inbox": {"workers": 1, "max_attempts": 3, "retry_base_seconds": 1.0, "retry_max_seconds": 8.0},
            "services": [{"id": "support", "project_key": "WA", "assistant": {"enabled": False}, **service}],
        },
        env={},
    )


class World:
    def __init__(self, db, service: dict) -> None:
        self.db = db
        self.clock = FakeClock()
        self.jira = FakeJira(clock=self.clock)
        self.mappings = Mappings(db, clock=self.clock)
        self.states = IssueStates(db, clock=self.clock)
        self.history = TicketHistory(db, clock=self.clock)
        self.queue = InboundQueue(db, clock=self.clock)
        s = settings(service)
        leases = Leases(db, clock=self.clock)
        self.tickets = TicketOpener(
            self.jira,
            self.mappings,
            clock=self.clock,
            search_grace_seconds=10,
            states=self.states,
            history=self.history,
        )
        self.inbox = InboxJob(
            settings=s,
            queue=self.queue,
            leases=leases,
            jira=self.jira,
            tickets=self.tickets,
            owner="test:1",
            clock=self.clock,
        )
        self.poll = PollJob(
            settings=s,
            jira=self.jira,
            state=PollState(db, clock=self.clock),
            handled=HandledComments(db, clock=self.clock),
            leases=leases,
            switch=AiSwitch(self.db, clock=self.clock),
            window=CustomerWindow(self.db),
            hot=HotTickets(self.db),
            owner="test:1",
            clock=self.clock,
        )
        self.poll.on_issue_seen.append(IssueStateRecorder(self.states))
        self._stamp = 100

    def say(self, text: str) -> None:
        """The customer writes; the inbox job runs."""
        self._stamp += 1
        self.clock.advance(1)
        payload = wa.message_payload(
            [wa.text(PHONE, text, timestamp=self._stamp)], contacts=[wa.contact("Ana", PHONE)]
        )
        self.queue.store_batch(parse_webhook(payload))
        self.inbox.run()

    def close(self, key: str = "WA-1") -> None:
        """An agent closes the ticket and the poll job sees it."""
        self.clock.advance(1)
        self.jira.set_status(key, "Done", "done")
        self.poll.run()

    def calls_during(self, action) -> list[str]:
        before = len(self.jira.calls)
        action()
        return self.jira.calls[before:]


@pytest.fixture
def make_world(db):
    return lambda **service: World(db, service)


# -- storage ----------------------------------------------------------------------------------


def test_step_three_makes_both_tables_as_the_models_say(db):
    assert SCHEMA_VERSION >= 3
    for model in (IssueStateRow, TicketHistoryRow):
        columns = {c.name for c in db.get_columns(model._meta.table_name)}
        assert columns == {f.column_name for f in model._meta.sorted_fields}, model
    indexes = {tuple(i.columns) for i in db.get_indexes("ticket_history")}
    assert ("phone_number",) in indexes


def test_issue_state_upserts_and_history_keeps_order(db):
    clock = FakeClock()
    states, history = IssueStates(db, clock=clock), TicketHistory(db, clock=clock)
    assert states.get("WA-1") is None
    states.record("WA-1", "done", "Done")
    clock.advance(5)
    states.record("WA-1", "new", "To Do")
    state = states.get("WA-1")
    assert (state.status_category, state.status_name, state.seen_at, state.done) == (
        "new",
        "To Do",
        clock.now,
        False,
    )
    history.add(CONVERSATION, "WA-1", "support", opened_at=1.0, replaced_by="WA-2")
    history.add(CONVERSATION, "WA-2", "support", opened_at=2.0, replaced_by="WA-3")
    history.add("+4412", "WA-9", "support", opened_at=3.0, replaced_by=None)
    past = history.for_phone(CONVERSATION)
    assert [(p.issue_key, p.replaced_by, p.opened_at, p.closed_at) for p in past] == [
        ("WA-1", "WA-2", 1.0, clock.now),
        ("WA-2", "WA-3", 2.0, clock.now),
    ]


def test_the_poll_records_every_managed_issue_it_reads(make_world):
    w = make_world()
    w.say("hello")
    w.poll.run()
    assert w.states.get("WA-1").status_category == "new"
    w.close()
    assert (w.states.get("WA-1").status_category, w.states.get("WA-1").status_name) == ("done", "Done")


def test_find_transition_ignores_case_and_unavailable_ones():
    ts = [{"id": "1", "name": "Reopen", "isAvailable": False}, {"id": "2", "name": " reOPEN "}]
    assert find_transition(ts, "REOPEN")["id"] == "2"
    assert find_transition(ts, "Start") is None


# -- an open ticket ----------------------------------------------------------------------------


def test_a_message_to_an_open_ticket_costs_one_jira_call(make_world):
    w = make_world()
    w.say("hello")
    w.poll.run()
    assert w.calls_during(lambda: w.say("again")) == ["add_comment"]
    w.jira.set_status("WA-1", "In Progress", "indeterminate")
    w.poll.run()
    assert w.calls_during(lambda: w.say("and again")) == ["add_comment"]


# -- on_closed = "new" -------------------------------------------------------------------------


def test_a_closed_ticket_gives_a_new_linked_one(make_world):
    w = make_world()
    w.say("hello")
    opened = w.mappings.get(CONVERSATION).updated_at.timestamp()
    w.close()
    w.say("it broke again")
    assert list(w.jira.issues) == ["WA-1", "WA-2"]
    assert w.jira.texts("WA-1") == ["[WhatsApp] Ana: hello"]
    assert w.jira.texts("WA-2") == ["[WhatsApp] Ana: it broke again"]
    assert w.jira.links == [{"type": "Relates", "inward": "WA-1", "outward": "WA-2"}]
    prop = w.jira.issues["WA-2"]["properties"]["wajira"]
    assert prop["conversation"] == CONVERSATION and prop["previous"] == "WA-1"
    assert w.mappings.get(CONVERSATION).issue_key == "WA-2"
    assert w.mappings.creation_started_at(CONVERSATION) is None
    [past] = w.history.for_phone(CONVERSATION)
    assert (past.issue_key, past.replaced_by, past.service_id, past.opened_at) == (
        "WA-1",
        "WA-2",
        "support",
        opened,
    )
    # The next message is an ordinary one again.
    assert w.calls_during(lambda: w.say("thanks")) == ["add_comment"]
    assert w.jira.texts("WA-2")[-1] == "[WhatsApp] Ana: thanks"


def test_closing_the_new_ticket_too_chains_the_history(make_world):
    w = make_world()
    w.say("one")
    w.close("WA-1")
    w.say("two")
    w.close("WA-2")
    w.say("three")
    assert w.mappings.get(CONVERSATION).issue_key == "WA-3"
    assert [(p.issue_key, p.replaced_by) for p in w.history.for_phone(CONVERSATION)] == [
        ("WA-1", "WA-2"),
        ("WA-2", "WA-3"),
    ]
    assert w.jira.issues["WA-3"]["properties"]["wajira"]["previous"] == "WA-2"


def test_a_stale_done_is_checked_with_jira_before_anything_changes(make_world):
    w = make_world()
    w.say("hello")
    w.close()
    w.jira.set_status("WA-1", "In Progress", "indeterminate")  # an agent reopened it since the poll
    w.say("still there?")
    assert list(w.jira.issues) == ["WA-1"]
    assert w.jira.texts("WA-1")[-1] == "[WhatsApp] Ana: still there?"
    assert w.states.get("WA-1").status_category == "indeterminate"
    assert w.calls_during(lambda: w.say("ok")) == ["add_comment"]


def test_a_replacement_cut_short_after_jira_created_it_is_found_not_made_twice(make_world):
    w = make_world()
    w.say("hello")
    w.close()
    w.jira.lose_response["create_issue"] = JiraUnavailable("timed out", status=None)
    w.say("again")
    assert list(w.jira.issues) == ["WA-1", "WA-2"] and w.mappings.get(CONVERSATION).issue_key == "WA-1"
    w.clock.advance(30)  # past the search grace period
    w.inbox.run()
    assert list(w.jira.issues) == ["WA-1", "WA-2"]
    assert w.mappings.get(CONVERSATION).issue_key == "WA-2"
    assert w.jira.texts("WA-2") == ["[WhatsApp] Ana: again"]
    assert len(w.jira.links) == 1 and len(w.history.for_phone(CONVERSATION)) == 1


def test_a_refused_link_does_not_hold_the_message(make_world):
    w = make_world()
    w.say("hello")
    w.close()
    w.jira.fail(
        "link_issues", JiraRejected("Jira 404: No issue link type with name 'Relates' found.", status=404)
    )
    with capture_logs() as logs:
        w.say("again")
    assert w.jira.texts("WA-2") == ["[WhatsApp] Ana: again"]
    assert w.mappings.get(CONVERSATION).issue_key == "WA-2"
    assert any(e["event"] == "ticket_link_failed" for e in logs)


def test_a_deleted_ticket_is_kept_in_the_history_too(make_world):
    w = make_world()
    w.say("hello")
    w.jira.delete_issue("WA-1")
    w.say("anyone?")
    assert w.mappings.get(CONVERSATION).issue_key == "WA-2"
    assert [(p.issue_key, p.replaced_by) for p in w.history.for_phone(CONVERSATION)] == [("WA-1", "WA-2")]


# -- on_closed = "reopen" ----------------------------------------------------------------------


def test_reopen_moves_the_ticket_back_and_comments_on_it(make_world):
    w = make_world(on_closed="reopen", reopen_transition="reopen")
    w.say("hello")
    w.close()
    calls = w.calls_during(lambda: w.say("it broke again"))
    assert calls == ["get_issue", "transitions", "transition", "add_comment"]
    assert list(w.jira.issues) == ["WA-1"]
    issue = w.jira.issues["WA-1"]
    assert (issue["status_name"], issue["status_category"]) == ("To Do", "new")
    assert w.jira.texts("WA-1")[-1] == "[WhatsApp] Ana: it broke again"
    assert w.states.get("WA-1").status_category == "new"
    assert w.history.for_phone(CONVERSATION) == []
    assert w.calls_during(lambda: w.say("thanks")) == ["add_comment"]


def test_reopen_without_such_a_transition_opens_a_new_ticket_and_says_why(make_world):
    w = make_world(on_closed="reopen", reopen_transition="Reactivate")
    w.say("hello")
    w.close()
    with capture_logs() as logs:
        w.say("again")
    assert w.mappings.get(CONVERSATION).issue_key == "WA-2"
    assert w.jira.links == [{"type": "Relates", "inward": "WA-1", "outward": "WA-2"}]
    [warning] = [e for e in logs if e["event"] == "reopen_transition_missing"]
    assert warning["log_level"] == "warning" and warning["transition"] == "Reactivate"
    assert warning["available"] == ["Reopen"]


def test_a_refused_transition_falls_back_to_a_new_ticket(make_world):
    w = make_world(on_closed="reopen")
    w.say("hello")
    w.close()
    w.jira.fail("transition", JiraRejected("Jira 400: Field 'resolution' is required", status=400))
    w.say("again")
    assert w.mappings.get(CONVERSATION).issue_key == "WA-2"
    assert w.jira.issues["WA-1"]["status_category"] == "done"


# -- on_closed = "reuse" -----------------------------------------------------------------------


def test_reuse_comments_on_the_closed_ticket_without_asking_jira(make_world):
    w = make_world(on_closed="reuse")
    w.say("hello")
    w.close()
    assert w.calls_during(lambda: w.say("again")) == ["add_comment"]
    assert list(w.jira.issues) == ["WA-1"]
    assert w.jira.issues["WA-1"]["status_category"] == "done"
    assert w.jira.texts("WA-1")[-1] == "[WhatsApp] Ana: again"


# -- the adapter's workflow and link calls, against the sandbox and the vendor's spec ------------


def test_adapter_lists_applies_transitions_and_links_as_the_spec_says():
    spec = jira_spec()
    with JiraSandbox(email="bot@example.com", api_token="tok") as sb:
        adapter = JiraAdapter.connect(sb.url, email="bot@example.com", api_token="tok")
        exchanges = []
        adapter._client._session.hooks["response"].append(lambda r, *a, **k: exchanges.append(r))
        old = adapter.create_issue(
            project_key="WA",
            issue_type="Task",
            summary="a",
            description="d",
            labels=["whatsapp"],
            properties={"wajira": {"conversation": "+1"}},
        ).key
        new = adapter.create_issue(
            project_key="WA",
            issue_type="Task",
            summary="b",
            description="d",
            labels=["whatsapp"],
            properties={"wajira": {"conversation": "+1"}},
        ).key
        sb.set_status(old, "Done", "done")
        offered = adapter.transitions(old)
        reopen = find_transition(offered, "reopen")
        assert reopen is not None and reopen["to"]["statusCategory"]["key"] == "new"
        adapter.transition(old, reopen["id"])
        adapter.link_issues(old, new, "Relates")
        assert (sb.issue(old)["status"], sb.issue(old)["statusCategory"]) == ("To Do", "new")
        assert sb.issue(new)["links"] == [{"type": "Relates", "inward": old, "outward": new}]
        with pytest.raises(JiraRejected):
            adapter.transition(old, reopen["id"])  # not offered from "new"
        with pytest.raises(IssueNotFound):
            adapter.transitions("WA-99")

    checked = 0
    for response in exchanges:
        request = response.request
        if "/transitions" not in request.url and "/issueLink" not in request.url:
            continue
        if request.body:
            assert spec.request_errors(request.method, request.url, json.loads(request.body)) == []
        if response.ok and response.content:
            assert (
                spec.response_errors(request.method, request.url, response.status_code, response.json()) == []
            )
        checked += 1
    assert checked >= 5
