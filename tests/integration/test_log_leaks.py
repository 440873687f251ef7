"""Vendor error responses never reach a log line: the real Jira, Graph and OpenAI adapters
against a loopback server that answers errors with cookies, odd headers and secret-looking
bodies, logged through the real processor chain (JSON lines) by the real job wrapper and jobs.

What may appear: the status, the vendor's code and its message. What must not: a cookie, a
response or request header (names or values), the Authorization header, the raw body.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot import logs
from bot.ai.client import AiUnavailable, OpenAIAdapter
from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.errors import JiraUnavailable
from bot.whatsapp.graph import GraphAdapter, GraphUnavailable, Recipient
from jobs.scheduler import NudgeableJob

BODY_SECRET = "upstream-echoed-value-5f2b9c0d41e8a7b3"  # what a careless upstream echoes back
COOKIE = "atlassian.xsrf.token=B7TQ-Z2K9-XXXX-YYYY|d1e5f0a9c3b2|lin; JSESSIONID=8C1D2E3F4A5B6C7D8E9F"
ODD_HEADER = ("X-Internal-Route", "jira-node-7.prod.internal")
JIRA_TOKEN, GRAPH_TOKEN, OPENAI_KEY = "jira-api-token-7f3a", "EAAG-graph-token-91b2", "sk-openai-key-4c8d"
FORBIDDEN = (
    BODY_SECRET,
    "atlassian.xsrf",
    "JSESSIONID",
    "8C1D2E3F4A5B6C7D8E9F",
    "Set-Cookie",
    "set-cookie",
    ODD_HEADER[0],
    ODD_HEADER[1],
    "<html",
    "Bad Gateway</",
    "stackTrace",
    "response headers",
    "request headers",
    JIRA_TOKEN,
    GRAPH_TOKEN,
    OPENAI_KEY,
    "Authorization",
    "Basic ",
    "Bearer ",
)


class _Answer:
    status = 500
    headers: tuple[tuple[str, str], ...] = ()
    body = b""


@pytest.fixture
def upstream() -> Iterator[tuple[str, type[_Answer]]]:
    """A loopback server answering every request with `_Answer`'s status, headers and body."""
    answer = type("Answer", (_Answer,), {})

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = _reply

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answer
    finally:
        server.shutdown()
        server.server_close()


def answer_with(answer: type[_Answer], status: int, body: bytes, content_type: str) -> None:
    answer.status, answer.body = status, body
    answer.headers = [
        ("Content-Type", content_type),
        ("Set-Cookie", COOKIE),
        ("Set-Cookie", "JSESSIONID=8C1D2E3F4A5B6C7D8E9F; Path=/; HttpOnly"),
        ODD_HEADER,
    ]


def logged(fn: Callable[[], object]) -> tuple[list[dict], str]:
    """Run `fn` as a scheduled job does (a failure is logged with its traceback) and log
    its error the way the jobs do; return the JSON events and the raw text."""
    stream = io.StringIO()
    logs.configure("debug", "json", secrets=[JIRA_TOKEN, GRAPH_TOKEN, OPENAI_KEY], stream=stream)
    try:
        NudgeableJob("probe", fn)()
        try:
            fn()
        except Exception as exc:
            logs.get_logger("jobs.probe").warning("probe_failed", error=str(exc), exc=exc)
    finally:
        logs.configure("warning", "json")
    text = stream.getvalue()
    return [json.loads(line) for line in text.splitlines()], text


def assert_clean(text: str) -> None:
    leaked = [word for word in FORBIDDEN if word in text]
    assert not leaked, f"leaked {leaked} in:\n{text}"


def by_event(events: list[dict], name: str) -> dict:
    return next(e for e in events if e["event"] == name)


# -- Jira ---------------------------------------------------------------------------------------


def jira_adapter(url: str) -> JiraAdapter:
    return JiraAdapter.connect(url, email="bot@example.com", api_token=JIRA_TOKEN, timeout=5)


