"""JiraPort: the same cases against `FakeJira` and against `JiraAdapter` on the Jira sandbox."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.jira_api.errors import IssueNotFound
from bot.rules.adf import text_from_doc
from bot.rules.comment_property import PROPERTY_KEY
from bot.rules.poll_window import poll_jql
from tests.contract.conftest import JiraWorld

PHONE = "+5215512345678"


def open_ticket(world: JiraWorld, conversation: str = PHONE, summary: str = "WhatsApp: Ana") -> str:
    ref = world.jira.create_issue(
        project_key=world.project_key,
        issue_type="Task",
        summary=summary,
        description="First message",
        labels=["whatsapp"],
        properties={PROPERTY_KEY: {"conversation": conversation, "service": "default"}},
    )
    return ref.key


def props(comment: dict[str, Any]) -> dict[str, Any]:
    return {p["key"]: p["value"] for p in comment.get("properties") or []}


def body_text(body: Any) -> str:
    return text_from_doc(body) if isinstance(body, dict) else str(body)


def test_the_bot_account_has_an_id(jira_world: JiraWorld) -> None:
    assert jira_world.jira.myself()["accountId"]


def test_a_created_ticket_is_found_by_its_conversation(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    since = time.time() - 300
    other = open_ticket(jira_world, conversation="+441234567890")
    ref = jira.create_issue(
        project_key=jira_world.project_key,
        issue_type="Task",
        summary="WhatsApp: Ana",
        description="First message",
        labels=["whatsapp"],
        properties={PROPERTY_KEY: {"conversation": PHONE, "service": "default"}},
    )
    found = jira.find_issue_with_property(
        project_key=jira_world.project_key, created_since_epoch=since, match={"conversation": PHONE}
    )
    assert found == ref and ref.key != other
    assert ref.id.isdigit()
    missing = jira.find_issue_with_property(
        project_key=jira_world.project_key, created_since_epoch=since, match={"conversation": "+100"}
    )
    assert missing is None


def test_a_ticket_created_before_the_window_is_not_found(jira_world: JiraWorld) -> None:
    open_ticket(jira_world)
    found = jira_world.jira.find_issue_with_property(
        project_key=jira_world.project_key,
        created_since_epoch=time.time() + 3600,
        match={"conversation": PHONE},
    )
    assert found is None


def test_the_issue_property_and_fields_read_back(jira_world: JiraWorld) -> None:
    key = open_ticket(jira_world, summary="WhatsApp: Ana Pérez")
    issue = jira_world.jira.get_issue(key, fields=["summary", "labels"], properties=[PROPERTY_KEY])
    assert issue["key"] == key
    assert issue["fields"]["summary"] == "WhatsApp: Ana Pérez"
    assert issue["fields"]["labels"] == ["whatsapp"]
    assert issue["properties"][PROPERTY_KEY] == {"conversation": PHONE, "service": "default"}


def test_a_comment_with_its_property_reads_back(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    prop = {"kind": "customer", "wamid": "wamid.contract1"}
    comment_id = jira.add_comment(key, "Hola, *my order* is late", prop=prop)
    assert jira.find_comment_with_property(key, {"wamid": "wamid.contract1"}) == comment_id
    assert jira.find_comment_with_property(key, {"wamid": "wamid.other"}) is None
    [comment] = jira.list_comments(key)
    assert str(comment["id"]) == comment_id
    assert body_text(comment["body"]) == "Hola, *my order* is late"
    assert props(comment)[PROPERTY_KEY] == prop


def test_an_internal_note_is_marked_for_agents_only(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    jira.add_comment(key, "public", prop={"kind": "ai", "turn": 1})
    note_id = jira.add_comment(key, "[wajira] note", prop={"kind": "note", "ref": "r1"}, internal=True)
    assert jira.find_comment_with_property(key, {"kind": "note", "ref": "r1"}) == note_id
    public, note = jira.list_comments(key)  # oldest first
    assert props(note)["sd.public.comment"] == {"internal": True}
    assert "sd.public.comment" not in props(public)


def test_the_newest_matching_comment_is_found(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    jira.add_comment(key, "first", prop={"kind": "note", "ref": "same"}, internal=True)
    second = jira.add_comment(key, "second", prop={"kind": "note", "ref": "same"}, internal=True)
    assert jira.find_comment_with_property(key, {"ref": "same"}) == second


def test_a_comment_on_a_missing_issue_is_issue_not_found(jira_world: JiraWorld) -> None:
    with pytest.raises(IssueNotFound):
        jira_world.jira.add_comment("WA-999", "hello", prop={"kind": "customer", "wamid": "w"})
    with pytest.raises(IssueNotFound):
        jira_world.jira.list_comments("WA-999")


def test_the_poll_search_finds_our_ticket_with_its_property(jira_world: JiraWorld) -> None:
    key = open_ticket(jira_world)
    since_ms = int((time.time() - 3600) * 1000)
    jql = poll_jql(project_keys=[jira_world.project_key], labels=["whatsapp"], since_ms=since_ms)
    found = list(jira_world.jira.search_issues(jql, fields=["summary", "updated"], properties=[PROPERTY_KEY]))
    assert [issue["key"] for issue in found] == [key]
    assert found[0]["properties"][PROPERTY_KEY]["conversation"] == PHONE
    assert found[0]["fields"]["summary"] == "WhatsApp: Ana"


def test_an_attachment_reads_back(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    data = b"\xff\xd8\xff\xe0" + bytes(range(256))
    attachment_id = jira.add_attachment(key, "Niño 😀.jpg", data, "image/jpeg")
    listed = [(a["id"], a["filename"], a["size"]) for a in jira.list_attachments(key)]
    assert listed == [(attachment_id, "Niño 😀.jpg", len(data))]
    with pytest.raises(IssueNotFound):
        jira.add_attachment("WA-999", "x.jpg", data, "image/jpeg")


def test_a_transition_moves_the_status(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    transitions = {t["name"]: t for t in jira.transitions(key)}
    assert "Done" in transitions
    jira.transition(key, str(transitions["Done"]["id"]))
    status = jira.get_issue(key, fields=["status"])["fields"]["status"]
    assert status["statusCategory"]["key"] == "done"
    assert "Reopen" in {t["name"] for t in jira.transitions(key)}
