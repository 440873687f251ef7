"""The Jira sandbox's Service Management routes (request feedback) over HTTP, their answers
checked against Atlassian's JSM OpenAPI description (postFeedback / getFeedback,
CSATFeedbackFullDTO, ErrorResponse), and its service-desk steering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.jira import JiraSandbox
from tests.support.spec import OpenAPISpec, load_spec, spec_path

EMAIL, TOKEN = "agent@example.com", "sandbox-api-token-not-real"
OPT_IN = {"X-ExperimentalApi": "opt-in"}
JSM_SPEC = "jira-service-management.openapi.json"


@pytest.fixture(scope="module")
def jsm() -> OpenAPISpec:
    return load_spec(spec_path(JSM_SPEC))


@pytest.fixture
def sandbox() -> Iterator[JiraSandbox]:
    with JiraSandbox(email=EMAIL, api_token=TOKEN) as sb:
        yield sb


@pytest.fixture
def http(sandbox: JiraSandbox) -> Iterator[requests.Session]:
    session = requests.Session()
    session.auth = (EMAIL, TOKEN)
    session.headers.update(OPT_IN)
    yield session
    session.close()


def new_issue(sb: JiraSandbox, project: str = "SUP", *, reporter: str | None = None) -> str:
    payload = {
        "fields": {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": "WhatsApp: Ana"}
    }
    with sb.store.lock:
        who = sb.store.agent(reporter) if reporter else sb.store.bot
        return sb.store.create_issue(payload, 3, who).key


def feedback_url(sb: JiraSandbox, key: str) -> str:
    return f"{sb.url}/rest/servicedeskapi/request/{key}/feedback"


def checked(jsm: OpenAPISpec, answer: requests.Response) -> Any:
    """The answer's JSON, after checking it against the schema the spec declares for its status."""
    body = answer.json()
    assert jsm.response_errors(answer.request.method or "", answer.url, answer.status_code, body) == []
    return body


def test_a_rating_is_stored_read_back_and_replaced(sandbox, http, jsm):
    sandbox.make_service_desk("SUP")
    key = new_issue(sandbox)
    sent = {"type": "csat", "rating": 4, "comment": {"body": "Quick and kind"}}
    assert jsm.request_errors("POST", feedback_url(sandbox, key), sent) == []
    answer = http.post(feedback_url(sandbox, key), json=sent)
    assert answer.status_code == 201 and checked(jsm, answer) == sent
    read = http.get(feedback_url(sandbox, key))
    assert read.status_code == 200 and checked(jsm, read) == sent
    again = http.post(feedback_url(sandbox, key), json={"type": "csat", "rating": 2})
    assert again.status_code == 201
    assert sandbox.feedback(key) == {"type": "csat", "rating": 2}  # replaced, comment and all


def test_an_issue_outside_a_service_desk_is_not_a_request(sandbox, http, jsm):
    key = new_issue(sandbox)
    for answer in (
        http.post(feedback_url(sandbox, key), json={"type": "csat", "rating": 4}),
        http.get(feedback_url(sandbox, key)),
        http.post(feedback_url(sandbox, "SUP-404"), json={"type": "csat", "rating": 4}),
    ):
        assert answer.status_code == 404
        body = checked(jsm, answer)
        assert body["errorMessage"] and body["i18nErrorMessage"]["i18nKey"]
        assert "errorMessages" not in body  # JSM's dialect, not the platform's ErrorCollection
    assert sandbox.feedback(key) is None


def test_an_unrated_request_has_no_feedback_to_read(sandbox, http, jsm):
    sandbox.make_service_desk("SUP")
    answer = http.get(feedback_url(sandbox, new_issue(sandbox)))
    assert answer.status_code == 404 and checked(jsm, answer)["errorMessage"]


def test_only_the_reporter_may_rate(sandbox, http, jsm):
    sandbox.make_service_desk("SUP")
    key = new_issue(sandbox, reporter="Agent Smith")
    answer = http.post(feedback_url(sandbox, key), json={"type": "csat", "rating": 5})
    assert answer.status_code == 403 and checked(jsm, answer)["errorMessage"]
    assert sandbox.feedback(key) is None