def test_a_jira_error_logs_status_code_and_message_only(upstream):
    url, answer = upstream
    body = {
        "errorMessages": ["Jira is down for maintenance"],
        "errorCode": "SERVICE_UNAVAILABLE",
        "errors": {},
        "stackTrace": f"at com.atlassian... token={BODY_SECRET}",
    }
    answer_with(answer, 503, json.dumps(body).encode(), "application/json;charset=UTF-8")
    adapter = jira_adapter(url)

    with pytest.raises(JiraUnavailable) as caught:
        adapter.get_issue("WA-1", fields=["summary"])
    assert (caught.value.status, caught.value.code) == (503, "SERVICE_UNAVAILABLE")
    assert str(caught.value) == "Jira 503: Jira is down for maintenance"

    events, text = logged(lambda: adapter.get_issue("WA-1", fields=["summary"]))
    assert_clean(text)
    failed = by_event(events, "job_failed")  # Jira down: a warning with its message, no traceback
    assert (failed["level"], failed["error"]) == ("warning", "Jira 503: Jira is down for maintenance")
    assert "exception" not in failed
    assert by_event(events, "probe_failed")["error"] == "Jira 503: Jira is down for maintenance"


def test_a_rejected_jira_call_logs_its_traceback_without_the_vendors_error(upstream):
    url, answer = upstream
    body = {"errorMessages": ["The JQL query is invalid"], "errors": {}, "stackTrace": f"token={BODY_SECRET}"}
    answer_with(answer, 400, json.dumps(body).encode(), "application/json;charset=UTF-8")
    adapter = jira_adapter(url)

    events, text = logged(lambda: adapter.get_issue("WA-1", fields=["summary"]))
    assert_clean(text)
    failed = by_event(events, "job_failed")
    assert failed["level"] == "error"
    assert "JiraRejected: Jira 400: The JQL query is invalid" in failed["exception"]
    assert "JIRAError" not in failed["exception"]  # the library's exception is not chained in


def test_a_proxy_page_in_front_of_jira_is_described_not_quoted(upstream):
    url, answer = upstream
    page = f"<html><body><h1>502 Bad Gateway</h1><!-- upstream token {BODY_SECRET} --></body></html>"
    answer_with(answer, 502, page.encode(), "text/html")
    adapter = jira_adapter(url)

    events, text = logged(lambda: adapter.myself())
    assert_clean(text)
    message = by_event(events, "probe_failed")["error"]
    assert message == f"Jira 502: no Jira error message (text/html, {len(page)} bytes)"


# -- Graph --------------------------------------------------------------------------------------


def graph_adapter(url: str) -> GraphAdapter:
    return GraphAdapter.connect(base_url=url, api_version="v23.0", access_token=GRAPH_TOKEN, timeout=5)


def test_a_proxy_page_in_front_of_graph_is_described_not_quoted(upstream):
    url, answer = upstream
    page = f"<html>502 Bad Gateway</html><!-- {BODY_SECRET} -->"
    answer_with(answer, 502, page.encode(), "text/html; charset=utf-8")
    adapter = graph_adapter(url)

    with pytest.raises(GraphUnavailable) as caught:
        adapter.send_text("106540352242922", Recipient(wa_id="447700900123"), "hi")
    assert caught.value.status == 502 and caught.value.details == ""

    events, text = logged(lambda: adapter.send_text("106540352242922", Recipient(wa_id="447700900123"), "hi"))
    assert_clean(text)
    assert "447700900123" not in text  # the customer's number is masked too
    message = by_event(events, "probe_failed")["error"]
    assert message == f"Graph HTTP 502: not a Graph error (text/html, {len(page)} bytes)"
    assert "GraphUnavailable: Graph HTTP 502" in by_event(events, "job_failed")["exception"]


