"""Files agents show in Jira comments, `/template`, delivery-failure notes and the hot pass:
poll job → outbound queue → outbox, on real storage (every engine) with fake Jira and Graph."""

from __future__ import annotations

import pytest

from bot.jira_api.errors import JiraRejected, JiraUnavailable
from bot.rules.outgoing_files import MB
from bot.whatsapp.graph import GraphRejected
from jobs.poll import PollJob
from storage.ai_switch import AiSwitch
from storage.customer_window import CustomerWindow
from storage.hot_tickets import HotTickets
from storage.leases import Leases
from storage.polling import HandledComments, PollState
from tests.integration.test_outbox_job import World, settings

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.7\n" + b"invoice 2026-0042\n" * 50


class Desk(World):
    """The outbox world plus the poll job that turns agents' comments into outbound rows."""

    def __init__(self, db, s) -> None:
        super().__init__(db, s)
        self.poll = PollJob(
            settings=s,
            jira=self.jira,
            state=PollState(db, clock=self.clock),
            handled=HandledComments(db, clock=self.clock),
            leases=Leases(db, clock=self.clock),
            switch=AiSwitch(db, clock=self.clock),
            window=CustomerWindow(db),
            hot=HotTickets(db),
            owner="test:1",
            clock=self.clock,
        )

    def pass_and_send(self) -> None:
        self.poll.run()
        self.job.run()

    def note_texts(self) -> list[str]:
        return [n["text"] for n in self.notes()]


@pytest.fixture
def desk(db):
    yield lambda **kw: Desk(db, settings(**kw))


def test_a_comment_with_a_png_and_a_pdf_sends_text_image_and_document_with_the_same_bytes(desk):
    d = desk()
    d.customer_wrote()
    comment = d.jira.add_agent_comment_with_files(
        d.key,
        "Here are the photo and the invoice.",
        files=[("photo.png", "image/png", PNG), ("invoice.pdf", "application/pdf", PDF)],
    )
    d.pass_and_send()
    assert [r.kind for r in d.outbound.for_issue(d.key)] == ["agent", "file", "file"]
    assert [r.state for r in d.outbound.for_issue(d.key)] == ["sent"] * 3
    assert d.graph.bodies()[-1].endswith("Here are the photo and the invoice.")
    image, document = d.graph.media_sent
    assert (image["media_type"], image["data"], image["filename"]) == ("image", PNG, None)
    assert (document["media_type"], document["data"], document["filename"]) == (
        "document",
        PDF,
        "invoice.pdf",
    )
    file_rows = [r for r in d.outbound.for_issue(d.key) if r.kind == "file"]
    assert {r.dedupe_key for r in file_rows} == {
        f"file:{comment}:{a['id']}" for a in d.jira.list_attachments(d.key)
    }
    # Read again by an overlapping pass, restarted: nothing twice.
    d.clock.advance(31)
    d.pass_and_send()
    assert len(d.graph.media_sent) == 2


def test_an_attachment_without_a_comment_and_an_internal_comment_with_a_file_send_nothing(desk):
    d = desk()
    d.customer_wrote()
    d.jira.add_agent_attachment(d.key, "secret.pdf", "application/pdf", PDF)
    d.jira.add_agent_comment_with_files(
        d.key, "internal: the contract", files=[("contract.pdf", "application/pdf", PDF)], internal=True
    )
    for _ in range(3):
        d.pass_and_send()
        d.clock.advance(31)
    assert d.graph.media_sent == [] and d.graph.uploads == []
    assert d.outbound.for_issue(d.key) == []


def test_a_file_whatsapp_refuses_gets_a_note_and_the_rest_still_goes(desk):
    d = desk()
    d.customer_wrote()
    comment = d.jira.add_agent_comment_with_files(
        d.key,
        "",
        files=[("tool.zip", "application/zip", b"PK\x03\x04" + b"0" * 64), ("photo.png", "image/png", PNG)],
    )
    d.pass_and_send()
    assert [m["media_type"] for m in d.graph.media_sent] == ["image"]
    (note,) = d.note_texts()
    assert "tool.zip" in note and comment in note and "photo.png" not in note


def test_a_large_png_goes_as_a_document(desk):
    d = desk()
    d.customer_wrote()
    big = PNG + b"\0" * (6 * MB)
    d.jira.add_agent_comment_with_files(d.key, "", files=[("scan.png", "image/png", big)])
    d.pass_and_send()
    (sent,) = d.graph.media_sent
    assert (sent["media_type"], sent["filename"], len(sent["data"])) == ("document", "scan.png", len(big))


