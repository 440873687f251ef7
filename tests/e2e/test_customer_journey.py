"""The customer's journey through the real daemon (issue 13): the acknowledgement with the
ticket key, a status notice exactly once over several polls, and a CSAT rating that becomes a
`[CSAT]` comment and not an AI turn."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from sandbox import whatsapp_payloads as wa
from storage.db import open_database
from storage.leases import Leases
from tests.e2e.harness import free_port, wait_until
from tests.e2e.test_outbound import NAME, PHONE, Customer, run_cli, sent_to_customer, texts, the_issue
from tests.support.databases import isolated_for_pytest

pytestmark = pytest.mark.e2e

JOURNEY = """
[services.notify]
on_create = "Hi {name}, we have it: {issue_key}."
on_status = { "Done" = "{issue_key} is solved." }

[services.csat]
enabled = true
question = "How did we do on {issue_key}?"
"""


def test_acknowledgement_notice_once_and_a_rating_on_its_ticket(
    jira, graph_sandbox, openai_sandbox, make_daemon
):
    daemon = make_daemon(graph=graph_sandbox, openai=openai_sandbox, assistant=True, extra=JOURNEY).start()
    ana = Customer(daemon, graph_sandbox)
    ana.says("My order 1042 is late")
    key = the_issue(jira)
    ack = f"Hi {NAME}, we have it: {key}."
    wait_until(lambda: ack in [m["body"] for m in sent_to_customer(graph_sandbox)], what="acknowledgement")
    wait_until(lambda: any(t.startswith("[AI]") for t in texts(jira, key)), what="the first AI reply")
    ana.says("Any news?")
    wait_until(lambda: len([t for t in texts(jira, key) if t.startswith("[AI]")]) == 2, what="two AI replies")
    assert [m["body"] for m in sent_to_customer(graph_sandbox)].count(ack) == 1
    assert f"[Auto] {ack}" in texts(jira, key)

    jira.set_status(key, "Done", "done")
    wait_until(lambda: graph_sandbox.lists(), what="the satisfaction survey")
    time.sleep(3.5)  # three more poll passes (interval 1 s) read the same status
    notices = [m["body"] for m in sent_to_customer(graph_sandbox) if m["body"] == f"{key} is solved."]
    assert len(notices) == 1
    [survey] = graph_sandbox.lists()
    assert survey["body"] == f"How did we do on {key}?"
    assert [r["id"] for r in survey["rows"]] == [f"csat:{n}" for n in range(1, 6)]

    ai_before = len([t for t in texts(jira, key) if t.startswith("[AI]")])
    choice = wa.list_reply(
        PHONE,
        "Excellent",
        row_id="csat:5",
        timestamp=int(time.time()),
        context={"from": "x", "id": survey["wamid"]},
    )
    payload = wa.message_payload([choice], contacts=[wa.contact(NAME, PHONE)])
    graph_sandbox.observe_webhook(payload)
    assert ana.meta.deliver(payload) == 200
    wait_until(lambda: f"[CSAT] {NAME} rated 5/5" in texts(jira, key), what="the [CSAT] comment")
    rating = next(
        c for c in jira.comments(key) if (c.get("properties") or {}).get("wajira", {}).get("kind") == "csat"
    )
    assert rating["properties"]["wajira"]["rating"] == 5
    time.sleep(3)  # the AI would have answered within a poll and its debounce
    assert len([t for t in texts(jira, key) if t.startswith("[AI]")]) == ai_before


def notices_of(graph, text: str) -> int:
    """How many WhatsApp texts with exactly this body went out."""
    return [m["body"] for m in sent_to_customer(graph)].count(text)


# ---- two daemons on one PostgreSQL database ----------------------------------------------------


@pytest.fixture
def shared_postgres():
    """An isolated PostgreSQL schema both daemons use; skipped unless WAJIRA_TEST_POSTGRES_URL is set."""
    with isolated_for_pytest("postgres") as url:
        yield url


def poll_holder(db_url: str) -> str:
    db = open_database(db_url)
    try:
        held = wait_until(lambda: Leases(db).holder("poll"), timeout=30, what="a poll lease holder")
    finally:
        db.close()
    assert isinstance(held, tuple)
    return str(held[0])


def poll_passes(daemon) -> int:
    """Passes that found new comments (a full or a hot pass, whichever read them first)."""
    return sum(1 for e in daemon.log_events() if e.get("event") in ("poll_pass", "poll_hot_pass"))


@pytest.mark.postgres
def test_two_daemons_on_one_postgres_send_one_notice_and_one_survey(
    shared_postgres, jira, graph_sandbox, make_daemon
):
    a = make_daemon(name="a", db_url=shared_postgres, graph=graph_sandbox, extra=JOURNEY).start()
    b = make_daemon(
        name="b", db_url=shared_postgres, graph=graph_sandbox, extra=JOURNEY, port=free_port()
    ).start()
    Customer(a, graph_sandbox).says("My order 1042 is late")
    key = the_issue(jira)
    Customer(b, graph_sandbox).says("Any news?")  # the other daemon's inbox: still one acknowledgement
    ack, solved = f"Hi {NAME}, we have it: {key}.", f"{key} is solved."
    wait_until(lambda: len(texts(jira, key)) >= 3, timeout=30, what="two messages and the [Auto] ack")

    jira.set_status(key, "Done", "done")
    wait_until(lambda: notices_of(graph_sandbox, solved), timeout=30, what="the status notice")
    wait_until(lambda: graph_sandbox.lists(), timeout=30, what="the satisfaction survey")
    time.sleep(3.5)  # more passes of the poll holder over the same status

    # The holder stops; the other daemon takes the poll over and reads the Done ticket again.
    by_port = {a.port: a, b.port: b}
    holder = by_port[int(poll_holder(shared_postgres).rsplit(":", 1)[1])]
    survivor = b if holder is a else a
    passes_before = poll_passes(survivor)
    assert holder.terminate() == 0
    wait_until(
        lambda: poll_holder(shared_postgres).endswith(f":{survivor.port}"),
        timeout=60,
        what="the survivor holding the poll",
    )
    # A comment the customer never sees, so that the survivor's pass surely reads the ticket.
    jira.add_agent_comment(key, "Checked by QA.", internal=True, author="Agent Smith")
    wait_until(lambda: poll_passes(survivor) > passes_before, timeout=60, what="a pass of the survivor")
    time.sleep(3.5)  # and a few more passes

    assert notices_of(graph_sandbox, ack) == 1
    assert notices_of(graph_sandbox, solved) == 1
    [survey] = graph_sandbox.lists()
    assert survey["body"] == f"How did we do on {key}?" and survey["to"] == PHONE
    assert all("Checked by QA" not in m["body"] for m in sent_to_customer(graph_sandbox))
    assert texts(jira, key).count(f"[Auto] {solved}") == 1
    assert survivor.terminate() == 0


# ---- catch-up after the notice -----------------------------------------------------------------


def test_catch_up_after_done_sends_no_second_notice_or_survey(jira, graph_sandbox, make_daemon):
    daemon = make_daemon(graph=graph_sandbox, extra=JOURNEY).start()
    Customer(daemon, graph_sandbox).says("My order 1042 is late")
    key = the_issue(jira)
    solved = f"{key} is solved."
    wait_until(lambda: len(texts(jira, key)) >= 2, timeout=30, what="the message and the [Auto] ack")
    jira.set_status(key, "Done", "done")
    wait_until(lambda: notices_of(graph_sandbox, solved), timeout=30, what="the status notice")
    wait_until(lambda: graph_sandbox.lists(), timeout=30, what="the satisfaction survey")
    sent_before = len(graph_sandbox.sent())

    beside = run_cli(daemon, "catch-up", "--since", "2h")  # beside the live daemon
    assert beside.returncode == 0, beside.stderr
    assert "read 1 issues" in beside.stdout  # it did read the Done ticket
    assert daemon.terminate() == 0
    alone = run_cli(daemon, "catch-up", "--since", "2h")  # and alone, draining what it queued itself
    assert alone.returncode == 0, alone.stderr
    assert "read 1 issues" in alone.stdout and "sent 0 WhatsApp messages" in alone.stdout

    daemon.start()  # back up, its poll reads the same window again
    time.sleep(3.5)
    assert len(graph_sandbox.sent()) == sent_before
    assert notices_of(graph_sandbox, solved) == 1 and len(graph_sandbox.lists()) == 1
    assert texts(jira, key).count(f"[Auto] {solved}") == 1


# ---- a closed window: the template instead of the notice ---------------------------------------

CLOSED_WINDOW = """
[services.notify]
on_status = { "Done" = "{issue_key} is solved." }