def test_a_graph_error_logs_status_code_and_message_only(upstream):
    url, answer = upstream
    body = {
        "error": {
            "message": "(#131000) Something went wrong",
            "type": "OAuthException",
            "code": 131000,
            "error_data": {"details": "Something went wrong"},
            "fbtrace_id": "AbC123xyz",
            "debug_echo": BODY_SECRET,
        }
    }
    answer_with(answer, 500, json.dumps(body).encode(), "application/json")
    adapter = graph_adapter(url)

    events, text = logged(lambda: adapter.mark_read("106540352242922", "wamid.X"))
    assert_clean(text)
    assert by_event(events, "probe_failed")["error"] == "Graph 500 (#131000) Something went wrong"


# -- OpenAI -------------------------------------------------------------------------------------


def openai_adapter(url: str) -> OpenAIAdapter:
    return OpenAIAdapter.connect(api_key=OPENAI_KEY, base_url=url + "/v1", timeout=5)


def ask(adapter: OpenAIAdapter) -> Callable[[], object]:
    return lambda: adapter.complete(model="gpt-test", messages=[{"role": "user", "content": "hi"}])


def test_an_openai_error_logs_status_code_and_message_only(upstream):
    url, answer = upstream
    body = {
        "error": {
            "message": "The server is overloaded, try again later.",
            "type": "server_error",
            "code": "server_overloaded",
            "param": None,
            "internal": BODY_SECRET,
        }
    }
    answer_with(answer, 503, json.dumps(body).encode(), "application/json")
    adapter = openai_adapter(url)

    with pytest.raises(AiUnavailable) as caught:
        ask(adapter)()
    assert (caught.value.status, caught.value.code) == (503, "server_overloaded")

    events, text = logged(ask(adapter))
    assert_clean(text)
    assert (
        by_event(events, "probe_failed")["error"] == "OpenAI 503: The server is overloaded, try again later."
    )
    assert "AiUnavailable: OpenAI 503" in by_event(events, "job_failed")["exception"]
    assert "InternalServerError" not in by_event(events, "job_failed")["exception"]


def test_a_proxy_page_in_front_of_openai_is_described_not_quoted(upstream):
    url, answer = upstream
    page = f"<html>502 Bad Gateway</html><!-- {BODY_SECRET} -->"
    answer_with(answer, 502, page.encode(), "text/html")

    events, text = logged(ask(openai_adapter(url)))
    assert_clean(text)
    assert by_event(events, "probe_failed")["error"] == (
        f"OpenAI 502: no OpenAI error message (text/html, {len(page)} characters)"
    )


# -- a job's own logging, end to end ------------------------------------------------------------


def test_the_ai_job_logs_and_notes_an_openai_failure_without_the_response(upstream, db_url):
    """The AI job on real storage with the real OpenAI adapter: its retry log line and, once
    it gives up, the internal note on the ticket hold OpenAI's status and message only."""
    from storage.db import bind, open_database
    from storage.schema import migrate
    from tests.integration.test_ai_job import DEBOUNCE, KEY, World, settings

    url, answer = upstream
    body = {
        "error": {
            "message": "Incorrect API key provided: sk-op***4c8d.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "param": None,
            "echo": BODY_SECRET,
        }
    }
    answer_with(answer, 401, json.dumps(body).encode(), "application/json")
    db = open_database(db_url)
    migrate(db)
    bind(db)
    try:
        w = World(db, settings())
        w.job.ai = openai_adapter(url)
        w.customer("hi")
        w.cycle()
        stream = io.StringIO()
        logs.configure("info", "json", secrets=[OPENAI_KEY], stream=stream)
        try:
            w.cycle(DEBOUNCE + 1)
        finally:
            logs.configure("warning", "json")
    finally:
        db.close()
    text = stream.getvalue()
    assert_clean(text)
    failed = by_event([json.loads(line) for line in text.splitlines()], "ai_turn_failed")
    assert failed["error"] == "AiRejected: OpenAI 401: Incorrect API key provided: sk-op***4c8d."
    (note,) = w.jira.notes(KEY)
    assert_clean(note["text"])
    assert "OpenAI 401: Incorrect API key provided" in note["text"]
