"""Coexistence on real storage (every engine): echoes, shared history and saved contact names
through the queue, the inbox job (fake Jira) and the poll job's bookkeeping."""

from __future__ import annotations

import pytest

from bot.config import parse_config
from bot.rules.payload import parse_webhook
from jobs.inbox import InboxJob
from jobs.poll import PollJob
from jobs.tickets import TicketOpener
from sandbox import whatsapp_payloads as wa
from storage.ai_switch import AiSwitch
from storage.contacts import ContactNameRow, ContactNames
from storage.customer_window import CustomerWindow
from storage.db import bind, open_database
from storage.hot_tickets import HotTickets
from storage.inbound import InboundQueue
from storage.leases import Leases
from storage.mappings import Mappings
from storage.polling import HandledComments, PollState
from storage.schema import migrate
from tests.fakes import FakeClock, FakeJira

PHONE = "5215512345678"
KEY = "+525512345678"
OTHER = "16505551234"
SETTLE, MAX_HOLD = 10.0, 60.0
T0 = 1_800_000_000.0


def settings():
    return parse_config(
        {
            "storage": {"url": "sqlite:///:memory:"},
            "whatsapp": {
                "verify_token": "v",
                "app_secret": "test-app-secret-0123",
                "access_token": "a",
                "phone_number_id": wa.PHONE_NUMBER_ID,
            },
            "jira": {"url": "http://127.0.0.1:9", "email": "e@example.com", "api_token": "t"},
            "openai": {"api_key": "k"},
            "inbox": {"workers": 2, "max_attempts": 3, "retry_base_seconds": 1.0, "retry_max_seconds": 8.0},
            "services": [
                {
                    "id": "support",
                    "project_key": "WA",
                    "labels": ["whatsapp"],
                    "assistant": {"enabled": True, "debounce_seconds": 1.0},
                }
            ],
        },
        env={},
    )


class World:
    def __init__(self, db) -> None:
        self.db = db
        self.clock = FakeClock(T0)
        self.jira = FakeJira(clock=self.clock)
        self.queue = InboundQueue(
            db, clock=self.clock, history_settle_seconds=SETTLE, history_max_hold_seconds=MAX_HOLD
        )
        self.mappings = Mappings(db)
        self.settings = settings()
        self.inbox = InboxJob(
            settings=self.settings,
            queue=self.queue,
            leases=Leases(db, clock=self.clock),
            jira=self.jira,
            tickets=TicketOpener(self.jira, self.mappings, clock=self.clock),
            owner="test:1",
            clock=self.clock,
        )
        self.handled = HandledComments(db, clock=self.clock)
        self.poll = PollJob(
            settings=self.settings,
            jira=self.jira,
            state=PollState(db, clock=self.clock),
            handled=self.handled,
            leases=Leases(db, clock=self.clock),
            switch=AiSwitch(self.db, clock=self.clock),
            window=CustomerWindow(self.db),
            hot=HotTickets(self.db),
            owner="test:1",
            clock=self.clock,
        )

    def deliver(self, doc):
        return self.queue.store_batch(parse_webhook(doc))

    def customer(self, text, at, name="Ana", phone=PHONE):
        return self.deliver(
            wa.message_payload([wa.text(phone, text, timestamp=int(at))], contacts=[wa.contact(name, phone)])
        )

    def texts(self, key="WA-1"):
        return self.jira.texts(key)

    def props(self, key="WA-1"):
        return [c["prop"] for c in self.jira.comments.get(key, [])]


@pytest.fixture
def world(db):
    yield World(db)


# -- schema ----------------------------------------------------------------------------------


