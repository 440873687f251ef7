"""Agents' commands through the poll and AI jobs, on real storage (every engine) with a fake Jira.

A comment by a person whose first line starts with `/` is a command: public or internal, it
never reaches WhatsApp, is never an AI turn, and is answered by one internal note.
"""

from __future__ import annotations

import pytest

from bot.jira_api.errors import JiraUnavailable
from bot.rules.ai_context import ai_messages
from bot.rules.classify import comment_view
from bot.rules.comment_property import KIND_NOTE, read_comment
from tests.integration.test_poll_job import START, World, settings

JSM = "sd.public.comment"


@pytest.fixture
def w(db):
    return World(db, settings())


def notes(w: World) -> list[tuple[str, str]]:
    """(ref, text) of every internal note on the ticket."""
    found = []
    for raw in w.jira.list_comments(w.key):
        mark = read_comment(raw.get("properties"))
        if mark is not None and mark.kind == KIND_NOTE:
            props = {p["key"]: p["value"] for p in raw["properties"]}
            assert props[JSM] == {"internal": True}  # agents-only, never on the portal
            found.append((mark.ref or "", comment_view(w.key, raw).text))
    return found


def advance(w: World, seconds: float) -> None:
    w.clock.advance(seconds)


def test_ai_off_holds_every_turn_until_ai_on(w):
    off = w.agent("/ai off")
    w.job.run()
    assert notes(w) == [(f"command:{off}", notes(w)[0][1])]
    assert "off" in notes(w)[0][1] and "/ai on" in notes(w)[0][1]
    assert w.rows() == []  # nothing for the customer

    advance(w, 5)
    w.customer("is anyone there?")
    for _ in range(3):  # several passes: still no turn
        w.job.run()
        advance(w, 30)
    assert w.turns_of() == []
    assert w.ai_switch.enabled(w.key) is False

    on = w.agent("/AI   On")
    advance(w, 1)
    w.job.run()
    assert [ref for ref, _ in notes(w)] == [f"command:{off}", f"command:{on}"]
    assert w.ai_switch.enabled(w.key) is True


def test_ai_on_answers_the_customer_who_is_still_waiting(w):
    w.agent("/ai off")
    advance(w, 2)
    w.customer("hello? I need the invoice")
    advance(w, 2)
    w.job.run()
    assert w.turns_of() == []
    advance(w, 60)
    on = w.agent("/ai on")
    w.job.run()
    (turn,) = w.turns_of()
    assert turn.trigger_comment_id == on  # the command's own turn answers the waiting message
    assert "waiting message" in notes(w)[-1][1]


def test_ai_on_after_an_agent_answered_queues_no_turn(w):
    w.agent("/ai off")
    advance(w, 2)
    w.customer("hello?")
    advance(w, 2)
    w.agent("Hi Ana, I am on it.")
    advance(w, 2)
    w.agent("/ai on")
    w.job.run()
    assert w.turns_of() == []


def test_an_internal_command_works_and_stays_internal(w):
    w.agent("/ai off", jsm_internal=True)
    w.job.run()
    assert w.ai_switch.enabled(w.key) is False
    assert w.rows() == []


def test_a_customer_typing_a_command_on_whatsapp_is_only_text(w):
    comment = w.customer("/ai off")  # `[WhatsApp] Ana: /ai off`, our relay
    w.job.run()
    assert w.ai_switch.enabled(w.key) is True
    assert [t.trigger_comment_id for t in w.turns_of()] == [comment]
    assert notes(w) == []


@pytest.mark.parametrize("text", ["/foo", "/ai maybe", "/template", "/template Bad-Name!", "/help"])
def test_anything_else_gets_the_list_of_commands(w, text):
    comment = w.agent(text)
    w.job.run()
    ((ref, note),) = notes(w)
    assert ref == f"command:{comment}"
    for command in ("/ai off", "/ai on", "/template", "/window"):
        assert command in note
    assert w.rows() == [] and w.turns_of() == []


def test_template_queues_the_named_template_for_the_outbox(w):
    comment = w.agent("/template order_update\nthe customer asked yesterday")
    w.job.run()
    (row,) = w.rows()
    assert (row.kind, row.body, row.dedupe_key) == ("template", "order_update", f"template:{comment}")
    assert row.payload is not None and row.payload["comment"] == comment
    assert notes(w) == []  # the outbox answers once Meta took or refused it
    assert w.outbound_nudges == 1


def test_window_says_whether_the_window_is_open(w):
    comment = w.agent("/window")
    w.job.run()
    ((ref, note),) = notes(w)
    assert ref == f"command:{comment}"
    assert "window" in note.lower()


def test_a_command_whose_note_jira_refuses_is_read_again(w):
    comment = w.agent("/ai off")
    w.jira.fail("add_comment", JiraUnavailable("Jira 503"))
    with pytest.raises(JiraUnavailable):
        w.job.run()
    assert w.handled.known([comment]) == set()
    advance(w, 30)
    w.job.run()
    assert [ref for ref, _ in notes(w)] == [f"command:{comment}"]
    assert w.handled.known([comment]) == {comment}


def test_commands_are_never_in_the_ai_context(w):
    w.customer("where is my order?")
    w.agent("/ai off")
    w.agent("/template order_update", jsm_internal=True)
    views = [comment_view(w.key, c) for c in w.jira.list_comments(w.key)]
    messages = ai_messages(system_prompt="Be kind.", summary="order", comments=views)
    contents = " ".join(m["content"] for m in messages)
    assert "/ai off" not in contents and "/template" not in contents
    assert "where is my order?" in contents


def test_an_older_command_read_again_never_overrides_a_newer_one(w):
    off = w.agent("/ai off", at=START + 1)
    w.agent("/ai on", at=START + 2)
    w.job.run()
    assert w.ai_switch.enabled(w.key) is True
    # The `/ai off` comment is read again (e.g. handled rows lost in a restore): it cannot win.
    assert w.ai_switch.set_enabled(w.key, enabled=False, comment_id=off, comment_created=START + 1) is False
    assert w.ai_switch.enabled(w.key) is True
