"""The media job on real storage (every engine) with fakes for Graph and Jira; the two adapter
calls it adds, against the sandboxes."""

from __future__ import annotations

import base64
import hashlib
import threading

import pytest

from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.errors import IssueNotFound, JiraRejected, JiraUnavailable
from bot.whatsapp.graph import GraphAdapter, GraphRejected, GraphUnavailable
from jobs.media import MediaEnqueuer, MediaJob, MediaPolicy
from jobs.notes import Notes
from sandbox import whatsapp_payloads as wa
from sandbox.graph import GraphSandbox
from sandbox.jira import JiraSandbox
from storage.db import open_database
from storage.inbound import QueuedMessage
from storage.media import (
    DONE,
    FAILED,
    PENDING,
    TOO_LARGE,
    WORKING,
    MediaTasks,
)
from storage.models import MediaTaskRow
from storage.schema import SCHEMA_VERSION, migrate
from tests.fakes import FakeClock, FakeGraph, FakeJira

PHONE = "5215512345678"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40


@pytest.fixture
def world(db):
    class World:
        pass

    w = World()
    w.db, w.clock = db, FakeClock()
    w.jira, w.graph = FakeJira(clock=w.clock), FakeGraph()
    w.tasks = MediaTasks(db, clock=w.clock)
    w.nudges = []
    w.enqueue = MediaEnqueuer(w.tasks, on_enqueued=lambda: w.nudges.append(1))
    w.issue = w.jira.open_ticket()

    def job(**policy):
        return MediaJob(
            tasks=w.tasks,
            graph=w.graph,
            jira=w.jira,
            notes=Notes(w.jira),
            owner="test:1",
            policy=MediaPolicy(
                **{"max_attempts": 3, "retry_base_seconds": 10, "retry_max_seconds": 60, **policy}
            ),
            clock=w.clock,
        )

    def deliver(msg):
        row = QueuedMessage(
            id=1,
            wamid=msg["id"],
            conversation_key="+" + PHONE,
            wa_id=PHONE,
            user_id=None,
            phone_number_id="1",
            display_phone_number=None,
            profile_name="Ana",
            timestamp=int(msg["timestamp"]),
            kind=msg["type"],
            raw=msg,
            attempts=0,
            started=1,
            next_attempt_at=0.0,
            last_error=None,
        )
        w.enqueue(row, w.issue, "10001")
        return row

    w.job, w.deliver = job, deliver
    yield w


def attached(w):
    return w.jira.attachments.get(w.issue, [])


def state(w, wamid):
    return w.tasks.for_wamid(wamid).state


def test_an_image_becomes_an_attachment_named_as_the_comment_says(world):
    w = world
    w.graph.add_media("1003383421387256", JPEG, "image/jpeg")
    msg = wa.image(PHONE, caption="Taj Mahal", media_id="1003383421387256")
    w.deliver(msg)
    w.deliver(msg)  # a redelivered message adds nothing
    w.deliver(wa.text(PHONE, "no media here"))
    assert len(w.nudges) == 1

    summary = w.job().run()

    assert summary.done == 1
    [item] = attached(w)
    assert (item["filename"], item["data"], item["mimeType"]) == ("1003383421387256.jpg", JPEG, "image/jpeg")
    task = w.tasks.for_wamid(msg["id"])
    assert (task.state, task.attachment_id, task.size) == (DONE, item["id"], len(JPEG))
    assert w.jira.notes(w.issue) == []
    assert w.job().run().done == 0  # nothing twice


def test_a_document_keeps_its_filename_and_a_voice_note_gets_ogg(world):
    w = world
    w.graph.add_media("d1", b"%PDF-1.7 ...", "application/pdf")
    w.graph.add_media("v1", b"OggS voice", "audio/ogg; codecs=opus")
    w.deliver(wa.document(PHONE, media_id="d1", filename="../Factura 7.pdf"))
    w.deliver(wa.audio(PHONE, media_id="v1", voice=True))
    w.job().run()
    assert [(a["filename"], a["data"]) for a in attached(w)] == [
        (".._Factura 7.pdf", b"%PDF-1.7 ..."),
        ("v1.ogg", b"OggS voice"),
    ]


def test_too_large_by_graphs_file_size_is_not_downloaded_and_noted(world):
    w = world
    w.graph.add_media("big", b"x" * 2048, "video/mp4")
    msg = wa.video(PHONE, media_id="big")
    w.deliver(msg)
    assert w.job(max_bytes=1024).run().too_large == 1
    assert "download" not in w.graph.calls and attached(w) == []
    assert state(w, msg["id"]) == TOO_LARGE
    [note] = w.jira.notes(w.issue)
    assert "big.mp4" in note["text"] and "not attached" in note["text"] and "max_bytes" in note["text"]


