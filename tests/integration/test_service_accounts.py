"""Per-service Jira accounts (`[services.jira]`): routing, and a poll per account.

With fakes (one `FakeJira` per account, storage on every engine): each call reaches the account
of its issue's project, a poll pass makes one search per account from that account's own
watermark, the bot's comments are told apart by each account's own id, and comment ids two
sites both use never shadow each other. With the real adapters against two loopback Jira
sandboxes holding different credentials: a ticket of service A is created by account A on
site A, one of B by account B on site B.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.bootstrap import probes
from bot.bootstrap.vendors import connect_jira_accounts
from bot.checks import plan as checks_plan
from bot.checks import run as run_checks
from bot.config import Settings, parse_config
from bot.config.model import ServiceJiraSettings
from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.directory import (
    DEFAULT_ACCOUNT,
    JiraAccount,
    JiraDirectory,
    NotRoutable,
    handled_ref,
    jira_for_issue,
    jira_for_project,
    plan_accounts,
)
from bot.jira_api.errors import JiraUnavailable
from jobs.poll import PollJob
from sandbox.jira import JiraSandbox
from storage.ai_switch import AiSwitch
from storage.customer_window import CustomerWindow
from storage.hot_tickets import HotTickets
from storage.leases import Leases
from storage.outbound import OutboundQueue
from storage.polling import HandledComments, PollState
from tests.fakes import FakeClock, FakeJira

START = 1_800_000_037.25
B_NAME = "jira:sales"


class SiteB(FakeJira):
    """Another Jira site, where the bot's account has another id."""

    def myself(self) -> dict[str, Any]:
        self._enter("myself")
        return {"accountId": "bot-b", "timeZone": "UTC"}


def settings(
    *, a_url: str = "http://127.0.0.1:9", b: dict[str, Any] | None = None, a_auth: dict | None = None
) -> Settings:
    b_jira = b or {"url": "http://127.0.0.2:9", "email": "bot-b@example.com", "api_token": "b-secret"}
    return parse_config(
        {
            "whatsapp": {
                "verify_token": "v",
                "app_secret": "test-app-secret-0123",
                "access_token": "a",
                "phone_number_id": "1",
            },
            "jira": {"url": a_url, **(a_auth or {"email": "bot-a@example.com", "api_token": "a-secret"})},
            "openai": {"api_key": "k"},
            "services": [
                {"id": "support", "project_key": "SUP", "labels": ["whatsapp"], "default": True},
                {
                    "id": "sales",
                    "project_key": "SAL",
                    "labels": ["wa-sales"],
                    "phone_number_ids": ["2"],
                    "jira": b_jira,
                },
            ],
        },
        env={},
    )


def ours(service: str) -> dict[str, Any]:
    return {
        "conversation": f"+4477009001{len(service)}",
        "wa_id": "4477",
        "service": service,
        "phone_number_id": "1",
    }


def directory(s: Settings, a: FakeJira, b: FakeJira) -> JiraDirectory:
    plans = {p.name: p for p in plan_accounts(s)}
    return JiraDirectory(
        [
            JiraAccount(DEFAULT_ACCOUNT, a, plans[DEFAULT_ACCOUNT].services),
            JiraAccount(B_NAME, b, plans[B_NAME].services),
        ]
    )


# -- routing ----------------------------------------------------------------------------------------


def test_the_accounts_are_planned_by_service() -> None:
    plans = plan_accounts(settings())
    assert [(p.name, [s.id for s in p.services]) for p in plans] == [
        ("jira", ["support"]),
        (B_NAME, ["sales"]),
    ]
    assert plans[0].settings is None and plans[1].settings is not None


def test_each_call_goes_to_the_account_of_its_project() -> None:
    a, b = FakeJira(), SiteB()
    jira = directory(settings(), a, b)
    ref_a = jira.create_issue(
        project_key="SUP", issue_type="Task", summary="A", description="", labels=[], properties={}
    )
    ref_b = jira.create_issue(
        project_key="SAL", issue_type="Task", summary="B", description="", labels=[], properties={}
    )
    assert set(a.issues) == {ref_a.key} and set(b.issues) == {ref_b.key}
    jira.add_comment(ref_b.key, "to B", prop={"kind": "note"})
    jira.add_labels(ref_a.key, ["x"])
    assert b.texts(ref_b.key) == ["to B"] and a.texts(ref_a.key) == []
    assert "x" in a.issues[ref_a.key]["labels"]
    assert jira.list_comments(ref_b.key)[0]["id"] == b.comments[ref_b.key][0]["id"]
    assert jira_for_issue(jira, ref_b.key) is b and jira_for_project(jira, "SUP") is a
    # A project no service names (a removed service's ticket) is [jira]'s.
    assert jira_for_issue(jira, "OLD-7") is a


