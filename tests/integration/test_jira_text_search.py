"""JiraAdapter's one-page `text ~` search and `add_labels`, over the loopback Jira sandbox and
from cassettes.

The first part drives the real adapter (the `jira` library's `requests` session) against a live
sandbox and counts the requests it sends. The second replays cassettes in
tests/cassettes/jira_adapter/ (the folder test_jira_adapter.py walks against the spec) and checks
each recorded call against Atlassian's OpenAPI description here too. Re-record them with

    WAJIRA_RECORD_CASSETTES=1 python -m pytest tests/integration/test_jira_text_search.py
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.errors import IssueNotFound, JiraRejected
from bot.rules.adf import doc_from_text, text_from_doc
from bot.rules.wiki import escape_wiki
from sandbox.jira import JiraSandbox
from tests.support.spec import OpenAPISpec, jira_spec
from tests.support.vcr import RECORD, cassette_recorder, open_cassette, recorded

EMAIL = "agent@example.com"
FIELDS = ["summary", "description", "comment", "updated"]
AI_JQL = (
    'project = "SUP" AND statusCategory = Done AND text ~ "refund OR parcel OR 1042" '
    'AND key != "SUP-7" ORDER BY updated DESC'
)


@pytest.fixture(autouse=True)
def api_token(monkeypatch) -> str:
    """A fake secret: a recording can never carry a real one, and replay never checks it."""
    monkeypatch.setenv("JIRA_API_TOKEN", "fake-api-token-for-cassettes")
    monkeypatch.setenv("JIRA_TOKEN", "fake-pat-for-cassettes")
    return "fake-api-token-for-cassettes"


# -- seeding, the same for the live sandbox and for recording ------------------------------------


def new_issue(sb: JiraSandbox, summary: str, description: str = "", *, project: str = "SUP") -> str:
    cloud = sb.settings.cloud
    fields: dict[str, Any] = {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": summary}
    if description:
        fields["description"] = doc_from_text(description) if cloud else escape_wiki(description)
    with sb.store.lock:
        return sb.store.create_issue({"fields": fields}, 3 if cloud else 2, sb.store.bot).key


def resolve(sb: JiraSandbox, key: str) -> None:
    sb.set_status(key, "Done", "done")


def seed_resolved_tickets(sb: JiraSandbox) -> None:
    """SUP-1..SUP-7: four Done tickets that match the AI's words, one that is not Done, one that
    does not match, and SUP-7 (the ticket being answered), written in that order."""
    a = new_issue(sb, "Refund for order 1042", "Customer wants the money back")  # SUP-1
    b = new_issue(sb, "Where is my parcel?")  # SUP-2
    sb.add_agent_comment(b, "Re-sent the parcels with a new courier", author="Bruno Díaz")
    c = new_issue(sb, "Damaged box")  # SUP-3
    sb.add_agent_comment(c, "Internal: approve the refund, the courier pays", internal=True)
    d = new_issue(sb, "Refunds in progress")  # SUP-4: not Done
    e = new_issue(sb, "Password reset")  # SUP-5: no word matches
    f = new_issue(sb, "Parcel 1042 is late")  # SUP-6
    current = new_issue(sb, "My refund for parcel 1042?")  # SUP-7
    for key in (a, b, c, e, f, current):
        resolve(sb, key)
    del d


# -- the adapter against a live sandbox -----------------------------------------------------------


@dataclass
class Live:
    sandbox: JiraSandbox
    adapter: JiraAdapter
    sent: list[requests.PreparedRequest] = field(default_factory=list)

    def requests_to(self, method: str, suffix: str) -> list[requests.PreparedRequest]:
        return [r for r in self.sent if r.method == method and urlsplit(r.url or "").path.endswith(suffix)]


@pytest.fixture(params=["cloud", "server"])
def live(request, api_token) -> Iterator[Live]:
    server = request.param == "server"
    pat = "fake-pat-for-cassettes"
    with JiraSandbox(
        email=EMAIL, api_token=api_token, pat=pat if server else None, deployment=request.param
    ) as sb:
        if server:
            adapter = JiraAdapter.connect(sb.url, token=pat)
        else:
            adapter = JiraAdapter.connect(sb.url, email=EMAIL, api_token=api_token)
        rig = Live(sb, adapter)
        adapter._client._session.hooks["response"].append(lambda r, *a, **k: rig.sent.append(r.request))
        yield rig


def query_of(request: requests.PreparedRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query).items()}


def search_path(live: Live) -> str:
    return "/rest/api/3/search/jql" if live.adapter.cloud else "/rest/api/2/search"


def test_max_results_makes_exactly_one_request_even_when_more_issues_match(live: Live):
    for n in range(5):
        new_issue(live.sandbox, f"Refund number {n}")
    found = list(
        live.adapter.search_issues('project = SUP AND text ~ "refund"', fields=["summary"], max_results=2)
    )
    [request] = live.sent
    assert urlsplit(request.url or "").path == search_path(live)
    assert query_of(request)["maxResults"] == "2"
    assert len(found) == 2
    # Without it, every page is followed (the poller's way): all five come back.
    everything = list(live.adapter.search_issues('project = SUP AND text ~ "refund"', fields=["summary"]))
    assert len(everything) == 5


def test_the_ai_search_finds_resolved_tickets_newest_first_without_the_current_one(live: Live):
    seed_resolved_tickets(live.sandbox)
    found = list(live.adapter.search_issues(AI_JQL, fields=FIELDS, max_results=20))
    assert [i["key"] for i in found] == ["SUP-6", "SUP-3", "SUP-2", "SUP-1"]
    assert len(live.requests_to("GET", search_path(live))) == 1
    sup3 = next(i for i in found if i["key"] == "SUP-3")
    # Found through its internal comment: search sees what an agent sees; the caller filters.
    [note] = sup3["fields"]["comment"]["comments"]
    body = note["body"]
    assert "approve the refund" in (text_from_doc(body) if isinstance(body, dict) else body)
    assert set(found[0]["fields"]) == set(FIELDS)


def test_max_results_below_one_is_refused_before_any_request(live: Live):
    with pytest.raises(ValueError, match="max_results"):
        live.adapter.search_issues("project = SUP", fields=["summary"], max_results=0)
    assert live.sent == []


def test_a_bad_text_query_is_rejected_with_jiras_reason(live: Live):
    new_issue(live.sandbox, "Refund")
    with pytest.raises(JiraRejected) as err:
        list(
            live.adapter.search_issues('project = SUP AND text ~ "*fund"', fields=["summary"], max_results=5)
        )
    assert err.value.status == 400 and "is not allowed to start with '*'" in str(err.value)


def test_add_labels_adds_to_the_labels_the_issue_has(live: Live):
    key = new_issue(live.sandbox, "Refund")
    live.adapter.add_labels(key, ["whatsapp"])
    live.adapter.add_labels(key, ["wajira-handover", "whatsapp"])
    assert live.sandbox.issue(key)["labels"] == ["whatsapp", "wajira-handover"]
    assert live.adapter.get_issue(key, fields=["labels"])["fields"]["labels"] == [
        "whatsapp",
        "wajira-handover",
    ]
    [first, second] = live.requests_to("PUT", f"/issue/{key}")
    assert json.loads(second.body or b"") == {
        "update": {"labels": [{"add": "wajira-handover"}, {"add": "whatsapp"}]}
    }
    assert json.loads(first.body or b"") == {"update": {"labels": [{"add": "whatsapp"}]}}


@pytest.mark.parametrize("label", ["hand over", "", "tab\there", "new\nline"])
def test_a_label_jira_would_refuse_is_a_value_error_before_any_request(live: Live, label: str):
    key = new_issue(live.sandbox, "Refund")
    with pytest.raises(ValueError, match="labels"):
        live.adapter.add_labels(key, ["ok", label])
    assert live.sent == []
    assert live.sandbox.issue(key)["labels"] == []


def test_labels_on_a_missing_issue_are_issue_not_found(live: Live):
    with pytest.raises(IssueNotFound) as err:
        live.adapter.add_labels("SUP-404", ["wajira-handover"])
    assert err.value.status == 404


def test_the_sandbox_refuses_a_label_with_a_space_the_way_jira_does(live: Live, api_token: str):
    key = new_issue(live.sandbox, "Refund")
    version = "3" if live.adapter.cloud else "2"
    answer = requests.put(
        f"{live.sandbox.url}/rest/api/{version}/issue/{key}",
        json={"update": {"labels": [{"add": "hand over"}]}},
        auth=(EMAIL, api_token) if live.adapter.cloud else None,
        headers={} if live.adapter.cloud else {"Authorization": "Bearer fake-pat-for-cassettes"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "errorMessages": [],
        "errors": {"labels": "The label 'hand over' contains spaces which is invalid."},
    }
    # `fields.labels` sets them all, `update.labels` adds and removes.
    for body, labels in (
        ({"fields": {"labels": ["a", "b"]}}, ["a", "b"]),
        ({"update": {"labels": [{"remove": "a"}, {"add": "c"}]}}, ["b", "c"]),
    ):
        answer = requests.put(
            f"{live.sandbox.url}/rest/api/{version}/issue/{key}",
            json=body,
            auth=(EMAIL, api_token) if live.adapter.cloud else None,
            headers={} if live.adapter.cloud else {"Authorization": "Bearer fake-pat-for-cassettes"},
            timeout=5,
        )
        assert answer.status_code == 204 and answer.content == b""
        assert live.sandbox.issue(key)["labels"] == labels


# -- cassettes (Cloud), checked against the spec --------------------------------------------------

MODULE = "jira_adapter"
CASSETTE_URL = "http://jira.wajira.test"  # as in test_jira_adapter.py: `.test` never resolves
REDACTED = "Basic REDACTED"
MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "body")


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
            # This module's cassettes keep the `test_` prefix, as test_jira_adapter.py's do.
            cassette = stack.enter_context(open_cassette(recorder, f"{request.node.name}.yaml"))
            return Rig(live_url or CASSETTE_URL, api_token, cassette, sandbox)

        yield start


@pytest.fixture(scope="module")
def spec() -> OpenAPISpec:
    return jira_spec()


def spec_problems(spec: OpenAPISpec, request: Any, response: dict[str, Any]) -> list[str]:
    """What in one recorded call the spec does not describe: query, request body, answer."""
    url = urlsplit(request.uri)
    op = spec.operation(request.method, url.path)
    problems = op.query_errors(url.query)
    if request.body:
        problems += spec.request_errors(request.method, url.path, json.loads(request.body))
    status, text = response["status"]["code"], response["body"]["string"]
    if not op.declares(status):
        return [*problems, f"no answer {status} in the spec"]
    schema = op.response_schema(status) or (spec.component("ErrorCollection") if status >= 400 else None)
    if text:
        assert schema is not None, f"the spec gives no body for {status}"
        problems += spec.errors(json.loads(text), schema, direction="response")
    return problems


def test_cassette_text_search_asks_for_one_page_of_resolved_tickets(jira, spec):
    rig = jira()
    rig.seed(seed_resolved_tickets)
    found = list(rig.adapter().search_issues(AI_JQL, fields=FIELDS, max_results=3))
    assert [i["key"] for i in found] == ["SUP-6", "SUP-3", "SUP-2"]
    [(request, response)] = recorded(rig.cassette)  # the next page is there, and not asked for
    assert urlsplit(request.uri).path == "/rest/api/3/search/jql"
    assert parse_qs(urlsplit(request.uri).query) == {
        "jql": [AI_JQL],
        "maxResults": ["3"],
        "fields": [",".join(FIELDS)],
    }
    answer = json.loads(response["body"]["string"])
    assert answer["isLast"] is False and answer["nextPageToken"]
    assert spec_problems(spec, request, response) == []


def test_cassette_add_labels_puts_an_update_and_gets_204(jira, spec):
    rig = jira()
    rig.seed(lambda sb: new_issue(sb, "Refund"))
    rig.adapter().add_labels("SUP-1", ["wajira-handover"])
    [(request, response)] = recorded(rig.cassette)
    assert (request.method, urlsplit(request.uri).path) == ("PUT", "/rest/api/3/issue/SUP-1")
    assert json.loads(request.body) == {"update": {"labels": [{"add": "wajira-handover"}]}}
    assert response["status"]["code"] == 204 and not response["body"]["string"]
    assert spec_problems(spec, request, response) == []


def test_cassette_add_labels_on_a_missing_issue_is_issue_not_found(jira, spec):
    rig = jira()
    with pytest.raises(IssueNotFound):
        rig.adapter().add_labels("SUP-404", ["wajira-handover"])
    [(request, response)] = recorded(rig.cassette)
    assert response["status"]["code"] == 404
    assert json.loads(response["body"]["string"])["errorMessages"]
    assert spec_problems(spec, request, response) == []