def test_too_large_found_while_downloading(world):
    w = world
    w.graph.add_media("big", b"x" * 2048, "video/mp4", file_size=None)  # Graph did not say
    msg = wa.video(PHONE, media_id="big")
    w.deliver(msg)
    assert w.job(max_bytes=1024).run().too_large == 1
    assert state(w, msg["id"]) == TOO_LARGE and len(w.jira.notes(w.issue)) == 1


def test_an_expired_url_is_fetched_again_once(world):
    w = world
    w.graph.add_media("m1", JPEG, "image/jpeg")
    w.graph.fail("download", GraphRejected("Graph HTTP 404: URL signature expired", status=404))
    w.deliver(wa.image(PHONE, media_id="m1"))
    assert w.job().run().done == 1
    assert w.graph.calls == ["media_info", "download", "media_info", "download"]
    assert attached(w)[0]["data"] == JPEG


def test_a_failing_download_is_retried_with_back_off_then_noted(world):
    w = world
    w.graph.add_media("m1", JPEG, "image/jpeg")
    w.graph.fail("download", *[GraphUnavailable("cannot reach Graph")] * 3)
    msg = wa.image(PHONE, media_id="m1")
    w.deliver(msg)
    assert w.job().run().retried == 1
    assert w.job().run().retried == 0  # not due yet
    w.clock.advance(20)
    assert w.job().run().retried == 1
    assert w.tasks.for_wamid(msg["id"]).attempts == 2
    w.clock.advance(60)
    assert w.job().run().failed == 1
    task = w.tasks.for_wamid(msg["id"])
    assert (task.state, task.attempts) == (FAILED, 2)
    [note] = w.jira.notes(w.issue)
    assert "m1.jpg could not be attached" in note["text"] and "send it again" in note["text"]
    assert note["extra_props"] == {"sd.public.comment": {"internal": True}}


def test_a_retry_that_succeeds_attaches_once(world):
    w = world
    w.graph.add_media("m1", JPEG, "image/jpeg")
    w.graph.fail("media_info", GraphUnavailable("Graph 503"))
    w.deliver(wa.image(PHONE, media_id="m1"))
    w.job().run()
    w.clock.advance(20)
    assert w.job().run().done == 1
    assert len(attached(w)) == 1 and w.jira.notes(w.issue) == []


def test_sha256_mismatch_is_retried_then_failed(world):
    w = world
    w.graph.add_media("m1", JPEG, "image/jpeg", sha256=hashlib.sha256(b"something else").hexdigest())
    msg = wa.image(PHONE, media_id="m1")
    w.deliver(msg)
    for _ in range(3):
        w.job().run()
        w.clock.advance(100)
    task = w.tasks.for_wamid(msg["id"])
    assert task.state == FAILED and "sha256" in task.last_error
    assert attached(w) == [] and len(w.jira.notes(w.issue)) == 1


def test_webhook_hash_in_base64_is_used_when_graph_gives_none(world):
    w = world
    good = wa.image(PHONE, media_id="ok")
    good["image"]["sha256"] = base64.b64encode(hashlib.sha256(JPEG).digest()).decode()
    bad = wa.image(PHONE, media_id="bad")  # the builder's webhook hash is random
    w.graph.add_media("ok", JPEG, "image/jpeg", sha256="")
    w.graph.add_media("bad", JPEG, "image/jpeg", sha256="")
    w.deliver(good)
    w.deliver(bad)
    w.job(max_attempts=1).run()
    assert (state(w, good["id"]), state(w, bad["id"])) == (DONE, FAILED)


def test_graphs_hex_hash_wins_over_a_differing_webhook_hash(world):
    w = world
    w.graph.add_media("m1", JPEG, "image/jpeg")  # Graph: the right hex digest
    msg = wa.image(PHONE, media_id="m1")  # webhook: a random base64 digest
    w.deliver(msg)
    assert w.job().run().done == 1


def test_unknown_media_is_noted_at_once(world):
    w = world
    msg = wa.sticker(PHONE, media_id="gone")
    w.deliver(msg)
    assert w.job().run().failed == 1
    assert state(w, msg["id"]) == FAILED and len(w.jira.notes(w.issue)) == 1


def test_jira_down_does_not_count_and_a_lost_upload_is_found_not_repeated(world):
    w = world
    w.graph.add_media("m1", JPEG, "image/jpeg")
    msg = wa.image(PHONE, media_id="m1")
    w.deliver(msg)
    w.jira.fail("add_attachment", JiraUnavailable("Jira 503"))
    w.job().run()
    task = w.tasks.for_wamid(msg["id"])
    assert (task.state, task.attempts, task.uploads) == (PENDING, 0, 1)
    # The next upload reaches Jira, but its answer is lost on the way back.
    w.clock.advance(20)
    w.jira.lose_response["add_attachment"] = JiraUnavailable("read timed out")
    w.job().run()
    assert len(attached(w)) == 1
    w.clock.advance(60)
    assert w.job().run().done == 1
    assert len(attached(w)) == 1
    assert w.tasks.for_wamid(msg["id"]).attachment_id == attached(w)[0]["id"]