@pytest.mark.parametrize(
    "call",
    [
        lambda j: j.myself(),
        lambda j: list(j.search_issues("project = SUP", fields=["summary"])),
        lambda j: j.attachment_content("10001", max_bytes=10),
        lambda j: j.attachment_media_id("10001"),
        lambda j: j.add_comment("not-a-key", "x", prop={}),
    ],
)
def test_a_call_that_names_no_account_is_refused(call) -> None:
    a, b = FakeJira(), SiteB()
    with pytest.raises(NotRoutable):
        call(directory(settings(), a, b))
    assert a.calls == [] and b.calls == []


def test_a_single_account_is_the_port_itself() -> None:
    a = FakeJira()
    assert jira_for_issue(a, "SAL-1") is a and handled_ref(a, "SAL-1", "10000") == "10000"


def test_stored_comment_ids_are_tagged_on_other_accounts_only() -> None:
    jira = directory(settings(), FakeJira(), SiteB())
    assert handled_ref(jira, "SUP-1", "10000") == "10000"  # [jira]'s keep their ids, as always
    tagged = handled_ref(jira, "SAL-1", "10000")
    assert tagged.endswith(":10000") and tagged != "10000" and len(tagged) <= 64


def test_without_own_accounts_the_vendors_are_one_adapter() -> None:
    s = parse_config(
        {
            "whatsapp": {
                "verify_token": "v",
                "app_secret": "test-app-secret-0123",
                "access_token": "a",
                "phone_number_id": "1",
            },
            "jira": {"url": "http://127.0.0.1:9", "email": "bot-a@example.com", "api_token": "a-secret"},
            "openai": {"api_key": "k"},
            "services": [{"id": "support", "project_key": "SUP"}],
        },
        env={},
    )
    assert isinstance(connect_jira_accounts(s), JiraAdapter)
    assert isinstance(connect_jira_accounts(settings()), JiraDirectory)


# -- the poll, per account -------------------------------------------------------------------------


class World:
    def __init__(self, db) -> None:
        self.clock = FakeClock(START)
        self.a, self.b = FakeJira(clock=self.clock), SiteB(clock=self.clock)
        self.settings = settings()
        self.jira = directory(self.settings, self.a, self.b)
        self.state = PollState(db, clock=self.clock)
        self.handled = HandledComments(db, clock=self.clock)
        self.outbound = OutboundQueue(db, clock=self.clock)
        self.job = PollJob(
            settings=self.settings,
            jira=self.jira,
            state=self.state,
            handled=self.handled,
            leases=Leases(db, clock=self.clock),
            switch=AiSwitch(db, clock=self.clock),
            window=CustomerWindow(db),
            hot=HotTickets(db),
            owner="poller:1",
            clock=self.clock,
        )
        self.key_a = self.a.open_ticket(project_key="SUP", labels=["whatsapp"], wajira=ours("support"))
        self.key_b = self.b.open_ticket(project_key="SAL", labels=["wa-sales"], wajira=ours("sales"))


@pytest.fixture
def world(db) -> Iterator[World]:
    yield World(db)


def test_a_pass_makes_one_search_per_account_over_its_own_projects(world: World) -> None:
    world.job.run()
    [search_a], [search_b] = world.a.searches, world.b.searches
    assert search_a["jql"].startswith('project in ("SUP") AND labels in ("whatsapp") AND')
    assert search_b["jql"].startswith('project in ("SAL") AND labels in ("wa-sales") AND')
    assert "SAL" not in search_a["jql"] and "SUP" not in search_b["jql"]


def test_each_account_keeps_its_own_watermark(world: World) -> None:
    world.job.run()
    assert world.state.get(DEFAULT_ACCOUNT).watermark_ms is not None
    assert world.state.get(B_NAME).watermark_ms is not None
    assert world.state.get(DEFAULT_ACCOUNT).runs == world.state.get(B_NAME).runs == 1


