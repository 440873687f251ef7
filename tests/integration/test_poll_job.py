"""The poll job on real storage (every engine) with a fake Jira: windows, once-only, routing."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from bot.config import parse_config
from bot.jira_api.errors import JiraRejected, JiraUnavailable, RateLimited
from bot.rules.outgoing import WHATSAPP_TEXT_LIMIT
from jobs.poll import PollJob
from jobs.scheduler import NudgeableJob
from storage.ai_switch import AiSwitch
from storage.ai_turns import AiTurns
from storage.customer_window import CustomerWindow
from storage.hot_tickets import HotTickets
from storage.leases import Leases
from storage.models import AiTurnRow
from storage.outbound import OutboundQueue
from storage.polling import HandledComments, PollState
from tests.fakes import FakeClock, FakeJira

CONVERSATION = "+447700900123"
OURS = {
    "conversation": CONVERSATION,
    "wa_id": "447700900123",
    "user_id": None,
    "service": "support",
    "phone_number_id": "106540352242922",
}
START = 1_800_000_037.25  # deliberately not on a minute boundary
MINUTE_MS = 60_000
DEBOUNCE = 10.0


def settings(*, assistant_enabled: bool = True):
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
            "openai": {"api_key": "k"},
            "poller": {"interval_seconds": 30, "overlap_seconds": 120},
            "outbox": {"agent_format": "{name} (support): {text}"},
            "services": [
                {
                    "id": "support",
                    "project_key": "WA",
                    "labels": ["whatsapp"],
                    "assistant": {"enabled": assistant_enabled, "debounce_seconds": DEBOUNCE},
                }
            ],
        },
        env={},
    )


class World:
    def __init__(self, db, s) -> None:
        self.db = db
        self.clock = FakeClock(START)
        self.jira = FakeJira(clock=self.clock)
        self.state = PollState(db, clock=self.clock)
        self.handled = HandledComments(db, clock=self.clock)
        self.leases = Leases(db, clock=self.clock)
        self.outbound = OutboundQueue(db, clock=self.clock)
        self.turns = AiTurns(db, clock=self.clock)
        self.ai_switch = AiSwitch(db, clock=self.clock)
        self.settings = s
        self.ai_nudges: list[float] = []
        self.outbound_nudges = 0
        self.job = self.poller("poller:1")
        self.key = self.jira.open_ticket(wajira=OURS)

    def poller(self, owner: str) -> PollJob:
        def outbound_nudge() -> None:
            self.outbound_nudges += 1

        return PollJob(
            settings=self.settings,
            jira=self.jira,
            state=self.state,
            handled=self.handled,
            leases=self.leases,
            switch=self.ai_switch,
            window=CustomerWindow(self.db),
            hot=HotTickets(self.db),
            owner=owner,
            clock=self.clock,
            on_ai_turn=self.ai_nudges.append,
            on_outbound=outbound_nudge,
        )

    def customer(self, text: str, key: str | None = None) -> str:
        """What the inbox job writes for a customer's WhatsApp message."""
        return self.jira.bot_comment(
            key or self.key,
            f"[WhatsApp] Ana: {text}",
            prop={"kind": "customer", "wamid": f"wamid.{text[:8]}"},
        )

    def agent(self, text: str, key: str | None = None, **kw) -> str:
        return self.jira.human_comment(key or self.key, text, **kw)

    def rows(self, key: str | None = None):
        return self.outbound.for_issue(key or self.key)

    def turns_of(self, key: str | None = None):
        ids = (
            AiTurnRow.select(AiTurnRow.id)
            .where(AiTurnRow.issue_key == (key or self.key))
            .order_by(AiTurnRow.id)
        )
        return [self.turns.get(row.id) for row in ids]

    def list_calls(self) -> int:
        """Requests for comments beyond the search: per issue, or in one batch for many."""
        return self.jira.calls.count("list_comments") + self.jira.calls.count("comments_by_ids")