def test_jira_refusing_the_file_is_noted_and_a_deleted_issue_just_fails(world):
    w = world
    w.graph.add_media("m1", JPEG, "image/jpeg")
    w.graph.add_media("m2", JPEG, "image/jpeg")
    first, second = wa.image(PHONE, media_id="m1"), wa.image(PHONE, media_id="m2")
    w.deliver(first)
    w.jira.fail("add_attachment", JiraRejected("Jira 413: too big for Jira", status=413))
    w.job().run()
    assert state(w, first["id"]) == FAILED and len(w.jira.notes(w.issue)) == 1
    w.deliver(second)
    w.jira.delete_issue(w.issue)
    w.job().run()
    assert state(w, second["id"]) == FAILED


def test_a_dead_workers_task_is_taken_over_and_given_up_after_max_attempts(world):
    w = world
    w.graph.add_media("m1", JPEG, "image/jpeg")
    msg = wa.image(PHONE, media_id="m1")
    w.deliver(msg)
    [claimed] = w.tasks.claim_due("dead:1", lease_seconds=30)
    assert claimed.state == WORKING and w.tasks.claim_due("other:2") == []
    w.clock.advance(31)
    [again] = w.tasks.claim_due("dead:1", lease_seconds=30)
    assert again.attempts == 1
    w.clock.advance(31)
    assert w.job(max_attempts=2).run().failed == 1
    assert state(w, msg["id"]) == FAILED


def test_concurrent_claims_take_each_task_once(world):
    w = world
    for i in range(12):
        w.deliver(wa.image(PHONE, media_id=f"m{i}"))
    got: list[int] = []
    lock = threading.Lock()

    def claim(owner):
        for _ in range(12):
            for task in w.tasks.claim_due(owner, limit=2):
                with lock:
                    got.append(task.id)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(set(got)) and len(got) == 12
    assert w.tasks.stats()[WORKING] == 12


def test_the_model_matches_the_table_after_an_upgrade(db_url):
    db = open_database(db_url)
    try:
        assert migrate(db, target=3) == 3
        assert "media_task" not in db.get_tables()
        assert migrate(db) == SCHEMA_VERSION >= 4
        columns = {c.name for c in db.get_columns("media_task")}
        assert columns == {f.column_name for f in MediaTaskRow._meta.sorted_fields}
        unique = [i.columns for i in db.get_indexes("media_task") if i.unique and i.columns != ["id"]]
        assert unique == [["wamid", "media_id"]]
    finally:
        db.close()


# -- the adapters against the sandboxes (no database) ----------------------------------------


@pytest.fixture
def sandboxes():
    jira = JiraSandbox(email="bot@example.com", api_token="t")
    graph = GraphSandbox(access_token="g")
    jira.start()
    graph.start()
    yield jira, graph
    graph.stop()
    jira.stop()


def test_adapters_round_trip_bytes_with_an_expired_url(sandboxes):
    jira_sb, graph_sb = sandboxes
    jira = JiraAdapter.connect(jira_sb.url, email="bot@example.com", api_token="t")
    graph = GraphAdapter.connect(base_url=graph_sb.url, api_version="v23.0", access_token="g")
    key = jira.create_issue(
        project_key="WA", issue_type="Task", summary="s", description="d", labels=["whatsapp"], properties={}
    ).key
    graph_sb.add_media("555", JPEG, "image/jpeg")
    graph_sb.media_url_ttl = -60  # every URL Graph hands out has lapsed already
    info = graph.media_info("555")
    with pytest.raises(GraphRejected) as expired:
        graph.download(info.url, max_bytes=1 << 20)
    assert expired.value.status == 404
    graph_sb.media_url_ttl = 300
    data = graph.download(graph.media_info("555").url, max_bytes=1 << 20)
    assert data == JPEG and hashlib.sha256(data).hexdigest() == info.sha256

    attachment_id = jira.add_attachment(key, "Niño 😀.jpg", data, "image/jpeg")
    [stored] = jira_sb.attachments(key)
    assert (stored["id"], stored["filename"], stored["bytes"], stored["mimeType"]) == (
        attachment_id,
        "Niño 😀.jpg",
        JPEG,
        "image/jpeg",
    )
    assert [(a["id"], a["filename"], a["size"]) for a in jira.list_attachments(key)] == [
        (attachment_id, "Niño 😀.jpg", len(JPEG))
    ]
    with pytest.raises(IssueNotFound):
        jira.add_attachment("WA-999", "x.jpg", data, "image/jpeg")
