"""`wajira check`, `status` and `queue retry`, run in-process through `bot.cli.main` against the
Jira, Graph and OpenAI sandboxes on loopback and a temporary SQLite database."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest
import requests
import structlog

from bot import logs
from bot.cli import main
from bot.rules.payload import parse_webhook
from sandbox import whatsapp_payloads as wa
from sandbox.graph.sandbox import GraphSandbox
from sandbox.jira import JiraSandbox
from sandbox.openai_stub.sandbox import OpenAISandbox
from storage.csat import CsatRatings
from storage.db import bind, open_database
from storage.inbound import InboundQueue
from storage.leases import Leases
from storage.outbound import OutboundQueue
from storage.polling import PollState
from storage.schema import migrate
from tests.support.spec import jira_spec

JIRA_TOKEN = "jira-token-s3cret"
GRAPH_TOKEN = "graph-token-s3cret"
OPENAI_KEY = "openai-key-s3cret"
APP_SECRET = "app-secret-s3cret"
MAIN_NUMBER, SALES_NUMBER = wa.PHONE_NUMBER_ID, "209876543210987"
SECRETS = (JIRA_TOKEN, GRAPH_TOKEN, OPENAI_KEY, APP_SECRET)
ENV_SECRETS = (
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "JIRA_API_TOKEN",
    "JIRA_TOKEN",
    "OPENAI_API_KEY",
    "CREDENTIALS_DIRECTORY",
    "WAJIRA_CONFIG",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_SECRETS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch):
    """main() configures logging for the process; later tests expect it as it was.

    Its structlog setup caches each module's logger on first use, which would pin the
    adapters' loggers to that setup and blind `structlog.testing.capture_logs` in later tests:
    in here the cache stays off.
    """
    configure = logs.configure

    def configure_uncached(*args, **kwargs):
        configure(*args, **kwargs)
        structlog.configure(cache_logger_on_first_use=False)

    monkeypatch.setattr(logs, "configure", configure_uncached)
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    config = structlog.get_config()
    yield
    structlog.configure(**config)
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
def jira():
    sandbox = JiraSandbox(email="bot@example.com", api_token=JIRA_TOKEN, time_zone="America/Mexico_City")
    sandbox.add_project("WA", "WhatsApp support")
    with sandbox:
        yield sandbox


@pytest.fixture
def graph():
    with GraphSandbox(
        access_token=GRAPH_TOKEN, phone_numbers={MAIN_NUMBER: wa.DISPLAY_PHONE, SALES_NUMBER: "5215550001111"}
    ) as sandbox:
        yield sandbox


@pytest.fixture
def openai_stub():
    with OpenAISandbox(api_key=OPENAI_KEY, models=("gpt-4o-mini",)) as sandbox:
        yield sandbox


@pytest.fixture
def config(tmp_path, jira, graph, openai_stub):
    """write(**changes) → the path of a config for the sandboxes, changed as asked."""

    def write(
        *,
        jira_token=JIRA_TOKEN,
        project_key="WA",
        issue_type="Task",
        phone_number_ids=(SALES_NUMBER,),
        assistant=True,
        model="gpt-4o-mini",
    ) -> str:
        ids = ", ".join(f'"{n}"' for n in phone_number_ids)
        path = tmp_path / "config.toml"
        path.write_text(f"""
[storage]
url = "sqlite:///{tmp_path}/wajira.db"

[whatsapp]
verify_token = "verify-token"
app_secret = "{APP_SECRET}"
access_token = "{GRAPH_TOKEN}"
phone_number_id = "{MAIN_NUMBER}"
graph_url = "{graph.url}"

[jira]
url = "{jira.url}"
email = "bot@example.com"
api_token = "{jira_token}"

[openai]
api_key = "{OPENAI_KEY}"
base_url = "{openai_stub.url}"
model = "gpt-4o-mini"

[[services]]
id = "support"
project_key = "{project_key}"
issue_type = "{issue_type}"
phone_number_ids = [{ids}]