@pytest.fixture
def world(db):
    made: list[World] = []

    def build(**kw) -> World:
        made.append(World(db, settings(**kw)))
        return made[-1]

    yield build


def floor_minute(ms: int) -> int:
    return ms - ms % MINUTE_MS


# -- the window -----------------------------------------------------------------------------------


def test_jql_is_epoch_ms_from_watermark_minus_overlap_floored_to_the_minute(world):
    w = world()
    w.job.run()  # first run: no watermark, one hour back
    first = w.jira.searches[-1]
    since = floor_minute(int((START - 3600) * 1000))
    assert (
        first["jql"]
        == f'project in ("WA") AND labels in ("whatsapp") AND updated >= {since} ORDER BY updated ASC'
    )
    assert first["fields"] == ["comment", "status", "updated", "labels", "summary"]
    assert first["properties"] == ["wajira"]

    w.clock.advance(7.5)
    w.agent("on it")
    updated_ms = int(w.clock() * 1000)
    w.job.run()
    assert w.state.get().watermark_ms == updated_ms

    w.clock.advance(30)
    w.job.run()
    expected = floor_minute(updated_ms - 120_000)
    assert w.jira.searches[-1]["jql"].endswith(f"updated >= {expected} ORDER BY updated ASC")
    assert expected % MINUTE_MS == 0 and expected < updated_ms - 120_000


def test_watermark_advances_and_never_goes_back(world):
    w = world()
    late = w.jira.open_ticket(wajira={**OURS, "conversation": "+447700900999", "wa_id": "447700900999"})
    w.agent("written while search lagged", key=late)
    lagged_ms = int(w.clock() * 1000)
    w.jira.unindexed.add(late)  # the index has not caught up with this ticket yet
    w.clock.advance(50)
    w.agent("seen at once")
    newest_ms = int(w.clock() * 1000)
    w.job.run()
    assert w.state.get().watermark_ms == newest_ms
    assert w.rows(late) == []

    w.jira.unindexed.clear()  # now search shows the older update: the overlap catches it
    w.clock.advance(30)
    w.job.run()
    assert lagged_ms < newest_ms
    assert w.state.get().watermark_ms == newest_ms  # not moved back to the older update
    assert [r.body for r in w.rows(late)] == ["Bruno Díaz (support): written while search lagged"]

    w.clock.advance(30)
    w.jira.human_comment(w.key, "Jira's clock runs ahead", at=w.clock() + 600)
    w.job.run()
    assert w.state.get().watermark_ms == int(w.clock() * 1000)  # never beyond our own clock


def test_a_comment_is_handled_once_across_overlapping_passes(world):
    w = world()
    w.agent("your parcel left the warehouse")
    for _ in range(4):
        w.job.run()
        w.clock.advance(30)
    assert len(w.jira.searches) == 4
    assert len(w.rows()) == 1
    assert w.outbound_nudges == 1
    second = w.poller("poller:2")  # a fresh instance, same database, takes over later
    w.clock.advance(600)
    second.run()
    assert len(w.rows()) == 1


# -- what a comment means -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "marker",
    [
        {"jsm_internal": True},
        {"jsd_public": False},
        {"visibility": {"type": "role", "value": "Administrators"}},
        {"jsm_internal": True, "wajira": {"kind": "customer", "wamid": "wamid.forged"}},
        {
            "visibility": {"type": "group", "value": "jira-servicedesk-users"},
            "wajira": {"kind": "customer", "wamid": "wamid.forged2"},
        },
    ],
    ids=[
        "jsm-property",
        "jsdPublic-false",
        "restricted-visibility",
        "internal-customer-kind",
        "restricted-customer-kind",
    ],
)
def test_internal_comments_never_become_messages_or_ai_turns(world, marker):
    w = world()
    comment_id = w.agent("INTERNAL: refund approved, do not tell the customer yet", **marker)
    w.job.run()
    assert w.rows() == []
    assert w.turns_of() == []
    assert w.outbound_nudges == 0 and w.ai_nudges == []
    assert w.handled.known([comment_id]) == {comment_id}  # looked at once, then left alone


