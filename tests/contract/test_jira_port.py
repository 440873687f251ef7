"""JiraPort: the same cases against `FakeJira` and against `JiraAdapter` on the Jira sandbox."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
import requests

from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.errors import IssueNotFound, JiraRejected
from bot.rules.adf import text_from_doc
from bot.rules.comment_property import PROPERTY_KEY
from bot.rules.poll_window import poll_jql
from tests.contract.conftest import JiraWorld
from tests.fakes import FakeJira

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


def test_comments_of_several_issues_read_back_by_id_with_their_properties(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    first, second = open_ticket(jira_world), open_ticket(jira_world, conversation="+441234567890")
    a = jira.add_comment(first, "one", prop={"kind": "customer", "wamid": "wamid.a"})
    b = jira.add_comment(second, "two", prop={"kind": "ai", "turn": 7})
    jira.add_comment(second, "not asked for", prop={"kind": "ai", "turn": 8})
    found = jira.comments_by_ids([a, b, "999999999"])  # a missing id is left out, not an error
    assert found is not None
    assert sorted(
        (str(c["id"]), props(c)[PROPERTY_KEY].get("wamid") or props(c)[PROPERTY_KEY]["turn"]) for c in found
    ) == sorted([(a, "wamid.a"), (b, 7)])
    assert {body_text(c["body"]) for c in found} == {"one", "two"}


def comment_list_requests(world: JiraWorld) -> int:
    """How many times `comments_by_ids` reached Jira (the fake's record, or the sandbox's count of
    `POST /comment/list`)."""
    jira = world.jira
    if isinstance(jira, FakeJira):
        return jira.calls.count("comments_by_ids")
    assert isinstance(jira, JiraAdapter)
    counted = requests.get(f"{jira._base}/_sandbox/calls", timeout=5).json()
    return sum(
        n for call, n in counted.items() if call.startswith("POST ") and call.endswith("/comment/list")
    )


def test_no_comment_ids_ask_jira_nothing(jira_world: JiraWorld) -> None:
    # Jira answers 400 to an empty `ids`: no id to ask for is an empty answer, not a request.
    jira = jira_world.jira
    key = open_ticket(jira_world)
    asked = jira.add_comment(key, "one", prop={"kind": "customer", "wamid": "wamid.a"})
    assert jira.comments_by_ids([asked]) and comment_list_requests(jira_world) == 1  # counted when asked
    assert jira.comments_by_ids([]) == []
    assert jira.comments_by_ids(["not-a-comment-id"]) == []
    assert comment_list_requests(jira_world) == 1


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


# -- files agents attach (the fake's steering, or the sandbox's control route: the port has no word
# for an agent's action) -------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (4).to_bytes(4, "big") + (3).to_bytes(4, "big") + b"\x08\x06"
PDF = b"%PDF-1.7\n" + bytes(range(256)) + b"\n%%EOF\n"


def agent_posts_files(world: JiraWorld, key: str, text: str, files: list[tuple[str, str, bytes]]) -> None:
    """An agent attaches `files` in Jira's UI and posts one public comment showing them."""
    jira = world.jira
    if isinstance(jira, FakeJira):
        jira.add_agent_comment_with_files(key, text, files)
        return
    assert isinstance(jira, JiraAdapter)
    encoded = [{"filename": n, "mime_type": m, "data_b64": base64.b64encode(d).decode()} for n, m, d in files]
    answer = requests.post(
        f"{jira._base}/_sandbox/agent-comment-with-files",
        json={"issue_key": key, "text": text, "files": encoded, "author": "Bruno Díaz"},
        timeout=5,
    )
    answer.raise_for_status()


def media_node_ids(node: dict[str, Any]) -> list[str]:
    found = [node["attrs"]["id"]] if node.get("type") == "media" else []
    for child in node.get("content") or []:
        found += media_node_ids(child)
    return found


