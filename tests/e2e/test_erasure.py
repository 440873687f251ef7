"""`wajira forget` while the daemon runs: nothing about the phone is left in any table, the
ticket carries the internal note, and the customer's next message opens a new ticket."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from jobs.erasure import ERASED_NOTE, erasure_ref
from tests.e2e.harness import REPO, wait_until
from tests.e2e.test_outbound import Customer, texts

pytestmark = pytest.mark.e2e

PHONE, KEY = "5215512345678", "+525512345678"
NEEDLES = ("5512345678", KEY)  # the digits Meta and the key share, and the key itself


def wajira(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def rows_mentioning(db_path, needles) -> dict[str, list[str]]:
    """Every row of every table, stringified, that contains one of the needles."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        found = {}
        for table in tables:
            rows = [json.dumps([str(v) for v in row]) for row in conn.execute(f'SELECT * FROM "{table}"')]
            hits = [r for r in rows if any(n in r for n in needles)]
            if hits:
                found[table] = hits
        return found
    finally:
        conn.close()


def test_forget_while_running_leaves_nothing_and_the_next_message_opens_a_new_ticket(
    make_daemon, jira, graph_sandbox, tmp_path
):
    daemon = make_daemon(graph=graph_sandbox, assistant=False).start()
    ana = Customer(daemon, graph_sandbox, phone=PHONE)
    ana.says("my order never came")
    wait_until(lambda: jira.issues(), what="a ticket")
    first = jira.issues()[0]["key"]
    wait_until(lambda: texts(jira, first), what="the customer's comment")
    db_path = tmp_path / "wajira.db"
    assert rows_mentioning(db_path, NEEDLES)  # the scan does see the phone while it is stored

    exported = wajira("export", "+52 1 55 1234 5678", "--config", str(daemon.config_path))
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert data["tickets"] == [first] and data["person"]["conversation_keys"] == [KEY]
    assert "whatsapp_ticket_mapping" in data["tables"] and "inbound_message" in data["tables"]

    done = wajira("forget", "525512345678", "--config", str(daemon.config_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [first]
    assert "erased" in done.stderr and "whatsapp_ticket_mapping 1" in done.stderr

    assert rows_mentioning(db_path, NEEDLES) == {}
    (note,) = [c for c in jira.comments(first) if c["properties"].get("wajira", {}).get("kind") == "note"]
    assert note["jsdPublic"] is False and note["properties"]["wajira"]["ref"] == erasure_ref(first)
    assert ERASED_NOTE in texts(jira, first)[-1]

    ana.says("hello again")
    wait_until(lambda: len(jira.issues()) == 2, what="a second ticket")
    second = next(i["key"] for i in jira.issues() if i["key"] != first)
    wait_until(lambda: texts(jira, second), what="the new message on the new ticket")
    assert texts(jira, second)[0].endswith("hello again")
    assert not any("hello again" in t for t in texts(jira, first))