[services.assistant]
enabled = {str(assistant).lower()}
model = "{model}"
""")
        return str(path)

    return write


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert not any(secret in out + err for secret in SECRETS), "a secret was printed"
    return code, out, err


def line(out: str, name: str) -> str:
    """The output line of the check called `name` (the words after the mark)."""
    found = [text for text in out.splitlines() if text[2:].split("  ")[0].strip() == name]
    assert len(found) == 1, f"no single line for {name!r} in:\n{out}"
    return found[0]


# -- check --------------------------------------------------------------------------------------


def test_check_passes_when_everything_answers(capsys, config, openai_stub):
    code, out, _ = run(capsys, "check", "--config", config())
    assert code == 0, out
    assert all(text.startswith("✓ ") for text in out.splitlines()), out
    assert "wajira bot" in line(out, "Jira") and "time zone America/Mexico_City" in line(out, "Jira")
    assert "project WA (WhatsApp support), issue type Task" in line(out, "Jira service support")
    assert "+1 555-078-3881" in line(out, f"Graph {MAIN_NUMBER}")
    assert "+5215550001111" in line(out, f"Graph {SALES_NUMBER}")
    assert "sqlite, schema version" in line(out, "storage")
    assert line(out, "OpenAI gpt-4o-mini")
    assert openai_stub.calls["GET /v1/models/{model}"] == 1


def test_wrong_jira_token_fails_jira_and_skips_its_projects(capsys, config):
    code, out, _ = run(capsys, "check", "--config", config(jira_token="not-the-token"))
    assert code == 1
    assert line(out, "Jira").startswith("✗ ") and "401" in line(out, "Jira")
    assert "[jira] email and api_token" in line(out, "Jira")
    assert line(out, "Jira service support").startswith("– ")
    assert "not-the-token" not in out
    assert line(out, f"Graph {MAIN_NUMBER}").startswith("✓ ")  # the others are still checked


def test_unknown_project_is_named(capsys, config):
    # The sandbox makes any key-shaped project on first use, as a convenience; a key with "_"
    # (valid in config) is never made, so it is as unknown as a typo is in real Jira.
    code, out, _ = run(capsys, "check", "--config", config(project_key="NO_SUCH"))
    assert code == 1
    assert line(out, "Jira service support").startswith("✗ ")
    assert "project NO_SUCH does not exist" in line(out, "Jira service support")


def test_issue_type_the_bot_cannot_create_is_named(capsys, config):
    code, out, _ = run(capsys, "check", "--config", config(issue_type="Story"))
    assert code == 1
    assert "no issue type 'Story'" in line(out, "Jira service support")
    assert "Task, Bug" in line(out, "Jira service support")


def test_missing_permission_is_named(capsys, config, jira):
    jira.denied_permissions = {"CREATE_ISSUES"}
    code, out, _ = run(capsys, "check", "--config", config())
    assert code == 1
    assert "lacks CREATE_ISSUES" in line(out, "Jira service support")


def test_unknown_phone_number_fails_graph(capsys, config):
    code, out, _ = run(capsys, "check", "--config", config(phone_number_ids=(SALES_NUMBER, "999000")))
    assert code == 1
    assert line(out, "Graph 999000").startswith("✗ ") and "999000" in line(out, "Graph 999000")
    assert line(out, f"Graph {SALES_NUMBER}").startswith("✓ ")


def test_unknown_model_fails_openai(capsys, config):
    code, out, _ = run(capsys, "check", "--config", config(model="gpt-nope"))
    assert code == 1
    assert line(out, "OpenAI gpt-nope").startswith("✗ ") and "does not exist" in line(out, "OpenAI gpt-nope")


def test_openai_is_not_asked_without_an_assistant(capsys, config, openai_stub):
    code, out, _ = run(capsys, "check", "--config", config(assistant=False, model="gpt-nope"))
    assert code == 0, out
    assert line(out, "OpenAI").startswith("– ")
    assert not openai_stub.calls


def test_config_error_exits_2_with_the_key(capsys, config):
    code, out, err = run(capsys, "check", "--config", config(project_key="lower"))
    assert code == 2 and out == ""
    assert "services[0].project_key" in err


def test_check_requests_and_the_sandbox_answers_fit_jira_spec(jira):
    """What `check` asks Jira (project, createmeta issue types, mypermissions) and what the
    sandbox answers, against Atlassian's published description."""
    spec = jira_spec()
    session = requests.Session()
    session.auth = ("bot@example.com", JIRA_TOKEN)
    jira.denied_permissions = {"ADD_COMMENTS"}
    asks = [
        (f"{jira.url}/rest/api/3/project/WA", {}, 200),
        (f"{jira.url}/rest/api/3/issue/createmeta/WA/issuetypes", {"startAt": "0", "maxResults": "50"}, 200),
        (
            f"{jira.url}/rest/api/3/mypermissions",
            {"projectKey": "WA", "permissions": "BROWSE_PROJECTS,CREATE_ISSUES,ADD_COMMENTS"},
            200,
        ),
        (
            f"{jira.url}/rest/api/3/mypermissions",
            {"projectKey": "NO_SUCH", "permissions": "ADD_COMMENTS"},
            404,
        ),
        (f"{jira.url}/rest/api/3/mypermissions", {"projectKey": "WA", "permissions": "NOT_A_KEY"}, 400),
        (f"{jira.url}/rest/api/3/mypermissions", {"projectKey": "WA"}, 400),
    ]
    for url, query, status in asks:
        assert spec.operation("GET", url).query_errors(query) == []
        answer = session.get(url, params=query, timeout=5)
        assert answer.status_code == status, (url, query, answer.text)
        assert spec.response_errors("GET", url, status, answer.json()) == [], (url, query)
    held = session.get(asks[2][0], params=asks[2][1], timeout=5).json()["permissions"]
    assert {k: v["havePermission"] for k, v in held.items()} == {
        "BROWSE_PROJECTS": True,
        "CREATE_ISSUES": True,
        "ADD_COMMENTS": False,
    }


