"""Coexistence rules without I/O: how echoes and shared history read in Jira, and what the poller
makes of the comments the inbox writes for them."""

from __future__ import annotations

import pytest

from bot.rules.ai_context import ai_messages
from bot.rules.classify import Route, comment_view, route_comment
from bot.rules.payload import parse_webhook
from bot.rules.render import render_echo, render_history
from jobs.inbox import _comment_for, _name
from sandbox import whatsapp_payloads as wa
from storage.inbound import QueuedMessage

PHONE = "5215512345678"
BUSINESS = "+15550783881"  # display_phone of wa.DISPLAY_PHONE (a fictional 555 number stays bare)
JUNE_8 = 1749416383  # 2025-06-08 20:59:43 UTC


def queued(doc, n: int = 0, **over) -> QueuedMessage:
    """A parsed webhook message as the inbox job gets it back from the queue."""
    m = parse_webhook(doc).messages[n]
    fields = {
        "id": 1,
        "wamid": m.wamid,
        "conversation_key": m.conversation_key,
        "wa_id": m.wa_id,
        "user_id": m.user_id,
        "phone_number_id": m.phone_number_id,
        "display_phone_number": m.display_phone_number,
        "profile_name": m.profile_name,
        "timestamp": m.timestamp,
        "kind": m.kind,
        "raw": m.raw,
        "attempts": 0,
        "started": 0,
        "next_attempt_at": 0.0,
        "last_error": None,
        "origin": m.origin,
        "from_business": m.from_business,
    }
    return QueuedMessage(**(fields | over))


# -- rendering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("echo", "text"),
    [
        (wa.text(PHONE, "Your order shipped"), f"[WhatsApp] {BUSINESS} (app): Your order shipped"),
        (
            wa.image(PHONE, caption="the invoice", media_id="55"),
            f"[WhatsApp] {BUSINESS} (app): [image] the invoice",
        ),
        (
            wa.text(PHONE, "yes", context={"from": PHONE, "id": "wamid.Q"}),
            f"[WhatsApp] {BUSINESS} (app): (reply to wamid.Q) yes",
        ),
        (wa.unknown_type(PHONE, "hologram"), f"[WhatsApp] {BUSINESS} (app): [unsupported: hologram]"),
    ],
    ids=["text", "image", "reply", "unknown"],
)
def test_echo_reads_as_the_business_in_the_app(echo, text):
    row = queued(wa.echo_payload(PHONE, "", echoes=[wa.echo_of(echo, PHONE)]))
    rendered, prop = _comment_for(row, _name(row))
    assert rendered.text.startswith(text)
    assert prop == {"kind": "echo", "wamid": row.wamid}


def test_echo_media_is_downloaded_like_a_customers():
    row = queued(wa.echo_payload(PHONE, "", echoes=[wa.echo_of(wa.document(PHONE, media_id="88"), PHONE)]))
    assert _comment_for(row, "x")[0].media == ("88",)


@pytest.mark.parametrize("business", ["", "   ", "\u202e\n", None])
def test_echo_without_a_business_name_still_says_who(business):
    assert render_echo("text", {"text": {"body": "hi"}}, business).text == "[WhatsApp] Business (app): hi"


def test_history_shows_when_and_who():
    theirs = wa.history_message(PHONE, "is it in stock?", timestamp=JUNE_8)
    ours = wa.history_message(PHONE, "yes, two left", from_business=True, timestamp=JUNE_8 + 60)
    doc = wa.history_payload(PHONE, [theirs, ours])
    customer, business = queued(doc, 0, known_name="Ana García"), queued(doc, 1)
    assert _comment_for(customer, _name(customer)) == (
        render_history("text", theirs, "Ana García", sent_at=JUNE_8),
        {"kind": "customer", "wamid": theirs["id"], "history": True},
    )
    assert (
        _comment_for(customer, _name(customer))[0].text
        == "[WhatsApp history 2025-06-08 20:59 UTC] Ana García: is it in stock?"
    )
    rendered, prop = _comment_for(business, _name(business))
    assert rendered.text == f"[WhatsApp history 2025-06-08 21:00 UTC] {BUSINESS} (app): yes, two left"
    assert prop == {"kind": "echo", "wamid": ours["id"], "history": True}


