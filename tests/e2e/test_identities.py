"""Who the customer is, end to end: double spellings of one phone, users without a phone
(business-scoped user ids), and the follow-ups that point at an earlier message (reactions,
edits, revokes). The real daemon, with sandbox Jira and Graph on loopback."""

from __future__ import annotations

import time

import pytest

from bot.rules.adf import text_from_doc
from sandbox import whatsapp_payloads as wa
from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, PHONE_NUMBER_ID, wait_until

pytestmark = pytest.mark.e2e

BSUID = "US.13491208655302741918"


class Sender:
    """Meta delivering one customer's messages, the Graph sandbox seeing their window open."""

    def __init__(self, daemon, graph, name: str) -> None:
        self.meta = MetaSender(daemon.webhook_url, APP_SECRET)
        self.graph, self.name = graph, name

    def send(self, message: dict, *, wa_id: str | None = None, user_id: str | None = None) -> str:
        payload = wa.message_payload([message], contacts=[wa.contact(self.name, wa_id, user_id)])
        self.graph.observe_webhook(payload)  # opens windows for messages with `from`
        if wa_id is None and user_id is not None:
            # observe_webhook knows phones only: open the user id's window by hand.
            self.graph.customer_wrote(user_id, int(message["timestamp"]), PHONE_NUMBER_ID)
        assert self.meta.deliver(payload) == 200
        return message["id"]


def texts(jira, key):
    return [
        text_from_doc(c["body"]) if isinstance(c["body"], dict) else c["body"] for c in jira.comments(key)
    ]


def the_issue(jira):
    issues = wait_until(lambda: jira.issues(), what="a ticket")
    assert len(issues) == 1, [i["key"] for i in issues]
    return issues[0]


@pytest.fixture
def start(jira, graph_sandbox, make_daemon):
    def run(**options):
        return make_daemon(graph=graph_sandbox, **options).start()

    return run


# -- one person, two spellings ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other", "key"),
    [
        pytest.param("5215512345678", "525512345678", "+525512345678", id="mx"),
        pytest.param("5491123456789", "541123456789", "+541123456789", id="ar"),
        pytest.param("5511987654321", "551187654321", "+551187654321", id="br"),
    ],
)
def test_double_spelling_is_one_customer_one_ticket(start, jira, graph_sandbox, one, other, key):
    daemon = start()
    ana = Sender(daemon, graph_sandbox, "Ana")
    now = int(time.time())
    ana.send(wa.text(one, "first, old spelling", timestamp=now - 5), wa_id=one)
    issue = the_issue(jira)
    wait_until(lambda: len(jira.comments(issue["key"])) == 1, what="first comment")
    ana.send(wa.text(other, "second, new spelling", timestamp=now), wa_id=other)
    wait_until(lambda: len(jira.comments(issue["key"])) == 2, what="second comment")
    time.sleep(1)  # a duplicate ticket would have been opened by now
    assert [i["key"] for i in jira.issues()] == [issue["key"]]
    assert texts(jira, issue["key"]) == [
        "[WhatsApp] Ana: first, old spelling",
        "[WhatsApp] Ana: second, new spelling",
    ]
    assert issue["properties"]["wajira"]["conversation"] == key
    # An agent's answer reaches the customer at a number Meta gave us for them.
    jira.add_agent_comment(issue["key"], "Got both", author="Agent Smith")
    [sent] = wait_until(lambda: graph_sandbox.sent(), timeout=10, what="agent reply")
    assert sent["to"] in (one, other) and sent["phone_number_id"] == PHONE_NUMBER_ID


# -- a user without a phone ---------------------------------------------------------------------


def test_user_without_from_gets_a_ticket_keyed_on_the_user_id(start, jira, graph_sandbox):
    daemon = start()
    zed = Sender(daemon, graph_sandbox, "Zed")
    zed.send(wa.text(None, "hello, no phone here", user_id=BSUID), user_id=BSUID)
    issue = the_issue(jira)
    wait_until(lambda: len(jira.comments(issue["key"])) == 1, what="comment")
    assert texts(jira, issue["key"]) == ["[WhatsApp] Zed: hello, no phone here"]
    ours = issue["properties"]["wajira"]
    assert ours["conversation"] == f"user:{BSUID}"
    assert (ours["wa_id"], ours["user_id"], ours["phone_number_id"]) == (None, BSUID, PHONE_NUMBER_ID)
    assert "Zed" in issue["summary"]
    # A second message finds the same ticket.
    zed.send(wa.text(None, "still me", user_id=BSUID), user_id=BSUID)
    wait_until(lambda: len(jira.comments(issue["key"])) == 2, what="second comment")
    assert len(jira.issues()) == 1


def _outcome(jira, graph, key):
    """The send the sandbox accepted, or the daemon's note that it could not send."""
    notes = [
        c for c in jira.comments(key) if (c.get("properties") or {}).get("wajira", {}).get("kind") == "note"
    ]
    return graph.sent() or notes