# -- status -------------------------------------------------------------------------------------


@pytest.fixture
def storage(config):
    path = config()
    db = open_database(f"sqlite:///{path.rsplit('/', 1)[0]}/wajira.db")
    migrate(db)
    bind(db)
    yield path, db
    db.close()


def store(db, *senders: str) -> list[int]:
    """One text message per sender; returns the inbound row ids in that order."""
    queue = InboundQueue(db)
    queue.store_batch(parse_webhook(wa.message_payload([wa.text(s, f"hello from {s}") for s in senders])))
    ids = {row.wa_id: row.id for row in pending_rows(queue)}
    return [ids[s] for s in senders]


def pending_rows(queue: InboundQueue) -> list:
    return [row for key in queue.due_conversations() for row in queue.pending_for(key)]


def test_status_on_an_empty_database(capsys, storage):
    path, _ = storage
    code, out, _ = run(capsys, "status", "--config", path)
    assert code == 0
    assert "inbound queue" in out and "outbound queue" in out and "AI turns" in out and "poll" in out
    assert "lease                free" in out
    assert out.rstrip().endswith("none")

    code, out, _ = run(capsys, "status", "--config", path, "--json")
    report = json.loads(out)
    assert set(report) == {
        "generated_at",
        "inbound",
        "outbound",
        "ai_turns",
        "poll",
        "csat",
        "recent_failures",
    }
    assert report["csat"] == {"days": 30, "services": {}}
    assert report["inbound"] == {
        "pending": 0,
        "retrying": 0,
        "dead": 0,
        "done": 0,
        "oldest_pending_age_seconds": None,
    }
    assert report["poll"]["lease"] is None and report["poll"]["watermark"] is None
    assert report["recent_failures"] == []


def test_status_shows_satisfaction_per_service_over_30_days(capsys, storage):
    path, db = storage
    ratings = CsatRatings(db)
    now = time.time()
    for request_id, (service, rating, age_days) in enumerate(
        [("support", 5, 1), ("support", 4, 29), ("sales", 2, 3), ("support", 1, 31)], start=1
    ):
        ratings.record(
            request_id=request_id,
            service_id=service,
            issue_key=f"WA-{request_id}",
            conversation_key=f"+52155000000{request_id}",
            wamid=f"wamid.rating{request_id}",
            rating=rating,
            rated_at=now - age_days * 86400,
        )
    code, out, _ = run(capsys, "status", "--config", path, "--json")
    assert code == 0
    # The 31-day-old rating is outside the window.
    assert json.loads(out)["csat"]["services"] == {
        "sales": {"count": 1, "average": 2.0},
        "support": {"count": 2, "average": 4.5},
    }
    code, out, _ = run(capsys, "status", "--config", path)
    assert "satisfaction (last 30 days)" in out
    assert re.search(r"support +4\.50/5 from +2 rating\(s\)", out)