def test_an_agents_files_resolve_from_media_nodes_to_attachments(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    agent_posts_files(
        jira_world, key, "Invoice and photo", [("a.png", "image/png", PNG), ("b.pdf", "application/pdf", PDF)]
    )
    [comment] = jira.list_comments(key)
    body = comment["body"]
    assert body["content"][0]["content"] == [{"type": "text", "text": "Invoice and photo"}]
    assert body["content"][1]["type"] == "mediaGroup"
    by_media_id = {jira.attachment_media_id(a["id"]): a for a in jira.list_attachments(key)}
    named = [by_media_id[media_id] for media_id in media_node_ids(body)]
    assert [a["filename"] for a in named] == ["a.png", "b.pdf"]
    assert [jira.attachment_content(a["id"], max_bytes=len(PDF)) for a in named] == [PNG, PDF]


def test_one_file_is_shown_as_a_media_single(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    agent_posts_files(jira_world, key, "", [("b.pdf", "application/pdf", PDF)])
    [comment] = jira.list_comments(key)
    [single] = comment["body"]["content"]
    [attachment] = jira.list_attachments(key)
    assert single["type"] == "mediaSingle"
    assert media_node_ids(single) == [jira.attachment_media_id(attachment["id"])]
    assert single["content"][0]["attrs"]["type"] == "file" and single["content"][0]["attrs"]["alt"] == "b.pdf"


def test_the_bots_own_attachment_has_a_media_id_and_its_bytes(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    attachment_id = jira.add_attachment(key, "photo.png", PNG, "image/png")
    media_id = jira.attachment_media_id(attachment_id)
    assert media_id is not None and re.fullmatch(r"[0-9a-f-]{36}", media_id)
    assert jira.attachment_media_id(attachment_id) == media_id  # a file's id never changes
    assert jira.attachment_content(attachment_id, max_bytes=len(PNG)) == PNG


def test_a_file_over_the_cap_is_rejected(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    attachment_id = jira.add_attachment(key, "b.pdf", PDF, "application/pdf")
    with pytest.raises(JiraRejected, match=f"attachment {attachment_id} is larger than {len(PDF) - 1} bytes"):
        jira.attachment_content(attachment_id, max_bytes=len(PDF) - 1)


def test_a_missing_attachment_is_rejected_as_404(jira_world: JiraWorld) -> None:
    for call in (
        lambda: jira_world.jira.attachment_media_id("77777"),
        lambda: jira_world.jira.attachment_content("77777", max_bytes=100),
    ):
        with pytest.raises(JiraRejected) as err:
            call()
        assert err.value.status == 404 and not isinstance(err.value, IssueNotFound)


# -- CSAT feedback on Jira Service Management requests (making a project a service desk is an
# admin's act in Jira: the fake's set, or the sandbox's control route) --------------------------


def make_service_desk(world: JiraWorld) -> None:
    jira = world.jira
    if isinstance(jira, FakeJira):
        jira.service_desk_projects.add(world.project_key)
        return
    assert isinstance(jira, JiraAdapter)
    answer = requests.post(
        f"{jira._base}/_sandbox/service-desk", json={"project": world.project_key}, timeout=5
    )
    answer.raise_for_status()


def stored_rating(world: JiraWorld, key: str) -> int | None:
    jira = world.jira
    if isinstance(jira, FakeJira):
        return jira.feedback.get(key)
    assert isinstance(jira, JiraAdapter)
    state = requests.get(f"{jira._base}/_sandbox/state", timeout=5).json()
    [issue] = [i for i in state["issues"] if i["key"] == key]
    return issue["feedback"]["rating"] if issue["feedback"] else None


def test_a_rating_on_a_service_desk_request_is_taken_and_replaced(jira_world: JiraWorld) -> None:
    make_service_desk(jira_world)
    key = open_ticket(jira_world)
    assert jira_world.jira.send_csat_feedback(key, 4) is True
    assert stored_rating(jira_world, key) == 4
    assert jira_world.jira.send_csat_feedback(key, 2) is True
    assert stored_rating(jira_world, key) == 2


def test_a_rating_outside_a_service_desk_is_not_taken(jira_world: JiraWorld) -> None:
    key = open_ticket(jira_world)
    assert jira_world.jira.send_csat_feedback(key, 5) is False
    assert stored_rating(jira_world, key) is None
    assert jira_world.jira.send_csat_feedback(f"{jira_world.project_key}-404", 5) is False


@pytest.mark.parametrize("rating", [0, 6])
def test_a_rating_out_of_range_is_rejected(jira_world: JiraWorld, rating: int) -> None:
    make_service_desk(jira_world)
    key = open_ticket(jira_world)
    with pytest.raises(JiraRejected) as err:
        jira_world.jira.send_csat_feedback(key, rating)
    assert err.value.status == 400
    assert stored_rating(jira_world, key) is None


# -- the AI's one search for resolved tickets (`text ~`), and its hand-over label -----------------


def resolved_ticket(world: JiraWorld, summary: str, description: str = "", *, done: bool = True) -> str:
    jira = world.jira
    ref = jira.create_issue(
        project_key=world.project_key,
        issue_type="Task",
        summary=summary,
        description=description,
        labels=["whatsapp"],
        properties={},
    )
    if done:
        jira.transition(ref.key, next(str(t["id"]) for t in jira.transitions(ref.key) if t["name"] == "Done"))
    return ref.key


def resolved_jql(world: JiraWorld, words: str, exclude: str) -> str:
    return (
        f'project = "{world.project_key}" AND statusCategory = Done AND text ~ "{words}" '
        f'AND key != "{exclude}" ORDER BY updated DESC'
    )


def test_text_search_finds_resolved_tickets_by_any_word_newest_first(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    refund = resolved_ticket(jira_world, "Refund for order 1042", "The customer wants the money back")
    parcels = resolved_ticket(jira_world, "Late delivery", "Two parcels went missing")
    in_progress = resolved_ticket(jira_world, "Refunds pending", done=False)
    unrelated = resolved_ticket(jira_world, "Password reset")
    current = resolved_ticket(jira_world, "My refund for parcel 1042")
    found = list(
        jira.search_issues(
            resolved_jql(jira_world, "refund OR parcel OR 1042", current),
            fields=["summary", "description", "comment", "updated"],
            max_results=20,
        )
    )
    assert [i["key"] for i in found] == [parcels, refund]  # resolved later first
    assert {in_progress, unrelated, current}.isdisjoint(i["key"] for i in found)
    assert found[0]["fields"]["summary"] == "Late delivery"


def test_text_search_wants_every_word_unless_told_or(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    both = resolved_ticket(jira_world, "Refund for a lost parcel")
    one = resolved_ticket(jira_world, "Refund for a broken box")
    other = resolved_ticket(jira_world, "Unrelated")

    def keys(words: str) -> set[str]:
        jql = resolved_jql(jira_world, words, other)
        return {i["key"] for i in jira.search_issues(jql, fields=["summary"], max_results=10)}

    assert keys("refunds parcels") == {both}  # plurals fold, and the words join with AND
    assert keys("parcel OR boxes") == {both, one}
    assert keys("the of a") == set()  # nothing but stop words: nothing found


def test_text_search_sees_internal_comments(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = resolved_ticket(jira_world, "Damaged box")
    other = resolved_ticket(jira_world, "Unrelated")
    jira.add_comment(key, "approve the reimbursement", prop={"kind": "note", "ref": "n1"}, internal=True)
    found = list(
        jira.search_issues(
            resolved_jql(jira_world, "reimbursement", other), fields=["comment"], max_results=5
        )
    )
    assert [i["key"] for i in found] == [key]


def test_max_results_gives_at_most_that_many(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    for n in range(3):
        resolved_ticket(jira_world, f"Refund {n}")
    other = resolved_ticket(jira_world, "Unrelated")
    jql = resolved_jql(jira_world, "refund", other)
    assert len(list(jira.search_issues(jql, fields=["summary"], max_results=2))) == 2
    assert len(list(jira.search_issues(jql, fields=["summary"]))) == 3
    with pytest.raises(ValueError):
        jira.search_issues(jql, fields=["summary"], max_results=0)


def test_a_text_query_starting_with_a_wildcard_is_rejected(jira_world: JiraWorld) -> None:
    other = resolved_ticket(jira_world, "Unrelated")
    with pytest.raises(JiraRejected) as err:
        list(jira_world.jira.search_issues(resolved_jql(jira_world, "*fund", other), fields=["summary"]))
    assert err.value.status == 400 and "is not allowed to start with '*'" in str(err.value)


def test_add_labels_keeps_the_labels_the_issue_has(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    jira.add_labels(key, ["wajira-handover"])
    jira.add_labels(key, ["wajira-handover", "vip"])
    assert jira.get_issue(key, fields=["labels"])["fields"]["labels"] == [
        "whatsapp",
        "wajira-handover",
        "vip",
    ]


def test_add_labels_refuses_spaces_and_missing_issues(jira_world: JiraWorld) -> None:
    jira = jira_world.jira
    key = open_ticket(jira_world)
    with pytest.raises(ValueError):
        jira.add_labels(key, ["hand over"])
    assert jira.get_issue(key, fields=["labels"])["fields"]["labels"] == ["whatsapp"]
    with pytest.raises(IssueNotFound):
        jira.add_labels(f"{jira_world.project_key}-999", ["wajira-handover"])