def test_agent_reply_to_a_user_without_phone_is_addressed_by_recipient(start, jira, graph_sandbox):
    daemon = start()
    zed = Sender(daemon, graph_sandbox, "Zed")
    zed.send(wa.text(None, "anyone?", user_id=BSUID), user_id=BSUID)
    key = the_issue(jira)["key"]
    wait_until(lambda: len(jira.comments(key)) == 1, what="comment")
    jira.add_agent_comment(key, "Yes, here", author="Agent Smith")
    wait_until(lambda: _outcome(jira, graph_sandbox, key), timeout=15, what="a send or a failure note")
    assert graph_sandbox.sent(), f"not sent: {texts(jira, key)[-1]}"
    [sent] = graph_sandbox.sent()
    assert sent["payload"].get("recipient") == BSUID and "to" not in sent["payload"]
    assert sent["body"] == "*Agent Smith:* Yes, here"
    assert sent["phone_number_id"] == PHONE_NUMBER_ID


# -- follow-ups that point at an earlier message --------------------------------------------------

PHONE = "5215512345678"


def test_reaction_is_shown_on_the_ticket(start, jira, graph_sandbox):
    daemon = start()
    ana = Sender(daemon, graph_sandbox, "Ana")
    original = ana.send(wa.text(PHONE, "here is my receipt"), wa_id=PHONE)
    key = the_issue(jira)["key"]
    wait_until(lambda: len(jira.comments(key)) == 1, what="message")
    liked = ana.send(wa.reaction(PHONE, original, "👍"), wa_id=PHONE)
    wait_until(lambda: len(jira.comments(key)) == 2, what="reaction")
    unliked = ana.send(wa.reaction(PHONE, original, ""), wa_id=PHONE)
    wait_until(lambda: len(jira.comments(key)) == 3, what="reaction removed")
    assert texts(jira, key)[1:] == [
        f"[WhatsApp] Ana: [reaction] 👍 to message {original}",
        f"[WhatsApp] Ana: [reaction removed] on message {original}",
    ]
    props = [c["properties"]["wajira"] for c in jira.comments(key)[1:]]
    assert props == [{"kind": "customer", "wamid": liked}, {"kind": "customer", "wamid": unliked}]
    assert len(jira.issues()) == 1


def test_edit_and_revoke_become_follow_up_comments_naming_the_original(start, jira, graph_sandbox):
    daemon = start()
    ana = Sender(daemon, graph_sandbox, "Ana")
    original = ana.send(wa.text(PHONE, "my order is 1024"), wa_id=PHONE)
    key = the_issue(jira)["key"]
    wait_until(lambda: len(jira.comments(key)) == 1, what="message")
    edited = ana.send(wa.edit(PHONE, original, "my order is 1042"), wa_id=PHONE)
    wait_until(lambda: len(jira.comments(key)) == 2, what="edit")
    revoked = ana.send(wa.revoke(PHONE, original), wa_id=PHONE)
    wait_until(lambda: len(jira.comments(key)) == 3, what="revoke")
    assert texts(jira, key) == [
        "[WhatsApp] Ana: my order is 1024",  # the original stays as it was written
        f"[WhatsApp] Ana: [edited message {original}] my order is 1042",
        f"[WhatsApp] Ana: [deleted message {original}]",
    ]
    wamids = [c["properties"]["wajira"]["wamid"] for c in jira.comments(key)]
    assert wamids == [original, edited, revoked]


def test_follow_ups_from_a_user_without_phone_join_their_ticket(start, jira, graph_sandbox):
    daemon = start()
    zed = Sender(daemon, graph_sandbox, "Zed")
    now = int(time.time())
    original = zed.send(wa.text(None, "typo hree", user_id=BSUID, timestamp=now - 2), user_id=BSUID)
    key = the_issue(jira)["key"]
    wait_until(lambda: len(jira.comments(key)) == 1, what="message")
    zed.send(wa.edit(None, original, "typo here", user_id=BSUID, timestamp=now - 1), user_id=BSUID)
    zed.send(wa.reaction(None, original, "❤️", user_id=BSUID, timestamp=now), user_id=BSUID)
    wait_until(lambda: len(jira.comments(key)) == 3, what="follow-ups")
    assert texts(jira, key)[1:] == [
        f"[WhatsApp] Zed: [edited message {original}] typo here",
        f"[WhatsApp] Zed: [reaction] ❤️ to message {original}",
    ]
    assert len(jira.issues()) == 1


def test_customer_who_hides_their_phone_later_keeps_their_ticket(start, jira, graph_sandbox):
    daemon = start()
    ana = Sender(daemon, graph_sandbox, "Ana")
    now = int(time.time())
    # Meta sends the user id alongside the phone for everyone, then the phone goes missing.
    ana.send(wa.text(PHONE, "with my phone", user_id=BSUID, timestamp=now - 5), wa_id=PHONE, user_id=BSUID)
    key = the_issue(jira)["key"]
    wait_until(lambda: len(jira.comments(key)) == 1, what="first comment")
    ana.send(wa.text(None, "phone hidden now", user_id=BSUID, timestamp=now), user_id=BSUID)
    wait_until(lambda: sum(len(jira.comments(i["key"])) for i in jira.issues()) == 2, what="second comment")
    assert [i["key"] for i in jira.issues()] == [key]
    assert texts(jira, key)[1] == "[WhatsApp] Ana: phone hidden now"