def test_our_own_ai_note_and_echo_comments_are_ignored(world):
    w = world()
    ours = [
        w.jira.bot_comment(w.key, "[AI] Hello! How can I help?", prop={"kind": "ai", "turn": 1}),
        w.jira.bot_comment(
            w.key, "[wajira] could not send", prop={"kind": "note", "ref": "failed:1"}, internal=True
        ),
        w.jira.bot_comment(
            w.key, "[WhatsApp Business App] Team: hi", prop={"kind": "echo", "wamid": "wamid.E1"}
        ),
        w.jira.bot_comment(w.key, "written by the bot's token by hand", prop=None),
    ]
    w.job.run()
    assert w.rows() == [] and w.turns_of() == []
    assert w.handled.known(ours) == set(ours)


def test_agent_public_comment_becomes_formatted_whatsapp_rows(world):
    w = world()
    comment_id = w.agent("Your order **shipped** today.")
    w.job.run()
    (row,) = w.rows()
    assert row.body == "Bruno Díaz (support): Your order *shipped* today."
    assert (row.kind, row.dedupe_key, row.state) == ("agent", f"comment:{comment_id}:0", "pending")
    assert (row.conversation_key, row.to_wa_id, row.phone_number_id) == (
        CONVERSATION,
        OURS["wa_id"],
        OURS["phone_number_id"],
    )
    assert w.outbound_nudges == 1


def test_a_long_agent_comment_is_split_at_4096_in_order(world):
    w = world()
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 60 for i in range(6)]
    comment_id = w.agent("\n\n".join(paragraphs))
    w.job.run()
    rows = w.rows()
    assert len(rows) >= 3
    assert all(len(r.body) <= WHATSAPP_TEXT_LIMIT for r in rows)
    assert [r.dedupe_key for r in rows] == [f"comment:{comment_id}:{n}" for n in range(len(rows))]
    assert rows[0].body.startswith("Bruno Díaz (support): Paragraph 0:")
    joined = " ".join(r.body for r in rows).split()
    assert joined == ("Bruno Díaz (support): " + " ".join(paragraphs)).split()


def test_customer_relay_becomes_an_ai_turn_due_after_the_debounce(world):
    w = world()
    written = w.clock()
    comment_id = w.customer("where is my order?")
    w.clock.advance(2)
    w.job.run()
    (turn,) = w.turns_of()
    assert (turn.state, turn.trigger_comment_id, turn.conversation_key, turn.service_id) == (
        "pending",
        comment_id,
        CONVERSATION,
        "support",
    )
    assert turn.due_at == pytest.approx(written + DEBOUNCE, abs=0.01)
    assert w.ai_nudges == [pytest.approx(written + DEBOUNCE, abs=0.01)]
    assert w.rows() == []  # the customer's own words do not go back to them

    w.clock.advance(60)
    late = w.customer("hello?")
    w.clock.advance(30)  # polled after its debounce already passed: due now, not in the past
    w.job.run()
    newest = w.turns_of()[-1]
    assert newest.trigger_comment_id == late and newest.due_at == pytest.approx(w.clock(), abs=0.01)
    assert w.turns_of()[0].state == "superseded"


def test_without_the_assistant_customer_comments_make_no_turn(world):
    w = world(assistant_enabled=False)
    w.customer("hi")
    w.job.run()
    assert w.turns_of() == [] and w.ai_nudges == []


def test_history_is_not_acted_on(world):
    w = world()
    w.jira.human_comment(w.key, "from yesterday", at=w.clock() - 25 * 3600)
    w.jira.bot_comment(
        w.key,
        "[WhatsApp] Ana: two hours ago",
        prop={"kind": "customer", "wamid": "wamid.old"},
        at=w.clock() - 7200,
    )
    w.job.run()
    assert w.rows() == [] and w.turns_of() == []