def test_a_file_jira_cannot_hand_over_now_is_retried(desk):
    d = desk()
    d.customer_wrote()
    d.jira.add_agent_comment_with_files(d.key, "", files=[("photo.png", "image/png", PNG)])
    d.poll.run()
    d.jira.fail("attachment_content", JiraUnavailable("Jira 503"))
    d.job.run()
    (row,) = d.outbound.for_issue(d.key)
    assert (row.state, row.attempts) == ("pending", 1)
    d.clock.advance(60)
    d.job.run()
    assert d.outbound.get(row.id).state == "sent"
    assert [m["data"] for m in d.graph.media_sent] == [PNG]


def test_template_command_sends_the_template_whatever_the_window_and_notes_it(desk):
    d = desk(template=True)
    d.customer_wrote(ago=3 * 24 * 3600)  # the window closed days ago
    comment = d.jira.human_comment(d.key, "/template order_update")
    d.pass_and_send()
    (sent,) = d.graph.templates
    assert sent["name"] == "order_update"
    (row,) = d.outbound.for_issue(d.key)
    assert (row.state, row.via_template) == ("sent", True)
    (note,) = d.notes()
    assert "order_update" in note["text"] and "sent" in note["text"]
    assert note["prop"]["ref"] == f"command:{comment}"


def test_a_template_meta_refuses_is_answered_with_its_error(desk):
    d = desk(template=True)
    d.customer_wrote()
    comment = d.jira.human_comment(d.key, "/template no_such_template")
    d.graph.fail(
        "send_template",
        GraphRejected(
            "(#132001) Template name does not exist",
            code=132001,
            title="Template name does not exist in the translation",
        ),
    )
    d.pass_and_send()
    (row,) = d.outbound.for_issue(d.key)
    assert row.state == "failed"
    (note,) = d.notes()
    assert note["prop"]["ref"] == f"command:{comment}"
    assert "132001" in note["text"] and "no_such_template" in note["text"]


def test_an_undeliverable_reply_names_the_comment_and_says_why(desk):
    d = desk()
    d.customer_wrote()
    comment = d.jira.human_comment(d.key, "Your refund is on its way.")
    d.graph.fail(
        "send_text",
        GraphRejected("(#131026) Message undeliverable", code=131026, title="Message undeliverable"),
    )
    d.pass_and_send()
    (note,) = d.note_texts()
    assert f"Comment {comment} by Bruno Díaz" in note
    assert "131026" in note and "Message undeliverable" in note
    assert "could not deliver" in note.lower() or "undeliverable" in note.lower()


# -- the hot pass --------------------------------------------------------------------------------


def test_no_hot_ticket_means_no_search(desk):
    d = desk()
    assert d.poll.run_hot() is None
    assert d.jira.searches == []


def test_a_hot_ticket_is_searched_alone_and_reconciled(desk):
    d = desk()
    d.customer_wrote(ago=30)  # Meta's timestamp 30 s ago: hot for 15 minutes
    d.poll.note_write(d.key, d.jira.issues[d.key]["id"])
    from storage.models import InboundMessageRow

    InboundMessageRow.update(issue_key=d.key).execute(d.db)  # the inbox delivered it
    d.jira.human_comment(d.key, "On it!")
    result = d.poll.run_hot()
    assert result is not None and result.pushed == 1
    (search,) = d.jira.searches
    assert search["jql"].startswith(f"issue in ({d.key}) AND updated >= ")
    assert search["reconcile_ids"] == [int(d.jira.issues[d.key]["id"])]
    # Quiet for longer than hot_minutes: no more calls.
    d.clock.advance(16 * 60)
    assert d.poll.run_hot() is None
    assert len(d.jira.searches) == 1


def test_attachments_jira_refuses_to_list_do_not_hold_the_pass(desk):
    d = desk()
    d.customer_wrote()
    d.jira.add_agent_comment_with_files(d.key, "Here you go.", files=[("photo.png", "image/png", PNG)])
    d.jira.fail("list_attachments", JiraRejected("Jira 403: no permission", status=403))
    d.pass_and_send()
    assert d.graph.bodies()[-1].endswith("Here you go.")  # the text still reaches the customer
    assert d.graph.media_sent == []
    (note,) = d.note_texts()
    assert "photo.png" in note and "refused" in note


def test_a_command_note_jira_will_never_take_does_not_hold_every_other_ticket(desk):
    d = desk()
    d.customer_wrote()
    command = d.jira.human_comment(d.key, "/window")
    reply = d.jira.human_comment(d.key, "On it.")
    d.jira.fail("add_comment", JiraRejected("Jira 403: you may not comment", status=403))
    d.pass_and_send()
    assert d.poll.handled.known([command, reply]) == {command, reply}
    assert d.graph.bodies()[-1].endswith("On it.")