def test_history_name_falls_back_to_the_phone():
    row = queued(wa.history_payload(PHONE, [wa.history_message(PHONE, "hi", timestamp=JUNE_8)]))
    assert (
        _comment_for(row, _name(row))[0].text
        == "[WhatsApp history 2025-06-08 20:59 UTC] +52 55 1234 5678: hi"
    )


def test_profile_name_wins_over_the_saved_one():
    row = queued(
        wa.message_payload([wa.text(PHONE, "hi")], contacts=[wa.contact("Ana", PHONE)]),
        known_name="Ana (VIP, order 1042)",
    )
    assert _comment_for(row, _name(row))[0].text == "[WhatsApp] Ana: hi"


@pytest.mark.parametrize("sent_at", [10**17, -(10**17), "yesterday", None, True, float("nan")])
def test_history_with_an_absurd_timestamp_still_renders(sent_at):
    text = render_history("text", {"text": {"body": "x"}}, "Ana", sent_at=sent_at).text
    assert text == "[WhatsApp history (date unknown)] Ana: x"


@pytest.mark.parametrize("raw", [None, [], "x", {"type": "image"}, {"text": "not an object"}])
def test_odd_shapes_never_raise(raw):
    assert render_echo("", raw, "Shop").text.startswith("[WhatsApp] Shop (app): ")
    assert render_history("", raw, "", sent_at=0).text.startswith("[WhatsApp history 1970-01-01 00:00 UTC] ")


# -- what the poller does with those comments ------------------------------------------------


def jira_comment(text: str, prop: dict, cid: str = "10") -> dict:
    """The comment as the poller reads it back (API v3, properties expanded)."""
    return {
        "id": cid,
        "author": {"accountId": "bot", "displayName": "wajira"},
        "created": "2026-01-01T10:00:00.000+0000",
        "body": {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
        },
        "properties": [{"key": "wajira", "value": prop}],
    }


def route_of(row: QueuedMessage) -> Route:
    rendered, prop = _comment_for(row, _name(row))
    return route_comment(comment_view("WA-1", jira_comment(rendered.text, prop)), bot_account_id="bot")


def test_echo_comment_is_a_human_reply_never_a_turn_nor_resent():
    assert route_of(queued(wa.echo_payload(PHONE, "on it"))) is Route.ECHO


@pytest.mark.parametrize("from_business", [False, True])
def test_history_comment_is_never_a_turn_and_never_pushed(from_business):
    doc = wa.history_payload(PHONE, [wa.history_message(PHONE, "old", from_business=from_business)])
    assert route_of(queued(doc)) is Route.IGNORE


def test_live_customer_comment_is_still_a_turn():
    assert route_of(queued(wa.message_payload([wa.text(PHONE, "hi")]))) is Route.AI_TURN


def test_the_ai_sees_echoes_as_the_business_speaking():
    customer = queued(
        wa.message_payload([wa.text(PHONE, "where is it?")], contacts=[wa.contact("Ana", PHONE)])
    )
    echo = queued(wa.echo_payload(PHONE, "shipped today"))
    views = []
    for n, row in enumerate((customer, echo)):
        rendered, prop = _comment_for(row, _name(row))
        views.append(comment_view("WA-1", jira_comment(rendered.text, prop, cid=str(10 + n))))
    messages = ai_messages(system_prompt="Be brief.", summary="", comments=views)
    assert [(m["role"], m["content"]) for m in messages[1:]] == [
        ("user", "Ana: where is it?"),
        ("assistant", f"[WhatsApp] {BUSINESS} (app): shipped today"),
    ]
