"""`JiraAdapter.send_csat_feedback` live against the loopback Jira sandbox, and against servers
that answer as no Jira would (an HTML page, a redirect to another host)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.errors import JiraAuthFailed, JiraRejected, JiraUnavailable, RateLimited
from sandbox.httpserver import LoopbackServer
from sandbox.jira import JiraSandbox

EMAIL, TOKEN = "agent@example.com", "csat-api-token-not-real"


@pytest.fixture
def sandbox() -> Iterator[JiraSandbox]:
    with JiraSandbox(email=EMAIL, api_token=TOKEN) as sb:
        yield sb


def adapter_for(url: str, outcomes: list[str] | None = None) -> JiraAdapter:
    def observe(operation: str, outcome: str, seconds: float) -> None:
        if outcomes is not None:
            outcomes.append(outcome)

    return JiraAdapter.connect(url, email=EMAIL, api_token=TOKEN, observe=observe)


def new_issue(sb: JiraSandbox, project: str = "SUP", *, reporter: str | None = None) -> str:
    payload = {
        "fields": {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": "WhatsApp: Ana"}
    }
    with sb.store.lock:
        who = sb.store.agent(reporter) if reporter else sb.store.bot
        return sb.store.create_issue(payload, 3, who).key


def test_a_service_desk_request_takes_the_rating(sandbox):
    sandbox.make_service_desk("SUP")
    key = new_issue(sandbox)
    adapter = adapter_for(sandbox.url)
    assert adapter.send_csat_feedback(key, 4) is True
    assert sandbox.feedback(key) == {"type": "csat", "rating": 4}
    assert adapter.send_csat_feedback(key, 5) is True  # a retry replaces, never adds
    assert sandbox.feedback(key) == {"type": "csat", "rating": 5}


def test_a_software_project_issue_is_not_a_request(sandbox):
    key = new_issue(sandbox, "DEV")
    outcomes: list[str] = []
    assert adapter_for(sandbox.url, outcomes).send_csat_feedback(key, 4) is False
    assert adapter_for(sandbox.url).send_csat_feedback("DEV-404", 4) is False
    assert sandbox.feedback(key) is None and outcomes == ["ok"]


def test_a_key_is_quoted_into_the_path(sandbox):
    sandbox.make_service_desk("SUP")
    new_issue(sandbox)
    adapter = adapter_for(sandbox.url)
    sent: list[str] = []
    adapter._client._session.hooks["response"].append(lambda r, *a, **k: sent.append(r.request.url))
    # Unquoted, "/.." would walk the path to another issue's resource.
    assert adapter.send_csat_feedback("SUP-1/../SUP-1", 4) is False
    assert sent == [f"{sandbox.url}/rest/servicedeskapi/request/SUP-1%2F..%2FSUP-1/feedback"]
    assert sandbox.feedback("SUP-1") is None


def test_a_request_someone_else_reported_is_rejected(sandbox):
    sandbox.make_service_desk("SUP")
    key = new_issue(sandbox, reporter="Agent Smith")
    with pytest.raises(JiraRejected) as err:
        adapter_for(sandbox.url).send_csat_feedback(key, 4)
    assert err.value.status == 403 and isinstance(err.value, JiraAuthFailed)
    assert "Only the reporter" in str(err.value)


@pytest.mark.parametrize("rating", [0, 6])
def test_a_rating_out_of_range_is_rejected_with_jiras_reason(sandbox, rating):
    sandbox.make_service_desk("SUP")
    key = new_issue(sandbox)
    outcomes: list[str] = []
    with pytest.raises(JiraRejected) as err:
        adapter_for(sandbox.url, outcomes).send_csat_feedback(key, rating)
    assert type(err.value) is JiraRejected and err.value.status == 400
    assert "between 1 and 5" in str(err.value) and outcomes == ["JiraRejected"]


def test_an_outage_is_unavailable_and_429_is_rate_limited(sandbox):
    sandbox.make_service_desk("SUP")
    key = new_issue(sandbox)
    adapter = adapter_for(sandbox.url)
    sandbox.faults.fail_next(503)
    with pytest.raises(JiraUnavailable) as down:
        adapter.send_csat_feedback(key, 4)
    assert type(down.value) is JiraUnavailable and down.value.status == 503
    sandbox.faults.fail_next(429, retry_after=7)
    with pytest.raises(RateLimited) as limited:
        adapter.send_csat_feedback(key, 4)
    assert limited.value.retry_after == 7.0
    assert sandbox.feedback(key) is None


class FixedAnswer:
    """A server that answers every request alike and remembers what it was sent."""

    def __init__(
        self, status: str, content_type: str, body: bytes, headers: tuple[tuple[str, str], ...] = ()
    ):
        self.status, self.body = status, body
        self.headers = [("Content-Type", content_type), *headers]
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.seen.append(environ)
        start_response(self.status, self.headers)
        return [self.body]


@pytest.mark.parametrize(
    "status",
    ["200 OK", "201 Created", "404 Not Found", "502 Bad Gateway"],
)
def test_an_html_page_is_unavailable_whatever_its_status(status):
    app = FixedAnswer(status, "text/html", b"<html><body>Please log in</body></html>")
    with LoopbackServer(app) as server:
        outcomes: list[str] = []
        with pytest.raises(JiraUnavailable):
            adapter_for(server.url, outcomes).send_csat_feedback("SUP-1", 4)
    assert outcomes == ["JiraUnavailable"]


def test_a_garbage_body_is_unavailable():
    with LoopbackServer(FixedAnswer("201 Created", "application/json", b"[1, 2")) as server:
        with pytest.raises(JiraUnavailable):
            adapter_for(server.url).send_csat_feedback("SUP-1", 4)


def test_a_redirect_is_not_followed_with_the_credentials():
    elsewhere = FixedAnswer("201 Created", "application/json", b'{"type": "csat", "rating": 4}')
    with LoopbackServer(elsewhere) as other:
        moved = FixedAnswer(
            "307 Temporary Redirect", "text/plain", b"", (("Location", f"{other.url}/steal"),)
        )
        with LoopbackServer(moved) as server:
            with pytest.raises(JiraUnavailable):
                adapter_for(server.url).send_csat_feedback("SUP-1", 4)
    assert len(moved.seen) == 1 and elsewhere.seen == []
    sent = moved.seen[0]
    assert sent["PATH_INFO"] == "/rest/servicedeskapi/request/SUP-1/feedback"
    assert sent["HTTP_X_EXPERIMENTALAPI"] == "opt-in"