def test_status_shows_queues_poll_and_failures(capsys, storage):
    path, db = storage
    queue = InboundQueue(db)
    dead, retrying, done, _pending = store(
        db, "5215500000001", "5215500000002", "5215500000003", "5215500000004"
    )
    queue.mark_dead(dead, error=f"Jira 400: issuetype: Specify a valid issue type (token {JIRA_TOKEN})")
    queue.mark_retry(retrying, error="Jira 503: Service Unavailable", delay_seconds=60, count_attempt=True)
    queue.mark_done(done, issue_key="WA-7", comment_id="10001")
    outbound = OutboundQueue(db)
    outbound.enqueue_many(
        [
            {
                "dedupe_key": f"k{i}",
                "issue_key": "WA-7",
                "conversation_key": f"c{i}",
                "to_wa_id": "5215500000003",
                "phone_number_id": MAIN_NUMBER,
                "kind": "agent",
                "body": "hi",
            }
            for i in (1, 2)
        ]
    )
    failed = outbound.claim_due("test", limit=1)[0]
    outbound.mark_failed(failed.id, error="Graph 400 (#131026) Message undeliverable", code=131026)
    watermark_ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    PollState(db).save_success("jira", watermark_ms=watermark_ms)
    PollState(db).save_failure("jira", error="Jira 503: Service Unavailable")
    Leases(db).acquire("poll", "host-a:8080", 60)

    code, out, _ = run(capsys, "status", "--config", path, "--json")
    assert code == 0
    report = json.loads(out)
    assert {k: report["inbound"][k] for k in ("pending", "retrying", "dead", "done")} == {
        "pending": 2,
        "retrying": 1,
        "dead": 1,
        "done": 1,
    }
    assert report["inbound"]["oldest_pending_age_seconds"] >= 0
    assert (report["outbound"]["pending"], report["outbound"]["failed"]) == (1, 1)
    poll = report["poll"]
    assert poll["watermark"] == "2026-01-01T00:00:00+00:00" and poll["watermark_ms"] == watermark_ms
    assert poll["last_error"] == "Jira 503: Service Unavailable" and poll["runs"] == 2
    assert poll["lease"]["holder"] == "host-a:8080" and poll["lease"]["until"] > report["generated_at"]
    failures = {(f["queue"], f["id"]): f for f in report["recent_failures"]}
    assert set(failures) == {("inbound", dead), ("inbound", retrying), ("outbound", failed.id)}
    assert failures[("inbound", dead)]["state"] == "dead"
    assert "Specify a valid issue type (token ***)" in failures[("inbound", dead)]["error"]
    assert failures[("inbound", retrying)]["state"] == "retrying"
    assert failures[("outbound", failed.id)]["issue_key"] == "WA-7"
    assert failures[("outbound", failed.id)]["state"] == "failed"

    code, out, _ = run(capsys, "status", "--config", path)
    assert code == 0
    assert "  dead                      1" in out
    assert "lease                host-a:8080 until" in out
    assert "watermark            2026-01-01T00:00:00+00:00" in out
    table = out[out.index("recent failures") :].splitlines()[1:]
    assert table[0].split() == ["queue", "id", "state", "issue", "when", "error"]
    assert any(row.split()[:4] == ["outbound", str(failed.id), "failed", "WA-7"] for row in table)
    assert any(
        "Specify a valid issue type" in row and row.split()[:3] == ["inbound", str(dead), "dead"]
        for row in table
    )


# -- queue retry --------------------------------------------------------------------------------


def test_queue_retry_by_id(capsys, storage):
    path, db = storage
    queue = InboundQueue(db)
    first, second = store(db, "5215500000011", "5215500000012")
    queue.mark_dead(first, error="Jira 400")
    queue.mark_dead(second, error="Jira 400")
    code, out, _ = run(capsys, "queue", "retry", "--config", path, str(first))
    assert code == 0 and "requeued 1 " in out
    assert queue.stats()["dead"] == 1
    assert [row.id for row in pending_rows(queue)] == [first]


def test_queue_retry_all_dead(capsys, storage):
    path, db = storage
    queue = InboundQueue(db)
    for row_id in store(db, "5215500000021", "5215500000022", "5215500000023"):
        queue.mark_dead(row_id, error="Jira 400")
    code, out, _ = run(capsys, "queue", "retry", "--all-dead", "--config", path)
    assert code == 0 and "requeued 3 " in out
    assert queue.stats()["dead"] == 0 and queue.stats()["pending"] == 3


def test_queue_retry_names_ids_that_are_not_dead(capsys, storage):
    path, db = storage
    queue = InboundQueue(db)
    dead, done = store(db, "5215500000031", "5215500000032")
    queue.mark_dead(dead, error="Jira 400")
    queue.mark_done(done, issue_key="WA-1", comment_id="1")
    code, out, err = run(capsys, "queue", "retry", "--config", path, str(dead), str(done), "999999")
    assert code == 1
    assert "requeued 1 " in out  # the dead one still goes back: one typo holds nothing up
    assert f"#{done} was not requeued: it is done, not dead" in err
    assert "#999999 was not requeued: no such inbound row" in err


def test_queue_retry_needs_ids_or_all_dead(capsys, storage):
    path, _ = storage
    with pytest.raises(SystemExit) as exc:
        main(["queue", "retry", "--config", path])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["queue", "retry", "--config", path, "1", "--all-dead"])
    capsys.readouterr()