@pytest.mark.parametrize(
    "body",
    [
        {"type": "csat", "rating": 0},
        {"type": "csat", "rating": 6},
        {"type": "csat", "rating": 4.5},
        {"type": "csat", "rating": "4"},
        {"type": "csat", "rating": True},
        {"type": "csat"},
        {"type": "nps", "rating": 4},
        {"rating": 4},
        {"type": "csat", "rating": 4, "score": 4},
        {"type": "csat", "rating": 4, "comment": "thanks"},
        {"type": "csat", "rating": 4, "comment": {"body": 7}},
        [4],
    ],
)
def test_a_body_that_is_not_csat_feedback_is_refused(sandbox, http, jsm, body):
    sandbox.make_service_desk("SUP")
    key = new_issue(sandbox)
    answer = http.post(feedback_url(sandbox, key), json=body)
    assert answer.status_code == 400 and checked(jsm, answer)["errorMessage"]
    assert sandbox.feedback(key) is None


def test_a_body_that_is_not_json_is_refused(sandbox, http):
    sandbox.make_service_desk("SUP")
    key = new_issue(sandbox)
    answer = http.post(feedback_url(sandbox, key), data=b"rating=4", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 400 and "errorMessage" in answer.json()


def test_the_experimental_resource_wants_the_opt_in_header(sandbox):
    sandbox.make_service_desk("SUP")
    key = new_issue(sandbox)
    answer = requests.post(
        feedback_url(sandbox, key), json={"type": "csat", "rating": 4}, auth=(EMAIL, TOKEN)
    )
    assert answer.status_code == 412 and "X-ExperimentalApi: opt-in" in answer.json()["errorMessage"]
    assert sandbox.feedback(key) is None


def test_auth_faults_and_call_counting_apply(sandbox, http):
    sandbox.make_service_desk("SUP")
    key = new_issue(sandbox)
    rating = {"type": "csat", "rating": 3}
    anonymous = requests.post(feedback_url(sandbox, key), json=rating, headers=OPT_IN)
    assert anonymous.status_code == 401
    sandbox.faults.fail_next(503, path_regex="/feedback$")
    assert http.post(feedback_url(sandbox, key), json=rating).status_code == 503
    assert sandbox.feedback(key) is None  # an outage stores nothing
    assert http.post(feedback_url(sandbox, key), json=rating).status_code == 201
    assert sandbox.calls["POST /rest/servicedeskapi/request/{key}/feedback"] == 3
    assert http.put(feedback_url(sandbox, key), json=rating).status_code == 405


def test_the_project_type_shows_and_the_control_route_sets_it(sandbox, http):
    def project_type() -> str:
        answer = http.get(f"{sandbox.url}/rest/api/3/project/SUP")
        assert answer.status_code == 200
        return str(answer.json()["projectTypeKey"])

    new_issue(sandbox)
    assert project_type() == "software"
    assert requests.post(f"{sandbox.url}/_sandbox/service-desk", json={"project": "SUP"}).status_code == 204
    assert project_type() == "service_desk"
    bad = requests.post(f"{sandbox.url}/_sandbox/service-desk", json={"project": "not a key"})
    assert bad.status_code == 400


def test_the_state_shows_each_issues_feedback(sandbox, http):
    sandbox.make_service_desk("SUP")
    rated, unrated = new_issue(sandbox), new_issue(sandbox)
    http.post(feedback_url(sandbox, rated), json={"type": "csat", "rating": 5}).raise_for_status()
    state = requests.get(f"{sandbox.url}/_sandbox/state").json()
    by_key = {i["key"]: i["feedback"] for i in state["issues"]}
    assert by_key == {rated: {"type": "csat", "rating": 5}, unrated: None}


def test_a_seeded_service_desk_survives_reset_and_a_sprung_one_does_not():
    with JiraSandbox(email=EMAIL, api_token=TOKEN) as sb:
        sb.add_project("HELP")
        sb.make_service_desk("HELP")
        sb.make_service_desk("SUP")
        sb.reset()
        assert sb.store.projects["HELP"].type_key == "service_desk"
        project = sb.store.project("SUP")
        assert project is not None and project.type_key == "software"