# -- Jira's quirks ------------------------------------------------------------------------------


def test_reconcile_ids_are_passed_after_note_write(world):
    w = world()
    issue_id = int(w.jira.issues[w.key]["id"])
    w.jira.unindexed.add(w.key)
    w.customer("new message")
    w.job.run()
    assert w.jira.searches[-1]["reconcile_ids"] == [] and w.turns_of() == []  # lagging index

    w.job.note_write(w.key, str(issue_id))
    w.clock.advance(1)
    w.job.run()
    assert w.jira.searches[-1]["reconcile_ids"] == [issue_id]
    assert len(w.turns_of()) == 1

    w.clock.advance(30)
    w.job.run()
    assert w.jira.searches[-1]["reconcile_ids"] == []  # asked once per write

    w.job.note_write(w.key)  # the inbox knows only the key: the id seen in search is used
    w.job.run()
    assert w.jira.searches[-1]["reconcile_ids"] == [issue_id]


def test_tickets_without_our_issue_property_are_ignored(world):
    w = world()
    foreign = w.jira.open_ticket(wajira=None, summary="a ticket someone made by hand")
    half = w.jira.open_ticket(wajira={"service": "support"})  # ours in name only: no conversation
    w.agent("please reset my password", key=foreign)
    w.agent("hello", key=half)
    w.job.run()
    assert w.rows(foreign) == [] and w.rows(half) == []
    assert w.list_calls() == 0


def test_inline_comments_spare_the_comment_request_when_all_are_known(world):
    w = world()
    w.agent("first")
    w.job.run()
    assert w.list_calls() == 1
    w.clock.advance(30)
    w.job.run()  # same comments inlined in search: nothing new, no second request
    assert w.list_calls() == 1
    w.agent("second")
    w.clock.advance(1)
    w.job.run()
    assert w.list_calls() == 2
    assert [r.body for r in w.rows()] == ["Bruno Díaz (support): first", "Bruno Díaz (support): second"]

    w.jira.inline_comment_limit = 1  # search truncated the inline list: total says more exist
    w.clock.advance(30)
    w.job.run()
    assert w.list_calls() == 3
    assert len(w.rows()) == 2


def test_new_comments_of_many_issues_cost_one_comment_request(world):
    w = world()
    keys = [
        w.key,
        *(w.jira.open_ticket(wajira=w.jira.issues[w.key]["properties"]["wajira"]) for _ in range(2)),
    ]
    w.job.run()
    before = w.list_calls()
    w.clock.advance(30)
    for key in keys:
        w.jira.human_comment(key, f"news for {key}")
    w.clock.advance(1)
    w.job.run()
    # One search, then the three new comments with their properties in one request.
    assert w.list_calls() - before == 1
    assert w.jira.calls.count("list_comments") == 0
    for key in keys:
        assert [r.body for r in w.rows(key)] == [f"Bruno Díaz (support): news for {key}"]


def test_on_server_each_issue_reads_its_own_list(world):
    w = world()
    w.jira.cloud = False
    w.agent("hello from server")
    w.job.run()
    assert w.jira.calls.count("list_comments") == 1 and w.jira.calls.count("comments_by_ids") == 0
    assert [r.body for r in w.rows()] == ["Bruno Díaz (support): hello from server"]


def test_the_poll_lease_keeps_a_second_owner_out(world):
    w = world()
    other = w.poller("poller:2")
    assert w.job.run() is not None
    assert other.run() is None
    assert len(w.jira.searches) == 1
    w.clock.advance(60)
    assert w.job.run() is not None  # the holder renews
    w.clock.advance(89)
    assert other.run() is None
    w.clock.advance(2)  # the holder stopped renewing 91 s ago (TTL 3 × 30 s): taken over
    assert other.run() is not None
    assert w.job.run() is None
    assert len(w.jira.searches) == 3


