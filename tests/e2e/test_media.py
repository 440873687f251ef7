"""Customer media → Jira attachments through the real daemon, sandbox Graph and sandbox Jira."""

from __future__ import annotations

import os

import pytest

from bot.rules.adf import text_from_doc
from sandbox import whatsapp_payloads as wa
from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, wait_until

pytestmark = pytest.mark.e2e

NAME, PHONE = "Ana García", "5215512345678"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + os.urandom(50_000)
PDF = b"%PDF-1.7\n" + os.urandom(20_000)


def texts(jira, key):
    return [
        text_from_doc(c["body"]) if isinstance(c["body"], dict) else c["body"] for c in jira.comments(key)
    ]


def send(daemon, *messages):
    payload = wa.message_payload(list(messages), contacts=[wa.contact(NAME, PHONE)])
    assert MetaSender(daemon.webhook_url, APP_SECRET).deliver(payload) == 200


def the_issue(jira):
    [issue] = wait_until(lambda: jira.issues(), what="a ticket")
    return issue["key"]


def test_image_and_document_bytes_round_trip_into_jira_attachments(jira, graph_sandbox, make_daemon):
    daemon = make_daemon(graph=graph_sandbox).start()
    graph_sandbox.add_media("1003383421387256", JPEG, "image/jpeg")
    graph_sandbox.add_media("1003383421387260", PDF, "application/pdf")
    send(
        daemon,
        wa.image(PHONE, caption="Taj Mahal", media_id="1003383421387256", timestamp=1_700_000_000),
        wa.document(PHONE, filename="contrato 7.pdf", media_id="1003383421387260", timestamp=1_700_000_001),
    )
    key = the_issue(jira)

    attachments = wait_until(
        lambda: len(jira.attachments(key)) == 2 and jira.attachments(key), timeout=20, what="two attachments"
    )
    by_name = {a["filename"]: a for a in attachments}
    assert by_name["1003383421387256.jpg"]["bytes"] == JPEG
    assert by_name["1003383421387256.jpg"]["mimeType"] == "image/jpeg"
    assert by_name["contrato 7.pdf"]["bytes"] == PDF
    assert texts(jira, key) == [
        f"[WhatsApp] {NAME}: [image] Taj Mahal (attached: 1003383421387256.jpg)",
        f"[WhatsApp] {NAME}: [document] contrato 7.pdf (attached: contrato 7.pdf)",
    ]


def test_too_large_media_is_not_downloaded_and_a_note_says_so(jira, graph_sandbox, make_daemon):
    daemon = make_daemon(graph=graph_sandbox, extra="[media]\nmax_bytes = 10000").start()
    graph_sandbox.add_media("777", JPEG, "video/mp4")
    send(daemon, wa.video(PHONE, caption="long video", media_id="777"))
    key = the_issue(jira)

    wait_until(lambda: len(jira.comments(key)) == 2, timeout=20, what="the note")
    note = jira.comments(key)[1]
    assert texts(jira, key)[0] == f"[WhatsApp] {NAME}: [video] long video (attached: 777.mp4)"
    assert texts(jira, key)[1].startswith("[wajira] ") and "777.mp4 was not attached" in texts(jira, key)[1]
    assert note["properties"]["sd.public.comment"] == {"internal": True}
    assert note["properties"]["wajira"]["kind"] == "note"
    assert jira.attachments(key) == []
    assert graph_sandbox.calls["GET /whatsapp_business/attachments"] == 0


def test_an_expired_media_url_is_fetched_again(jira, graph_sandbox, make_daemon):
    daemon = make_daemon(graph=graph_sandbox).start()
    graph_sandbox.add_media("888", JPEG, "image/jpeg")
    # Meta's CDN answers a lapsed URL with 404: the first download meets one.
    graph_sandbox.faults.fail_next(404, path_regex=r"^/whatsapp_business/attachments")
    send(daemon, wa.image(PHONE, media_id="888"))
    key = the_issue(jira)

    [attachment] = wait_until(lambda: jira.attachments(key), timeout=20, what="the attachment")
    assert (attachment["filename"], attachment["bytes"]) == ("888.jpg", JPEG)
    assert graph_sandbox.calls["GET /{version}/{media_id}"] == 2
    assert graph_sandbox.calls["GET /whatsapp_business/attachments"] == 2
    assert len(jira.comments(key)) == 1  # no note