def test_agent_replies_on_both_sites_reach_the_customer_even_with_the_same_comment_id(world: World) -> None:
    id_a = world.a.human_comment(world.key_a, "Hello from support")
    id_b = world.b.human_comment(world.key_b, "Hello from sales")
    assert id_a == id_b  # two sites number their comments alike: the case this guards
    result = world.job.run()
    assert result is not None and result.pushed == 2
    assert [r.body for r in world.outbound.for_issue(world.key_a)] != []
    assert [r.body for r in world.outbound.for_issue(world.key_b)] != []
    world.clock.advance(60)
    again = world.job.run()
    assert again is not None and again.new_comments == 0  # each counted once, on its own site


def test_the_bot_is_told_apart_by_each_sites_own_account(world: World) -> None:
    # On site B the account "bot" is a person (site A's bot id means nothing there), and B's
    # bot is "bot-b": its unmarked comment is the bot's own and goes nowhere.
    world.b.human_comment(world.key_b, "A person on B", account_id="bot")
    world.b.human_comment(world.key_b, "[AI] an old unmarked reply", account_id="bot-b")
    world.job.run()
    [row] = world.outbound.for_issue(world.key_b)
    assert "A person on B" in row.body
    assert world.a.calls.count("myself") == 1 and world.b.calls.count("myself") == 1


def test_a_failing_account_holds_the_others_back_not(world: World) -> None:
    world.b.script["search_issues"] = [JiraUnavailable("site B is down")]
    world.a.human_comment(world.key_a, "Still answered")
    with pytest.raises(JiraUnavailable):
        world.job.run()
    assert len(world.outbound.for_issue(world.key_a)) == 1
    assert world.state.get(DEFAULT_ACCOUNT).last_error is None
    assert "site B is down" in (world.state.get(B_NAME).last_error or "")
    assert world.state.get(B_NAME).watermark_ms is None


def test_an_outage_of_one_account_is_a_warning_and_a_fault_is_an_error(world: World) -> None:
    world.b.script["search_issues"] = [JiraUnavailable("site B answers 503")]
    with capture_logs() as outage, pytest.raises(JiraUnavailable):
        world.job.run()
    [line] = [e for e in outage if e["event"] == "poll_account_failed"]
    assert line["log_level"] == "warning" and line["account"] == B_NAME
    world.clock.advance(60)
    world.b.script["search_issues"] = [RuntimeError("a bug in the pass")]
    with capture_logs() as fault, pytest.raises(RuntimeError):
        world.job.run()
    [line] = [e for e in fault if e["event"] == "poll_account_failed"]
    assert line["log_level"] == "error" and "a bug in the pass" in line["error"]


class StaticHot:
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def hot_issue_keys(self, *, since: float, limit: int = 100) -> list[str]:
        return self.keys[:limit]


def test_the_hot_pass_searches_each_account_with_hot_tickets_once(world: World) -> None:
    world.job.hot = StaticHot([world.key_b, world.key_a])
    world.job.run_hot()
    [search_a], [search_b] = world.a.searches, world.b.searches
    assert world.key_a in search_a["jql"] and world.key_b not in search_a["jql"]
    assert world.key_b in search_b["jql"] and world.key_a not in search_b["jql"]


# -- the real adapters, two Jira sites ---------------------------------------------------------------


@pytest.fixture
def two_sites() -> Iterator[tuple[JiraSandbox, JiraSandbox]]:
    a = JiraSandbox(email="bot-a@example.com", api_token="a-secret", account_id="account-a")
    b = JiraSandbox(email="bot-b@example.com", api_token="b-secret", account_id="account-b")
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_each_service_creates_its_tickets_with_its_own_account_on_its_own_site(two_sites) -> None:
    a, b = two_sites
    s = settings(a_url=a.url, b={"url": b.url, "email": "bot-b@example.com", "api_token": "b-secret"})
    jira = connect_jira_accounts(s)
    for project in ("SUP", "SAL"):
        jira.create_issue(
            project_key=project,
            issue_type="Task",
            summary="WhatsApp",
            description="",
            labels=["whatsapp"],
            properties={},
        )
    [on_a], [on_b] = a.issues(), b.issues()
    assert (on_a["key"], on_a["reporter"]) == ("SUP-1", "account-a")
    assert (on_b["key"], on_b["reporter"]) == ("SAL-1", "account-b")
    jira.add_comment("SAL-1", "[WhatsApp] Ana: hi", prop={"kind": "customer"})
    assert [c["author"]["accountId"] for c in b.comments("SAL-1")] == ["account-b"]
    assert a.comments("SUP-1") == []