def test_step_5_marks_existing_rows_as_customers_and_adds_the_contact_table(db_url):
    db = open_database(db_url)
    try:
        migrate(db, target=4)
        db.execute_sql(
            "INSERT INTO inbound_message (wamid, conversation_key, phone_number_id, meta_timestamp, kind, "
            f"raw_json, next_attempt_at, created_at, updated_at) VALUES ({', '.join([db.param] * 9)})",
            ("wamid.old", KEY, "1", 5, "text", "{}", 0.0, 0.0, 0.0),
        )
        migrate(db)
        migrate(db)  # idempotent
        bind(db)
        (row,) = InboundQueue(db).pending_for(KEY)
        assert (row.origin, row.from_business) == ("customer", False)
        columns = {c.name for c in db.get_columns("contact_name")}
        assert columns == {f.column_name for f in ContactNameRow._meta.sorted_fields}
        assert ["phone_number_id", "conversation_key"] in [i.columns for i in db.get_indexes("contact_name")]
    finally:
        db.close()


# -- the queue -------------------------------------------------------------------------------


def test_rows_keep_where_they_came_from(world):
    world.customer("live", T0)
    world.deliver(wa.echo_payload(PHONE, "from the app", timestamp=int(T0) + 1))
    world.deliver(
        wa.history_payload(
            PHONE,
            [
                wa.history_message(PHONE, "old", timestamp=10),
                wa.history_message(PHONE, "reply", from_business=True, timestamp=11),
            ],
        )
    )
    rows = world.queue.pending_for(KEY)
    assert [(r.origin, r.from_business) for r in rows] == [
        ("history", False),
        ("history", True),
        ("customer", False),
        ("echo", True),
    ]
    assert {r.wa_id for r in rows} == {PHONE}


def test_only_the_customer_opens_the_window(world):
    assert world.queue.last_customer_message(KEY) is None
    world.deliver(wa.echo_payload(PHONE, "hi from the app", timestamp=500))
    assert world.queue.last_customer_message(KEY) is None  # an echo alone opens nothing
    world.customer("hello", 100)
    world.deliver(
        wa.history_payload(PHONE, [wa.history_message(PHONE, "ours", from_business=True, timestamp=900)])
    )
    assert world.queue.last_customer_message(KEY) == (100, "Ana")
    # The customer's own history is what they really wrote, when they wrote it; nameless, it
    # borrows the latest profile name for a template's {name}.
    world.deliver(wa.history_payload(PHONE, [wa.history_message(PHONE, "theirs", timestamp=150)]))
    assert world.queue.last_customer_message(KEY) == (150, "Ana")


def test_history_waits_until_the_import_goes_quiet(world):
    world.deliver(wa.history_payload(PHONE, [wa.history_message(PHONE, "b", timestamp=20)], chunk_order=2))
    world.clock.advance(SETTLE - 1)
    assert world.queue.due_conversations() == []
    # The chunk Meta numbered first arrives second: both wait a full quiet spell from now.
    world.deliver(wa.history_payload(PHONE, [wa.history_message(PHONE, "a", timestamp=10)], chunk_order=1))
    world.clock.advance(SETTLE - 1)
    assert world.queue.due_conversations() == []
    world.clock.advance(1)
    assert world.queue.due_conversations() == [KEY]
    assert [r.raw["text"]["body"] for r in world.queue.pending_for(KEY)] == ["a", "b"]


def test_a_long_import_lets_early_conversations_go(world):
    world.deliver(wa.history_payload(PHONE, [wa.history_message(PHONE, "first", timestamp=1)]))
    for _ in range(20):  # another conversation's chunks keep coming, every 5 s
        world.clock.advance(5)
        world.deliver(wa.history_payload(OTHER, [wa.history_message(OTHER, "more", timestamp=2)]))
    assert world.clock() - T0 == 100
    assert world.queue.due_conversations() == [KEY]  # held at most MAX_HOLD + SETTLE


def test_live_messages_are_not_held(world):
    world.customer("now", T0)
    world.deliver(wa.echo_payload(PHONE, "now too", timestamp=int(T0)))
    assert world.queue.due_conversations() == [KEY]