[services.csat]
enabled = true
question = "How did we do on {issue_key}?"
"""
TEMPLATE_CONFIG = (
    'template_name = "ticket_update"\ntemplate_language = "es_MX"\n'
    'template_parameters = ["{name}", "{issue_key}"]'
)


def test_status_notice_in_a_closed_window_goes_as_the_template(jira, graph_sandbox, make_daemon):
    daemon = make_daemon(graph=graph_sandbox, extra=CLOSED_WINDOW, whatsapp=TEMPLATE_CONFIG).start()
    Customer(daemon, graph_sandbox).says("written yesterday", at=time.time() - 26 * 3600)
    key = the_issue(jira)
    wait_until(lambda: len(jira.comments(key)) == 1, timeout=30, what="the customer's comment")
    jira.set_status(key, "Done", "done")
    wait_until(lambda: graph_sandbox.sent(), timeout=30, what="the template")
    [template] = graph_sandbox.sent()
    assert template["type"] == "template" and template["to"] == PHONE
    assert template["template"]["name"] == "ticket_update"
    params = [p["text"] for p in template["template"]["components"][0]["parameters"]]
    assert params == [NAME, key]
    notes = lambda: [t for t in texts(jira, key) if "'ticket_update' was sent instead" in t]  # noqa: E731
    wait_until(notes, timeout=30, what="the template note")
    [note] = notes()
    assert note.endswith(f"instead of this reply:\n{key} is solved.")
    wait_until(
        lambda: any("satisfaction survey was not sent" in t for t in texts(jira, key)),
        timeout=30,
        what="the note on the held survey",
    )
    time.sleep(3.5)  # more passes over the same status
    assert len(graph_sandbox.sent()) == 1 and graph_sandbox.lists() == []
    assert texts(jira, key).count(f"[Auto] {key} is solved.") == 1


# ---- out of hours ------------------------------------------------------------------------------


def zone_far_from_midnight() -> str:
    """UTC, or UTC+12 when UTC is near midnight: the three messages must share one local day."""
    now = datetime.now(timezone.utc)
    for zone in ("UTC", "Etc/GMT-12"):
        if 1 <= now.astimezone(ZoneInfo(zone)).hour <= 22:
            return zone
    raise AssertionError("unreachable: UTC and UTC+12 cannot both be near midnight")


def test_closed_all_week_three_messages_get_one_out_of_hours_text(jira, graph_sandbox, make_daemon):
    closed = f"""
[services.notify]
out_of_hours = "We are closed now, {{name}}. {{issue_key}} waits for us."

[services.hours]
timezone = "{zone_far_from_midnight()}"
mon = ""
tue = ""
wed = ""
thu = ""
fri = ""
sat = ""
sun = ""
"""
    daemon = make_daemon(graph=graph_sandbox, extra=closed).start()
    ana = Customer(daemon, graph_sandbox)
    for n in range(3):
        ana.says(f"Hello? ({n})")
        time.sleep(0.3)  # separate deliveries, as a customer types them
    key = the_issue(jira)
    customer = lambda: [t for t in texts(jira, key) if t.startswith("[WhatsApp]")]  # noqa: E731
    wait_until(lambda: len(customer()) == 3, timeout=30, what="three customer comments")
    closed_text = f"We are closed now, {NAME}. {key} waits for us."
    wait_until(lambda: notices_of(graph_sandbox, closed_text), timeout=30, what="the out-of-hours text")
    time.sleep(3.5)  # any second one would be out by now
    assert [m["body"] for m in sent_to_customer(graph_sandbox)] == [closed_text]
    assert texts(jira, key).count(f"[Auto] {closed_text}") == 1