def test_a_failed_pass_is_recorded_and_keeps_the_watermark(world):
    w = world()
    w.agent("one")
    w.job.run()
    before = w.state.get()

    w.clock.advance(30)
    w.jira.fail("search_issues", JiraUnavailable("Jira 503", status=503))
    with pytest.raises(JiraUnavailable):
        w.job.run()
    failed = w.state.get()
    assert "JiraUnavailable" in failed.last_error and "503" in failed.last_error
    assert failed.watermark_ms == before.watermark_ms
    assert failed.last_success_at == before.last_success_at
    assert (failed.runs, failed.last_run_at) == (before.runs + 1, w.clock())

    w.clock.advance(30)
    w.agent("two")
    w.jira.fail("comments_by_ids", JiraUnavailable("Jira 503", status=503))
    with pytest.raises(JiraUnavailable):
        w.job.run()
    assert w.state.get().watermark_ms == before.watermark_ms

    w.clock.advance(30)
    w.job.run()
    recovered = w.state.get()
    assert recovered.last_error is None and recovered.watermark_ms > before.watermark_ms
    assert [r.body for r in w.rows()] == ["Bruno Díaz (support): one", "Bruno Díaz (support): two"]


def test_reconcile_ids_survive_a_failed_pass(world):
    w = world()
    issue_id = int(w.jira.issues[w.key]["id"])
    w.job.note_write(w.key, str(issue_id))
    w.jira.fail("search_issues", JiraUnavailable("Jira 429", status=429))
    with pytest.raises(JiraUnavailable):
        w.job.run()
    w.clock.advance(30)
    w.job.run()
    assert w.jira.searches[-1]["reconcile_ids"] == [issue_id]


@pytest.mark.parametrize(
    "error",
    [
        JiraUnavailable("Jira 503: Jira is down for maintenance", status=503),
        JiraUnavailable("Jira 502: no Jira error message (text/html, 120 bytes)", status=502),
        RateLimited("Jira 429: Rate limit exceeded", retry_after=30),
        RateLimited("search_issues: Jira asked us to wait (12.0 s more)", retry_after=12),
        JiraUnavailable("search_issues: cannot reach Jira (ConnectionError)"),
    ],
    ids=["503", "502", "429", "retry-after-hold", "unreachable"],
)
def test_a_pass_failing_while_jira_is_unavailable_logs_a_warning_without_a_traceback(world, error):
    w = world()
    job = NudgeableJob("poll", w.job.run)
    w.jira.fail("search_issues", error)
    with capture_logs() as logs:
        job()
    assert [e for e in logs if e["event"] == "job_failed"] == [
        {"event": "job_failed", "log_level": "warning", "job": "poll", "error": str(error)}
    ]
    # Recorded as before: the job's last error, and the poll state health and status read.
    assert job.last_error == f"{type(error).__name__}: {error}"
    assert w.state.get().last_error == f"{type(error).__name__}: {error}"
    assert w.state.get().last_success_at is None


@pytest.mark.parametrize(
    "error",
    [JiraRejected("Jira 400: The JQL query is invalid", status=400), RuntimeError("a bug in the pass")],
    ids=["jira-rejected", "bug"],
)
def test_any_other_failed_pass_logs_an_error_with_its_traceback(world, error):
    w = world()
    job = NudgeableJob("poll", w.job.run)
    w.jira.fail("search_issues", error)
    with capture_logs() as logs:
        job()
    assert [e for e in logs if e["event"] == "job_failed"] == [
        {"event": "job_failed", "log_level": "error", "job": "poll", "exc_info": True}
    ]
    assert job.last_error == f"{type(error).__name__}: {error}"
    assert w.state.get().last_error == f"{type(error).__name__}: {error}"