def test_parked_rows_come_back_ahead_of_the_customers_message(world):
    world.deliver(wa.echo_payload(PHONE, "promo from the app", timestamp=100))
    (echo,) = world.queue.pending_for(KEY)
    world.queue.mark_parked(echo.id)
    assert world.queue.due_conversations() == [] and world.queue.pending_for(KEY) == []
    world.deliver(wa.echo_payload(PHONE, "another promo", timestamp=101))  # echoes do not wake it
    assert [r.raw["text"]["body"] for r in world.queue.pending_for(KEY)] == ["another promo"]
    world.customer("what promo?", 200)
    assert [r.raw["text"]["body"] for r in world.queue.pending_for(KEY)] == [
        "promo from the app",
        "another promo",
        "what promo?",
    ]


# -- saved contact names ---------------------------------------------------------------------


def test_contact_changes_apply_newest_first_whatever_the_delivery_order(world):
    names = ContactNames(world.db)

    def sync(*items):
        return world.deliver(wa.state_sync_payload(list(items))).contacts_applied

    assert sync(wa.contact_sync(PHONE, "Ana García", timestamp=10)) == 1
    assert names.name_for(wa.PHONE_NUMBER_ID, KEY) == "Ana García"
    assert sync(wa.contact_sync(PHONE, "Stale Name", timestamp=5)) == 0  # an older edit, redelivered
    assert sync(wa.contact_sync(PHONE, action="remove", timestamp=20)) == 1
    assert names.name_for(wa.PHONE_NUMBER_ID, KEY) is None
    assert sync(wa.contact_sync(PHONE, "Back From The Dead", timestamp=15)) == 0  # late, older add
    assert names.name_for(wa.PHONE_NUMBER_ID, KEY) is None
    assert (
        sync(wa.contact_sync(PHONE, "Ana", timestamp=30), wa.contact_sync(PHONE, "Ana G.", timestamp=30)) == 1
    )
    assert names.name_for(wa.PHONE_NUMBER_ID, KEY) == "Ana G."  # a tie: the later item
    assert sync(wa.contact_sync(OTHER, first_name="Bo", full_name="Bo", timestamp=1)) == 1
    assert names.names_for("+16505551234") == {wa.PHONE_NUMBER_ID: "Bo"}


def test_saved_name_is_per_business_number_with_a_fallback(world):
    names = ContactNames(world.db)
    world.deliver(wa.state_sync_payload([wa.contact_sync(PHONE, "Ana (sales)")], phone_number_id="222"))
    assert names.name_for("222", KEY) == "Ana (sales)"
    assert names.name_for(wa.PHONE_NUMBER_ID, KEY) == "Ana (sales)"  # none saved here: another of ours
    assert names.name_for(wa.PHONE_NUMBER_ID, "+16505551234") is None


def test_queue_hands_the_inbox_a_name_for_nameless_rows(world):
    world.deliver(wa.history_payload(PHONE, [wa.history_message(PHONE, "old", timestamp=1)]))
    assert world.queue.pending_for(KEY)[0].known_name is None
    world.customer("live", 50, name="Anita")
    assert [r.known_name for r in world.queue.pending_for(KEY)] == ["Anita", "Anita"]
    world.deliver(wa.state_sync_payload([wa.contact_sync(PHONE, "Ana García")]))
    assert [r.known_name for r in world.queue.pending_for(KEY)] == ["Ana García", "Ana García"]
    assert world.queue.pending_for(KEY)[1].profile_name == "Anita"  # the profile name stays its own


# -- the inbox job ---------------------------------------------------------------------------


def test_echo_lands_on_the_ticket_as_the_team_in_the_app(world):
    world.customer("where is my order?", T0)
    world.deliver(wa.echo_payload(PHONE, "It ships today", timestamp=int(T0) + 5))
    world.inbox.run()
    assert world.texts() == [
        "[WhatsApp] Ana: where is my order?",
        f"[WhatsApp] +{wa.DISPLAY_PHONE} (app): It ships today",
    ]
    assert [p["kind"] for p in world.props()] == ["customer", "echo"]
    assert world.props()[1]["wamid"] and "history" not in world.props()[1]