def test_a_poll_pass_searches_each_site_once_with_its_own_account(two_sites, db) -> None:
    a, b = two_sites
    s = settings(a_url=a.url, b={"url": b.url, "email": "bot-b@example.com", "api_token": "b-secret"})
    job = PollJob(
        settings=s,
        jira=connect_jira_accounts(s),
        state=PollState(db),
        handled=HandledComments(db),
        leases=Leases(db),
        switch=AiSwitch(db),
        window=CustomerWindow(db),
        hot=HotTickets(db),
        owner="poller:1",
    )
    job.run()
    searches_a = {k: n for k, n in a.calls.items() if "/search" in k}
    searches_b = {k: n for k, n in b.calls.items() if "/search" in k}
    assert sum(searches_a.values()) == 1 and sum(searches_b.values()) == 1


def test_check_reaches_each_jira_account_with_its_own_credentials(two_sites, tmp_path) -> None:
    a, b = two_sites
    a.add_project("SUP")
    b.add_project("SAL")
    s = settings(a_url=a.url, b={"url": b.url, "email": "bot-b@example.com", "api_token": "b-secret"})
    checks = [c for c in checks_plan(s, "config.toml", probes(s, max_timeout=5)) if c.name.startswith("Jira")]
    out = io.StringIO()
    assert run_checks(checks, out, secrets=s.secrets())
    lines = out.getvalue().splitlines()
    assert [line.split("  ")[0][2:].strip() for line in lines] == [
        "Jira",
        "Jira service support",
        "Jira account sales",
        "Jira service sales",
    ]
    assert a.url in lines[0] and b.url in lines[2]
    assert "SAL" in lines[3] and "SUP" in lines[1]


def test_check_names_the_service_keys_when_its_account_is_refused(two_sites) -> None:
    a, b = two_sites
    a.add_project("SUP")
    s = settings(a_url=a.url, b={"url": b.url, "email": "bot-b@example.com", "api_token": "wrong-b"})
    checks = [c for c in checks_plan(s, "config.toml", probes(s, max_timeout=5)) if c.name.startswith("Jira")]
    out = io.StringIO()
    assert not run_checks(checks, out, secrets=s.secrets())
    lines = out.getvalue().splitlines()
    assert "services[1].jira email and api_token" in lines[2]
    assert "skipped" in lines[3]
    assert "wrong-b" not in out.getvalue()


def test_with_every_service_on_its_own_account_the_jira_state_tells_the_whole_pass(db) -> None:
    s = settings()
    own = ServiceJiraSettings(url="http://127.0.0.3:9", email="bot-c@example.com", api_token="c-secret")
    s = dataclasses.replace(s, services=(dataclasses.replace(s.services[0], jira=own), s.services[1]))
    a, b = FakeJira(), SiteB()
    plans = {p.name: p for p in plan_accounts(s)}
    assert set(plans) == {DEFAULT_ACCOUNT, "jira:support", B_NAME} and not plans[DEFAULT_ACCOUNT].services
    unused = FakeJira()
    jira = JiraDirectory(
        [
            JiraAccount(DEFAULT_ACCOUNT, unused, ()),
            JiraAccount("jira:support", a, plans["jira:support"].services),
            JiraAccount(B_NAME, b, plans[B_NAME].services),
        ]
    )
    state = PollState(db, clock=lambda: START)
    job = PollJob(
        settings=s,
        jira=jira,
        state=state,
        handled=HandledComments(db),
        leases=Leases(db),
        switch=AiSwitch(db),
        window=CustomerWindow(db),
        hot=HotTickets(db),
        owner="poller:1",
        clock=lambda: START,
    )
    job.run()
    assert unused.calls == []  # [jira] serves nobody: never searched
    whole = state.get(DEFAULT_ACCOUNT)
    assert whole.last_success_at == START and whole.last_error is None
    assert whole.watermark_ms == min(
        state.get("jira:support").watermark_ms or 0, state.get(B_NAME).watermark_ms or 0
    )
    b.script["search_issues"] = [JiraUnavailable("site B is down")]
    with pytest.raises(JiraUnavailable):
        job.run()
    assert "site B is down" in (state.get(DEFAULT_ACCOUNT).last_error or "")
