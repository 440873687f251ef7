"""Access and erasure requests on every engine: every table classified, export finds the
person's rows and no one else's, forget deletes exactly those in one go, workers that held a row
resurrect nothing, and the person's next message opens a new ticket."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from bot.jira_api.errors import JiraUnavailable
from bot.rules.person import person_from_argument
from jobs.erasure import ERASED_NOTE, Erasure, erasure_ref
from jobs.notes import Notes
from sandbox import whatsapp_payloads as wa
from storage.engines import run_sql
from storage.erasure import NOT_PERSONAL, PERSONAL_TABLES, ConversationBusy, PersonalRecords
from storage.leases import Leases
from storage.outbound import OutboundQueue
from tests.integration.test_inbox_job import PHONE, world  # noqa: F401 - the inbox world fixture

ANA_KEY, ANA_ID = "+525512345678", "US.13491208655302741918"
BEN_KEY, BEN_ID = "+16505551234", "US.99"


def tables_of(db) -> set[str]:
    return set(db.get_tables())


def seed(db, *, key: str, wa_id: str, user_id: str, tickets: tuple[str, str], n: int) -> None:
    """One row about the person in every personal table (and the routed, user-keyed forms)."""
    mine, other = tickets
    p = db.param

    def insert(table: str, row: dict) -> None:
        marks = ", ".join([p] * len(row))
        run_sql(db, f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", list(row.values()))

    raw = json.dumps({"from": wa_id, "id": f"in{n}", "type": "text", "text": {"body": "hola"}})
    now = 1_700_000_000.0
    inbound = {
        "phone_number_id": "1001",
        "meta_timestamp": 1_700_000_000,
        "kind": "text",
        "raw_json": raw,
        "state": "pending",
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    insert("inbound_message", {"wamid": f"in{n}", "conversation_key": key, "wa_id": wa_id, **inbound})
    # Meta gave no number on this one: keyed by the user id, routed to another service.
    insert(
        "inbound_message",
        {"wamid": f"in{n}u", "conversation_key": f"user:{user_id}#sales", "user_id": user_id, **inbound},
    )
    # Linked only through the user id both carry.
    insert("inbound_message", {"wamid": f"in{n}b", "conversation_key": key, "user_id": user_id, **inbound})
    insert("inbound_conversation", {"conversation_key": key, "first_id": 1, "due_at": now})
    stamp = "2026-01-01 00:00:00"
    insert(
        "whatsapp_ticket_mapping",
        {"phone_number": key, "issue_key": mine, "service_id": "support", "user_id": user_id,
         "created_at": stamp, "updated_at": stamp},
    )  # fmt: skip
    insert(
        "ticket_history",
        {"phone_number": f"{key}#sales", "issue_key": other, "service_id": "sales", "opened_at": now},
    )
    insert("ticket_creation", {"conversation_key": key, "service_id": "support", "started_at": now})
    out = {"phone_number_id": "1001", "kind": "agent", "body": "hi", "next_attempt_at": now,
           "created_at": now, "updated_at": now}  # fmt: skip
    insert(
        "outbound_message",
        {"dedupe_key": f"out{n}", "issue_key": mine, "conversation_key": key, "to_wa_id": wa_id,
         "wamid": f"wamid.out{n}", **out},
    )  # fmt: skip
    insert(
        "message_status",
        {"wamid": f"wamid.out{n}", "status": "sent", "meta_timestamp": 1, "phone_number_id": "1001",
         "errors_json": "[]", "raw_json": "{}", "created_at": now},
    )  # fmt: skip
    insert(
        "message_status",
        {"wamid": f"wamid.unknown{n}", "status": "read", "meta_timestamp": 1, "recipient_id": wa_id,
         "phone_number_id": "1001", "errors_json": "[]", "raw_json": "{}", "created_at": now},
    )  # fmt: skip
    insert(
        "webhook_event",
        {"field": "smb_message_echoes", "dedupe_key": f"ev{n}", "phone_number_id": "1001",
         "raw_json": json.dumps({"to": wa_id}), "created_at": now},
    )  # fmt: skip
    insert(
        "contact_name",
        {"phone_number_id": "1001", "conversation_key": key, "full_name": "Someone", "synced_at": 1,
         "updated_at": now},
    )  # fmt: skip
    insert(
        "ai_turn",
        {"issue_key": mine, "service_id": "support", "conversation_key": key, "trigger_comment_id": f"c{n}",
         "trigger_created": now, "created_at": now, "due_at": now, "next_attempt_at": now, "updated_at": now},
    )  # fmt: skip
    insert(
        "media_task",
        {"wamid": f"in{n}", "media_id": f"m{n}", "kind": "image", "filename": "a.jpg", "issue_key": mine,
         "next_attempt_at": now, "created_at": now, "updated_at": now},
    )  # fmt: skip
    insert(
        "csat_rating",
        {"request_id": n, "service_id": "support", "issue_key": mine, "conversation_key": key,
         "wamid": f"in{n}", "rating": 5, "rated_at": now},
    )  # fmt: skip
    for ticket in tickets:
        insert(
            "handled_comment",
            {"comment_id": f"h{ticket}", "issue_key": ticket, "route": "agent", "comment_created": now,
             "handled_at": now},
        )  # fmt: skip
        insert("ai_switch", {"issue_key": ticket, "enabled": 0, "comment_id": "x", "comment_created": now,
                             "updated_at": now})  # fmt: skip
        insert("status_watch", {"issue_key": ticket, "status_name": "Open", "entries": 1, "updated_at": now})
        insert("issue_state", {"issue_key": ticket, "status_category": "new", "status_name": "Open",
                               "seen_at": now})  # fmt: skip
    insert(
        "lease", {"name": f"conversation:{key}#billing", "owner": "gone", "expires_at": 0, "acquired_at": 0}
    )


@pytest.fixture
def populated(db):
    seed(db, key=ANA_KEY, wa_id="5215512345678", user_id=ANA_ID, tickets=("WA-1", "SA-1"), n=1)
    seed(db, key=BEN_KEY, wa_id="16505551234", user_id=BEN_ID, tickets=("WA-2", "SA-2"), n=2)
    return db


def everything(db) -> dict[str, list[str]]:
    """Every row of every table, stringified."""
    out = {}
    for table in sorted(tables_of(db)):
        out[table] = [
            json.dumps([str(v) for v in row]) for row in run_sql(db, f"SELECT * FROM {table}").fetchall()
        ]
    return out


def mentions(db, *needles: str) -> dict[str, int]:
    found = {}
    for table, rows in everything(db).items():
        hits = sum(1 for r in rows if any(n in r for n in needles))
        if hits:
            found[table] = hits
    return found


ANA_NEEDLES = ("5512345678", ANA_ID, "WA-1", "SA-1", "in1", "out1")
BEN_NEEDLES = ("6505551234", BEN_ID, "WA-2", "SA-2", "in2", "out2")


def test_every_table_is_classified_as_personal_or_not(db):
    """A new table fails here until storage/erasure.py says how its rows about a person are found."""
    tables = tables_of(db)
    assert tables == set(PERSONAL_TABLES) | set(NOT_PERSONAL), (
        f"unclassified: {sorted(tables - set(PERSONAL_TABLES) - set(NOT_PERSONAL))}; "
        f"gone: {sorted(set(PERSONAL_TABLES) | set(NOT_PERSONAL) - tables)}"
    )
    assert not set(PERSONAL_TABLES) & set(NOT_PERSONAL)


def test_export_finds_the_person_in_every_table_and_no_one_else(populated):
    found = PersonalRecords(populated).export(person_from_argument("+52 1 55 1234 5678"))
    assert set(found.tables) == set(PERSONAL_TABLES)
    assert found.tickets == ("SA-1", "WA-1")
    assert found.person.user_ids == (ANA_ID,)  # linked through their rows
    text = json.dumps(found.as_json())
    assert not any(n in text for n in BEN_NEEDLES)
    assert len(found.tables["inbound_message"]) == 3
    # Stable: the same call prints the same bytes.
    again = PersonalRecords(populated).export(person_from_argument("525512345678"))
    assert json.dumps(again.as_json(), sort_keys=True) == json.dumps(found.as_json(), sort_keys=True)


def test_export_by_user_id_finds_the_phone_conversation_too(populated):
    found = PersonalRecords(populated).export(person_from_argument(ANA_ID))
    assert ANA_KEY in found.person.conversation_keys
    assert found.tickets == ("SA-1", "WA-1")


def test_forget_deletes_every_row_about_them_and_nothing_else(populated):
    ben_before = mentions(populated, *BEN_NEEDLES)
    erased = PersonalRecords(populated).erase(person_from_argument("5215512345678"), owner="t")
    assert erased.tickets == ("SA-1", "WA-1")
    assert set(erased.deleted) == set(PERSONAL_TABLES)
    assert erased.deleted["inbound_message"] == 3
    assert mentions(populated, *ANA_NEEDLES) == {}
    assert mentions(populated, *BEN_NEEDLES) == ben_before
    # Nothing left: a second run deletes nothing.
    assert PersonalRecords(populated).erase(person_from_argument(ANA_ID), owner="t").deleted == {}


def test_a_ticket_shared_with_another_conversation_keeps_its_ticket_rows(populated):
    # Ben's conversation also went to Ana's WA-1: rows found only by that key are Ben's too.
    run_sql(populated, "UPDATE ticket_history SET issue_key = 'WA-1' WHERE issue_key = 'SA-2'")
    erased = PersonalRecords(populated).erase(person_from_argument(ANA_KEY), owner="t")
    assert "WA-1" in erased.tickets
    left = everything(populated)
    assert any("WA-1" in r for r in left["status_watch"])
    assert not any("5512345678" in r for rows in left.values() for r in rows)


def test_forget_waits_for_a_busy_conversation_then_gives_up_with_nothing_deleted(populated, clock):
    Leases(populated, clock=clock).acquire(f"conversation:{ANA_KEY}", "inbox-worker", 600)
    records = PersonalRecords(populated, clock=clock, sleep=clock.advance)
    with pytest.raises(ConversationBusy):
        records.erase(person_from_argument(ANA_KEY), owner="t", wait_seconds=5)
    assert mentions(populated, "5512345678")["inbound_message"] == 3


def test_a_worker_finishing_a_deleted_row_resurrects_nothing(populated, clock):
    outbound = OutboundQueue(populated, clock=clock)
    (claimed,) = [m for m in outbound.claim_due("outbox", limit=10) if m.conversation_key == ANA_KEY]
    PersonalRecords(populated).erase(person_from_argument(ANA_KEY), owner="t")
    outbound.mark_sent(claimed.id, wamid="wamid.late")  # an UPDATE of a missing row
    assert mentions(populated, "5512345678", "wamid.late") == {}


# -- through the jobs: notes, and the next message ---------------------------------------------


def forget(world, *, also=()):  # noqa: F811 - the fixture's name
    erasure = Erasure(PersonalRecords(world.db), Notes(world.jira), owner="t")
    return erasure.forget(person_from_argument("+52 1 55 1234 5678"), also_tickets=also)


def notes_on(world, key):  # noqa: F811
    return [c for c in world.jira.comments[key] if c["prop"].get("kind") == "note"]


def test_forget_notes_each_ticket_once_and_the_next_message_opens_a_new_ticket(world):  # noqa: F811
    world.send(wa.text(PHONE, "hello", timestamp=100))
    world.job.run()
    assert world.mappings.get(ANA_KEY).issue_key == "WA-1"
    done = forget(world)
    assert done.tickets == ("WA-1",) and done.noted == ("WA-1",) and done.notes_missing == ()
    (note,) = notes_on(world, "WA-1")
    assert ERASED_NOTE in note["text"] and note["prop"]["ref"] == erasure_ref("WA-1")
    assert mentions(world.db, "5512345678") == {}
    assert forget(world, also=["WA-1"]).noted == ("WA-1",)
    assert len(notes_on(world, "WA-1")) == 1  # a rerun never writes a second note
    world.send(wa.text(PHONE, "again", timestamp=200))
    world.job.run()
    assert world.mappings.get(ANA_KEY).issue_key == "WA-2"
    assert world.jira.texts("WA-2") == ["[WhatsApp] Ana: again"]


def test_a_queued_message_is_dropped_not_delivered(world):  # noqa: F811
    world.send(wa.text(PHONE, "hello", timestamp=100))
    world.job.run()
    world.send(wa.text(PHONE, "queued, then forgotten", timestamp=150))
    forget(world)
    world.job.run()
    assert world.jira.texts("WA-1") == ["[WhatsApp] Ana: hello", f"[wajira] {ERASED_NOTE}"]
    assert list(world.jira.issues) == ["WA-1"] and world.mappings.get(ANA_KEY) is None


def test_jira_down_for_the_notes_still_erases_and_a_rerun_posts_them(world):  # noqa: F811
    world.send(wa.text(PHONE, "hello", timestamp=100))
    world.job.run()
    world.jira.fail("find_comment_with_property", JiraUnavailable("Jira 503", status=503))
    done = forget(world)
    assert done.notes_missing == ("WA-1",) and done.tickets == ("WA-1",)
    assert mentions(world.db, "5512345678") == {}
    assert notes_on(world, "WA-1") == []
    rerun = forget(world, also=done.notes_missing)
    assert rerun.noted == ("WA-1",) and rerun.deleted == {}
    assert len(notes_on(world, "WA-1")) == 1


def test_sqlite_overwrites_the_freed_pages_and_empties_the_wal(populated, db_engine):
    if db_engine != "sqlite":
        pytest.skip("secure_delete and the WAL are SQLite's")
    path = populated.database
    (before,) = run_sql(populated, "PRAGMA secure_delete").fetchone()
    erased = PersonalRecords(populated).erase(person_from_argument(ANA_KEY), owner="t")
    assert erased.checkpointed is True
    files = [path, f"{path}-wal"]
    on_disk = b"".join(pathlib.Path(f).read_bytes() for f in files if os.path.exists(f))
    assert b"5512345678" not in on_disk and ANA_ID.encode() not in on_disk
    assert b"6505551234" in on_disk  # the bystander is still there: the scan can see text
    (setting,) = run_sql(populated, "PRAGMA secure_delete").fetchone()
    assert setting == before  # the connection's own setting is given back