def test_echo_never_opens_a_ticket_but_joins_the_one_the_customer_opens(world):
    world.deliver(wa.echo_payload(PHONE, "20% off this week!", timestamp=100))
    world.inbox.run()
    assert world.jira.issues == {} and world.queue.due_conversations() == []
    world.customer("is that for shoes too?", 200)
    world.inbox.run()
    assert list(world.jira.issues) == ["WA-1"]
    issue = world.jira.issues["WA-1"]
    assert "Ana" in issue["summary"] and "is that for shoes too?" in issue["description"]
    assert world.texts() == [
        f"[WhatsApp] +{wa.DISPLAY_PHONE} (app): 20% off this week!",
        "[WhatsApp] Ana: is that for shoes too?",
    ]


def test_history_is_imported_in_order_marked_and_once(world):
    world.customer("hi again", T0)
    world.inbox.run()
    old = [
        wa.history_message(PHONE, f"m{i}", from_business=i % 2 == 1, timestamp=1_749_000_000 + i * 60)
        for i in range(4)
    ]
    chunks = [
        wa.history_payload(PHONE, old[:2], chunk_order=1, progress=50),
        wa.history_payload(PHONE, old[2:], chunk_order=2, progress=100),
    ]
    for doc in reversed(chunks):
        world.deliver(doc)
    world.inbox.run()
    assert len(world.texts()) == 1  # held while the import may still be arriving
    for doc in chunks:  # Meta delivers again
        assert world.deliver(doc).messages_new == 0
    world.clock.advance(SETTLE)
    world.inbox.run()
    texts = world.texts()[1:]
    assert [t.split("] ", 1)[1] for t in texts] == [
        "Ana: m0",
        f"+{wa.DISPLAY_PHONE} (app): m1",
        "Ana: m2",
        f"+{wa.DISPLAY_PHONE} (app): m3",
    ]
    assert texts[0].startswith("[WhatsApp history 2025-06-04 01:20 UTC] ")
    assert [(p["kind"], p["history"]) for p in world.props()[1:]] == [
        ("customer", True),
        ("echo", True),
        ("customer", True),
        ("echo", True),
    ]


def test_history_of_a_conversation_without_a_ticket_waits_for_the_customer(world):
    world.deliver(wa.history_payload(OTHER, [wa.history_message(OTHER, "last year", timestamp=1)]))
    world.clock.advance(SETTLE)
    world.inbox.run()
    assert world.jira.issues == {}
    world.customer("me again", T0, name="Bo", phone=OTHER)
    world.clock.advance(1)
    world.inbox.run()
    assert [t.split("] ", 1)[1] for t in world.texts()] == ["Bo: last year", "Bo: me again"]


# -- the poll job: who spoke ---------------------------------------------------------------


def test_an_echo_counts_as_a_human_reply_and_history_as_nothing(world):
    world.customer("help", T0)
    world.inbox.run()
    world.poll.run()
    assert world.handled.last_human_at("WA-1") is None
    world.clock.advance(30)
    world.deliver(wa.echo_payload(PHONE, "on it", timestamp=int(world.clock())))
    world.deliver(
        wa.history_payload(
            PHONE,
            [
                wa.history_message(PHONE, "old q", timestamp=1),
                wa.history_message(PHONE, "old a", from_business=True, timestamp=2),
            ],
        )
    )
    world.clock.advance(SETTLE)
    world.inbox.run()
    echo_created = world.jira.comments["WA-1"][1]["created"]
    result = world.poll.run()
    assert result.new_comments == 3 and result.ai_turns == 0 and result.pushed == 0
    assert world.handled.last_human_at("WA-1") == pytest.approx(echo_created)
    assert world.handled.last_customer_at("WA-1") == world.jira.comments["WA-1"][0]["created"]
