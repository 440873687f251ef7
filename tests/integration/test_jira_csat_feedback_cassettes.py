"""JiraAdapter's CSAT feedback to Jira Service Management, replayed from cassettes in
tests/cassettes/jira_adapter/csat_feedback/ and checked against Atlassian's JSM OpenAPI
description (postFeedback: request body and every answer's body).

Re-record with

    WAJIRA_RECORD_CASSETTES=1 python -m pytest tests/integration/test_jira_csat_feedback_cassettes.py

which runs each test against the loopback Jira sandbox, scrubbed as every cassette is
(tests/support/vcr.py: a fake Authorization, no cookies or account headers). They live in a
folder of their own because test_jira_adapter.py checks its folder against the platform spec,
which has no `/rest/servicedeskapi` paths.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.errors import JiraAuthFailed, JiraRejected
from sandbox.jira import JiraSandbox
from tests.support.spec import OpenAPISpec, SpecLookupError, load_spec, spec_path
from tests.support.vcr import (
    RECORD,
    cassette_files,
    cassette_recorder,
    open_cassette,
    read_cassette,
    recorded,
)

MODULE = "jira_adapter/csat_feedback"
CASSETTE_URL = "http://jira.wajira.test"  # as in test_jira_adapter.py: `.test` never resolves
REDACTED = "Basic REDACTED"
MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "body")
EMAIL = "agent@example.com"
FEEDBACK = "/rest/servicedeskapi/request/{requestIdOrKey}/feedback"


@pytest.fixture(autouse=True)
def api_token(monkeypatch) -> str:
    """A fake secret: a recording can never carry a real one, and replay never checks it."""
    monkeypatch.setenv("JIRA_API_TOKEN", "fake-api-token-for-cassettes")
    return "fake-api-token-for-cassettes"


@dataclass
class Rig:
    url: str
    api_token: str
    cassette: Any
    sandbox: JiraSandbox | None

    def adapter(self) -> JiraAdapter:
        return JiraAdapter.connect(self.url, email=EMAIL, api_token=self.api_token)

    def seed(self, action: Callable[[JiraSandbox], Any]) -> None:
        """Prepare the sandbox when recording; in replay the cassette already holds the result."""
        if self.sandbox is not None:
            action(self.sandbox)


@pytest.fixture
def jira(request, api_token) -> Iterator[Callable[[], Rig]]:
    with contextlib.ExitStack() as stack:

        def start() -> Rig:
            sandbox, live_url = None, None
            if RECORD:
                sandbox = JiraSandbox(email=EMAIL, api_token=api_token)
                live_url = sandbox.start()
                stack.callback(sandbox.stop)
            origin = (live_url, CASSETTE_URL) if live_url else None
            recorder = cassette_recorder(MODULE, authorization=REDACTED, match_on=MATCH_ON, origin=origin)
            cassette = stack.enter_context(open_cassette(recorder, f"{request.node.name}.yaml"))
            return Rig(live_url or CASSETTE_URL, api_token, cassette, sandbox)

        yield start


def seed_request(project: str, *, desk: bool, reporter: str | None = None) -> Callable[[JiraSandbox], None]:
    """`{project}-1`, reported by the bot unless `reporter` names an agent; `desk`: a JSM project."""

    def seed(sb: JiraSandbox) -> None:
        if desk:
            sb.make_service_desk(project)
        payload = {
            "fields": {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": "WhatsApp"}
        }
        with sb.store.lock:
            who = sb.store.agent(reporter) if reporter else sb.store.bot
            sb.store.create_issue(payload, 3, who)

    return seed


def sent_body(rig: Rig) -> Any:
    [(request, _)] = recorded(rig.cassette)
    return json.loads(request.body)


# -- the recorded calls ----------------------------------------------------------------------------


def test_a_rating_is_sent_as_csat_feedback(jira):
    rig = jira()
    rig.seed(seed_request("SUP", desk=True))
    assert rig.adapter().send_csat_feedback("SUP-1", 4) is True
    [(request, response)] = recorded(rig.cassette)
    assert request.method == "POST"
    assert urlsplit(request.uri).path == "/rest/servicedeskapi/request/SUP-1/feedback"
    assert json.loads(request.body) == {"type": "csat", "rating": 4}  # CSATFeedbackFullDTO
    assert request.headers["X-ExperimentalApi"] == "opt-in"
    assert response["status"]["code"] == 201


def test_an_issue_outside_a_service_desk_is_not_rated(jira):
    rig = jira()
    rig.seed(seed_request("DEV", desk=False))
    assert rig.adapter().send_csat_feedback("DEV-1", 5) is False
    assert sent_body(rig) == {"type": "csat", "rating": 5}


def test_a_request_someone_else_reported_is_rejected(jira):
    rig = jira()
    rig.seed(seed_request("SUP", desk=True, reporter="Agent Smith"))
    with pytest.raises(JiraAuthFailed) as err:
        rig.adapter().send_csat_feedback("SUP-1", 3)
    assert err.value.status == 403 and "Only the reporter" in str(err.value)


def test_a_rating_out_of_range_is_rejected(jira):
    rig = jira()
    rig.seed(seed_request("SUP", desk=True))
    with pytest.raises(JiraRejected) as err:
        rig.adapter().send_csat_feedback("SUP-1", 6)
    assert type(err.value) is JiraRejected and err.value.status == 400


# -- every cassette against the spec, and free of secrets ------------------------------------------


@pytest.fixture(scope="module")
def spec() -> OpenAPISpec:
    return load_spec(spec_path("jira-service-management.openapi.json"))


def _interactions() -> Iterator[tuple[str, int, dict, dict]]:
    for path in cassette_files(MODULE):
        for i, interaction in enumerate(read_cassette(path)["interactions"]):
            yield path.name, i, interaction["request"], interaction["response"]


def test_no_cassette_holds_a_credential_or_a_cookie(api_token):
    files = cassette_files(MODULE)
    assert len(files) == 4
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in ("ATATT", api_token, EMAIL):
            assert secret not in text, f"{path.name} holds {secret!r}"
    for name, i, request, response in _interactions():
        auth = [v for k, values in request["headers"].items() if k.lower() == "authorization" for v in values]
        assert auth == [REDACTED], f"{name}#{i}: Authorization {auth}"
        assert not {k.lower() for k in request["headers"]} & {"cookie"}, f"{name}#{i}"
        assert not {k.lower() for k in response["headers"]} & {"set-cookie", "x-aaccountid"}, f"{name}#{i}"


def test_every_cassette_agrees_with_the_jsm_spec(spec):
    problems: list[str] = []
    seen: set[tuple[str, str, int]] = set()
    for name, i, request, response in _interactions():
        method, url = request["method"], urlsplit(request["uri"])
        status = response["status"]["code"]
        where = f"{name}#{i} {method} {url.path} {status}"
        try:
            op = spec.operation(method, url.path)
        except SpecLookupError as exc:
            problems.append(f"{where}: {exc}")
            continue
        seen.add((method, op.template, status))
        problems += [
            f"{where}: request {p}"
            for p in spec.request_errors(method, url.path, json.loads(request["body"]))
        ]
        if not op.declares(status):
            problems.append(f"{where}: the spec declares no such answer")
            continue
        answer = json.loads(response["body"]["string"])
        problems += [f"{where}: {p}" for p in spec.response_errors(method, url.path, status, answer)]
    assert not problems, "\n".join(problems)
    assert seen == {("POST", FEEDBACK, status) for status in (201, 400, 403, 404)}
