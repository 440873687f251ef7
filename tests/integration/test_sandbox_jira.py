"""The Jira sandbox, driven through the real ``jira`` library and ``requests``.

Response bodies are checked against the schemas of Atlassian's published OpenAPI
description (shared/specs/jira-platform-v3.openapi.json) with the tests' one checker
(tests/support/spec.py), so the sandbox cannot drift from the shapes real Jira Cloud returns.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import jira
import pytest
import requests

from sandbox.faults import FaultPlan
from sandbox.jira import JiraSandbox
from sandbox.jira.jql import JqlError, parse
from sandbox.jira.jqleval import parse_date
from tests.support.spec import OpenAPISpec, jira_spec

EMAIL, TOKEN = "agent@example.com", "sandbox-api-token"
REPO = Path(__file__).resolve().parents[2]


def adf(text: str) -> dict:
    paragraph = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
    return {"type": "doc", "version": 1, "content": [paragraph]}


@pytest.fixture
def sandbox():
    sb = JiraSandbox()
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def http(sandbox):
    session = requests.Session()
    session.auth = (EMAIL, TOKEN)
    session.headers["Accept"] = "application/json"
    yield session
    session.close()


def client(url: str, *, server_info: bool = False) -> jira.JIRA:
    # enhanced_search_issues is @cloud_api: without get_server_info the library does not know
    # it talks to Cloud and silently returns None, so search tests ask for serverInfo.
    return jira.JIRA(
        server=url,
        basic_auth=(EMAIL, TOKEN),
        options={"rest_api_version": "3"},
        get_server_info=server_info,
        max_retries=0,
    )


def create(
    http, url: str, project: str = "SUP", summary: str = "WhatsApp +49 151 ***", properties=None, **fields
) -> dict:
    body = {
        "fields": {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": summary, **fields}
    }
    if properties is not None:
        body["properties"] = properties
    r = http.post(f"{url}/rest/api/3/issue", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def comment(http, url: str, key: str, text: str, **extra) -> dict:
    r = http.post(f"{url}/rest/api/3/issue/{key}/comment", json={"body": adf(text), **extra})
    assert r.status_code == 201, r.text
    return r.json()


# -- Atlassian's description, through the one checker (tests/support/spec.py) ---------------------


@pytest.fixture(scope="module")
def spec() -> OpenAPISpec:
    return jira_spec()


def assert_matches_spec(spec: OpenAPISpec, spec_path: str, method: str, response: requests.Response) -> None:
    problems = spec.response_errors(method, spec_path, response.status_code, response.json())
    assert not problems, "\n".join(problems[:20])


# -- auth -----------------------------------------------------------------------------------------


def test_requests_without_valid_credentials_get_jira_style_401(sandbox, spec):
    url = sandbox.url
    for auth in (None, (EMAIL, "wrong-token"), ("other@example.com", TOKEN)):
        r = requests.get(f"{url}/rest/api/3/myself", auth=auth)
        assert r.status_code == 401
        assert r.json()["errorMessages"] and r.json()["errors"] == {}
        assert not spec.errors(r.json(), spec.component("ErrorCollection"))
    r = requests.get(f"{url}/rest/api/3/myself", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 401  # no PAT configured: bearer tokens are refused


def test_bearer_pat_is_accepted_when_configured():
    with JiraSandbox(pat="pat-123", deployment="server") as sb:
        ok = requests.get(f"{sb.url}/rest/api/2/myself", headers={"Authorization": "Bearer pat-123"})
        bad = requests.get(f"{sb.url}/rest/api/2/myself", headers={"Authorization": "Bearer nope"})
        basic = requests.get(f"{sb.url}/rest/api/2/myself", auth=(EMAIL, TOKEN))
    assert ok.status_code == 200 and ok.json()["name"] == "bot-account-id"
    assert bad.status_code == 401
    assert basic.status_code == 200


# -- identity and metadata, validated against the spec ---------------------------------------------


def test_myself_server_info_and_project_metadata_match_the_spec(sandbox, http, spec):
    url = sandbox.url
    me = http.get(f"{url}/rest/api/3/myself")
    assert me.json()["accountId"] == "bot-account-id" and me.json()["timeZone"] == "UTC"
    assert_matches_spec(spec, "/rest/api/3/myself", "GET", me)
    info = http.get(f"{url}/rest/api/3/serverInfo")
    assert info.json()["deploymentType"] == "Cloud"
    assert_matches_spec(spec, "/rest/api/3/serverInfo", "GET", info)
    project = http.get(f"{url}/rest/api/3/project/SUP")
    assert project.json()["key"] == "SUP"
    assert [t["name"] for t in project.json()["issueTypes"]] == ["Task", "Bug"]
    assert_matches_spec(spec, "/rest/api/3/project/{projectIdOrKey}", "GET", project)
    meta = http.get(f"{url}/rest/api/3/issue/createmeta/SUP/issuetypes")
    assert meta.json()["total"] == 2
    assert_matches_spec(spec, "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes", "GET", meta)
    assert http.get(f"{url}/rest/api/3/issue/createmeta/SUP/issuetypes?maxResults=201").status_code == 400
    assert http.get(f"{url}/rest/api/3/project/lowercase").status_code == 404


def test_seeded_project_offers_its_own_issue_types(sandbox):
    sandbox.add_project("HELP", "Help desk", issue_types=("Support",))
    j = client(sandbox.url)
    issue = j.create_issue(
        fields={"project": {"key": "HELP"}, "issuetype": {"name": "Support"}, "summary": "x"}
    )
    assert issue.key == "HELP-1" and issue.fields.issuetype.name == "Support"
    with pytest.raises(jira.JIRAError) as err:
        j.create_issue(fields={"project": {"key": "HELP"}, "issuetype": {"name": "Task"}, "summary": "x"})
    assert err.value.status_code == 400


# -- issues -----------------------------------------------------------------------------------------


def test_create_issue_through_the_jira_library(sandbox, spec, http):
    j = client(sandbox.url)
    issue = j.create_issue(
        fields={
            "project": {"key": "SUP"},
            "issuetype": {"name": "Task"},
            "summary": "WhatsApp: Ana",
            "labels": ["whatsapp"],
            "description": adf("first contact"),
            "customfield_10050": "+4915100000",
        }
    )
    assert (issue.key, issue.id) == ("SUP-1", "10000")
    assert issue.fields.summary == "WhatsApp: Ana" and issue.fields.labels == ["whatsapp"]
    assert issue.fields.status.statusCategory.key == "new"
    stored = sandbox.issue("SUP-1")
    assert stored["description"] == adf("first contact")
    assert stored["custom"] == {"customfield_10050": "+4915100000"}
    assert (stored["status"], stored["statusCategory"]) == ("To Do", "new")
    second = create(http, sandbox.url, properties=None)
    assert second["key"] == "SUP-2" and second["id"] == "10001"
    r = http.get(f"{sandbox.url}/rest/api/3/issue/SUP-1", params={"fields": "summary,comment,status,updated"})
    assert set(r.json()["fields"]) == {"summary", "comment", "status", "updated"}
    assert_matches_spec(spec, "/rest/api/3/issue/{issueIdOrKey}", "GET", r)
    v2 = http.get(f"{sandbox.url}/rest/api/2/issue/sup-1", params={"fields": "description"})
    assert v2.json()["fields"]["description"] == "first contact"  # v2 shows text; the lookup ignores case


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"project": {"key": "SUP"}, "issuetype": {"name": "Task"}}, "summary"),
        ({"issuetype": {"name": "Task"}, "summary": "s"}, "project"),
        ({"project": {"key": "SUP"}, "summary": "s"}, "issuetype"),
        (
            {
                "project": {"key": "SUP"},
                "issuetype": {"name": "Task"},
                "summary": "s",
                "labels": ["two words"],
            },
            "labels",
        ),
        (
            {
                "project": {"key": "SUP"},
                "issuetype": {"name": "Task"},
                "summary": "s",
                "description": "plain",
            },
            "description",
        ),
        (
            {
                "project": {"key": "SUP"},
                "issuetype": {"name": "Task"},
                "summary": "s",
                "priority": {"name": "High"},
            },
            "priority",
        ),
    ],
)
def test_invalid_issue_creation_is_refused_per_field(sandbox, http, spec, fields, field):
    r = http.post(f"{sandbox.url}/rest/api/3/issue", json={"fields": fields})
    assert r.status_code == 400
    assert field in r.json()["errors"] and r.json()["errorMessages"] == []
    assert_matches_spec(spec, "/rest/api/3/issue", "POST", r)
    assert sandbox.issues() == []


def test_unknown_issue_is_404(sandbox, http):
    for path in ("issue/NOPE-9", "issue/NOPE-9/comment", "issue/99999/transitions"):
        r = http.get(f"{sandbox.url}/rest/api/3/{path}")
        assert r.status_code == 404 and r.json()["errorMessages"]
    assert http.get(f"{sandbox.url}/rest/api/3/no/such/route").status_code == 404


def test_issue_properties_round_trip(sandbox, http, spec):
    key = create(http, sandbox.url, properties=[{"key": "wajira", "value": {"phone": "491510"}}])["key"]
    r = http.get(f"{sandbox.url}/rest/api/3/issue/{key}/properties/wajira")
    assert r.json() == {"key": "wajira", "value": {"phone": "491510"}}
    assert_matches_spec(spec, "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}", "GET", r)
    assert http.put(f"{sandbox.url}/rest/api/3/issue/{key}/properties/other", json=[1, 2]).status_code == 201
    assert http.put(f"{sandbox.url}/rest/api/3/issue/{key}/properties/other", json=[3]).status_code == 200
    assert http.get(f"{sandbox.url}/rest/api/3/issue/{key}/properties/missing").status_code == 404
    got = http.get(
        f"{sandbox.url}/rest/api/3/issue/{key}", params={"fields": "summary", "properties": "other"}
    )
    assert got.json()["properties"] == {"other": [3]}
    assert sandbox.issue(key)["properties"] == {"wajira": {"phone": "491510"}, "other": [3]}


def test_edit_issue_updates_fields_and_the_updated_time(sandbox, http):
    key = create(http, sandbox.url, labels=["whatsapp"])["key"]
    before = sandbox.issue(key)["updated_ms"]
    r = http.put(
        f"{sandbox.url}/rest/api/3/issue/{key}",
        json={"fields": {"summary": "renamed"}, "update": {"labels": [{"add": "ai-paused"}]}},
    )
    assert r.status_code == 204
    stored = sandbox.issue(key)
    assert (stored["summary"], stored["labels"]) == ("renamed", ["whatsapp", "ai-paused"])
    assert stored["updated_ms"] > before
    bad = http.put(
        f"{sandbox.url}/rest/api/3/issue/{key}", json={"update": {"labels": [{"add": "has space"}]}}
    )
    assert bad.status_code == 400 and "labels" in bad.json()["errors"]


# -- comments -----------------------------------------------------------------------------------------


def test_v3_comment_with_properties_and_internal_notes(sandbox, http, spec):
    url = sandbox.url
    key = create(http, url)["key"]
    before = sandbox.issue(key)["updated_ms"]
    r = http.post(
        f"{url}/rest/api/3/issue/{key}/comment",
        json={
            "body": adf("[WhatsApp] Ana: hi"),
            "properties": [{"key": "wajira", "value": {"kind": "customer", "wamid": "w1"}}],
        },
    )
    assert r.status_code == 201
    assert r.json()["id"] == "10000" and r.json()["jsdPublic"] is True
    assert_matches_spec(spec, "/rest/api/3/issue/{issueIdOrKey}/comment", "POST", r)
    assert sandbox.issue(key)["updated_ms"] > before  # a comment makes the issue "updated"
    prop = http.get(f"{url}/rest/api/3/comment/10000/properties/wajira")
    assert prop.json() == {"key": "wajira", "value": {"kind": "customer", "wamid": "w1"}}
    assert_matches_spec(spec, "/rest/api/3/comment/{commentId}/properties/{propertyKey}", "GET", prop)
    assert http.put(f"{url}/rest/api/3/comment/10000/properties/extra", json={"a": 1}).status_code == 201
    keys = http.get(f"{url}/rest/api/3/comment/10000/properties")
    assert [k["key"] for k in keys.json()["keys"]] == ["wajira", "extra"]
    assert_matches_spec(spec, "/rest/api/3/comment/{commentId}/properties", "GET", keys)

    j = client(url)
    internal = j.add_comment(key, adf("internal only"), is_internal=True)  # JSM's property
    assert internal.raw["jsdPublic"] is False
    agent_id = sandbox.add_agent_comment(
        key, "Hello from support", visibility={"type": "role", "value": "Developers"}
    )
    note_id = sandbox.add_agent_comment(key, "psst", internal=True)
    stored = {c["id"]: c for c in sandbox.comments(key)}
    assert stored[agent_id]["author"] == {"accountId": "agent-agent-smith", "displayName": "Agent Smith"}
    assert stored[agent_id]["visibility"] == {"type": "role", "value": "Developers"}
    assert stored[note_id]["properties"] == {"sd.public.comment": {"internal": True}}
    assert stored[note_id]["jsdPublic"] is False
    assert stored["10000"]["body"] == adf("[WhatsApp] Ana: hi")


@pytest.mark.parametrize(
    "version, body",
    [
        (3, "a plain string"),
        (
            3,
            {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}],
            },
        ),
        (3, {"type": "paragraph", "content": []}),
        (2, adf("v2 wants a string")),
        (2, "   "),
    ],
)
def test_comment_bodies_of_the_wrong_kind_are_refused(sandbox, http, version, body):
    key = create(http, sandbox.url)["key"]
    r = http.post(f"{sandbox.url}/rest/api/{version}/issue/{key}/comment", json={"body": body})
    assert r.status_code == 400
    assert r.json()["errorMessages"] == [] and "comment" in r.json()["errors"]
    assert sandbox.comments(key) == []


def test_v2_comment_is_a_string_and_v3_reads_it_as_adf(sandbox, http):
    key = create(http, sandbox.url)["key"]
    r = http.post(f"{sandbox.url}/rest/api/2/issue/{key}/comment", json={"body": "line one\nline two"})
    assert r.status_code == 201 and r.json()["body"] == "line one\nline two"
    v3 = http.get(f"{sandbox.url}/rest/api/3/issue/{key}/comment").json()["comments"][0]["body"]
    assert v3["type"] == "doc" and v3["content"][0]["content"][1] == {"type": "hardBreak"}


def test_comment_paging_with_expand_properties(sandbox, http, spec):
    url = sandbox.url
    key = create(http, url)["key"]
    for n in range(7):
        comment(http, url, key, f"message {n}", properties=[{"key": "wajira", "value": {"n": n}}])
    seen, start = [], 0
    while True:
        r = http.get(
            f"{url}/rest/api/3/issue/{key}/comment",
            params={"startAt": start, "maxResults": 3, "orderBy": "created", "expand": "properties"},
        )
        assert_matches_spec(spec, "/rest/api/3/issue/{issueIdOrKey}/comment", "GET", r)
        page = r.json()
        assert page["total"] == 7 and page["startAt"] == start and page["maxResults"] == 3
        seen += [(c["properties"], c["body"]["content"][0]["content"][0]["text"]) for c in page["comments"]]
        start += len(page["comments"])
        if start >= page["total"]:
            break
    assert seen == [([{"key": "wajira", "value": {"n": n}}], f"message {n}") for n in range(7)]
    newest = http.get(
        f"{url}/rest/api/3/issue/{key}/comment", params={"orderBy": "-created", "maxResults": 1}
    )
    assert newest.json()["comments"][0]["id"] == "10006"
    assert "properties" not in newest.json()["comments"][0]  # only with expand=properties
    assert http.get(f"{url}/rest/api/3/issue/{key}/comment", params={"orderBy": "updated"}).status_code == 400
    lib = client(url).comments(key, expand="properties", max_results=2, order_by="created")
    assert [c.id for c in lib] == ["10000", "10001"]


def test_comment_page_size_is_capped():
    with JiraSandbox(comment_page_limit=2) as sb:
        s = requests.Session()
        s.auth = (EMAIL, TOKEN)
        key = create(s, sb.url)["key"]
        for n in range(3):
            comment(s, sb.url, key, f"c{n}")
        page = s.get(f"{sb.url}/rest/api/3/issue/{key}/comment", params={"maxResults": 100}).json()
    assert (page["maxResults"], len(page["comments"]), page["total"]) == (2, 2, 3)


# -- search -----------------------------------------------------------------------------------------


def test_enhanced_search_pages_with_next_page_token_and_no_total(sandbox, http, spec):
    url = sandbox.url
    keys = [create(http, url, project="SRCH", summary=f"s{n}", labels=["whatsapp"])["key"] for n in range(5)]
    create(http, url, project="OTHER", summary="elsewhere", labels=["whatsapp"])
    assert client(url).enhanced_search_issues("project = SRCH") is None  # the library's trap, see client()
    j = client(url, server_info=True)
    jql = "project = SRCH AND labels = whatsapp ORDER BY created ASC"
    found, token = [], None
    while True:
        page = j.enhanced_search_issues(
            jql, nextPageToken=token, maxResults=2, fields=["summary", "updated"], json_result=True
        )
        assert "total" not in page
        found += [(i["key"], i["fields"]["summary"]) for i in page["issues"]]
        token = page.get("nextPageToken")
        assert page["isLast"] is (token is None)
        if token is None:
            break
    assert found == [(k, f"s{n}") for n, k in enumerate(keys)]
    lib = j.enhanced_search_issues(jql, maxResults=0, fields="summary")  # the library pages on its own
    assert [i.key for i in lib] == keys
    r = http.post(f"{url}/rest/api/3/search/jql", json={"jql": jql, "fields": ["summary"], "maxResults": 50})
    assert_matches_spec(spec, "/rest/api/3/search/jql", "POST", r)
    assert [i["key"] for i in r.json()["issues"]] == keys and r.json()["isLast"] is True
    first = http.get(f"{url}/rest/api/3/search/jql", params={"jql": jql, "maxResults": 2}).json()
    for token in (first["nextPageToken"], "not-a-token"):  # a token only continues the query that made it
        bogus = http.get(
            f"{url}/rest/api/3/search/jql", params={"jql": "project = OTHER", "nextPageToken": token}
        )
        assert bogus.status_code == 400


def test_search_returns_ids_only_by_default(sandbox, http, spec):
    ids = [create(http, sandbox.url, project="IDS")["id"] for _ in range(3)]
    r = http.get(f"{sandbox.url}/rest/api/3/search/jql", params={"jql": "project = IDS ORDER BY created"})
    assert r.json() == {"issues": [{"id": i} for i in ids], "isLast": True}
    assert_matches_spec(spec, "/rest/api/3/search/jql", "GET", r)


def test_search_truncates_inline_comments_so_callers_must_page():
    with JiraSandbox(search_inline_comment_limit=3) as sb:
        s = requests.Session()
        s.auth = (EMAIL, TOKEN)
        key = create(s, sb.url)["key"]
        for n in range(5):
            comment(s, sb.url, key, f"c{n}")
        hit = s.get(
            f"{sb.url}/rest/api/3/search/jql", params={"jql": f"key = {key}", "fields": "comment,updated"}
        ).json()["issues"][0]
        inline = hit["fields"]["comment"]
        assert (inline["total"], len(inline["comments"]), inline["maxResults"], inline["startAt"]) == (
            5,
            3,
            3,
            0,
        )
        rest = s.get(
            f"{sb.url}/rest/api/3/issue/{key}/comment", params={"startAt": 3, "orderBy": "created"}
        ).json()
        assert [c["id"] for c in inline["comments"] + rest["comments"]] == [str(10000 + n) for n in range(5)]


def test_search_properties_and_reconcile_issues(sandbox, http):
    created = create(http, sandbox.url, properties=[{"key": "wajira", "value": {"v": 1}}])
    r = http.get(
        f"{sandbox.url}/rest/api/3/search/jql",
        params={
            "jql": "project = SUP",
            "fields": "summary",
            "properties": "wajira",
            "reconcileIssues": created["id"],
        },
    )
    assert r.json()["issues"][0]["properties"] == {"wajira": {"v": 1}}
    too_many = http.get(
        f"{sandbox.url}/rest/api/3/search/jql", params={"jql": "project = SUP", "properties": "a,b,c,d,e,f"}
    )
    assert too_many.status_code == 400


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_classic_search_is_gone_on_cloud(sandbox, http, version, method):
    r = http.request(
        method,
        f"{sandbox.url}/rest/api/{version}/search",
        params={"jql": "project = SUP"},
        json={"jql": "project = SUP"} if method == "POST" else None,
    )
    assert r.status_code == 410
    assert "/rest/api/3/search/jql" in r.json()["errorMessages"][0]


def test_server_deployment_keeps_classic_search_and_has_no_v3():
    with JiraSandbox(deployment="server") as sb:
        s = requests.Session()
        s.auth = (EMAIL, TOKEN)
        for n in range(3):
            r = s.post(
                f"{sb.url}/rest/api/2/issue",
                json={
                    "fields": {
                        "project": {"key": "DC"},
                        "issuetype": {"name": "Task"},
                        "summary": f"s{n}",
                        "description": "text",
                    }
                },
            )
            assert r.status_code == 201, r.text
        page = s.get(
            f"{sb.url}/rest/api/2/search",
            params={"jql": "project = DC ORDER BY key", "startAt": 1, "maxResults": 1, "fields": "summary"},
        ).json()
        assert (page["total"], page["startAt"], page["maxResults"]) == (3, 1, 1)
        assert [i["key"] for i in page["issues"]] == ["DC-2"]
        assert s.get(f"{sb.url}/rest/api/2/serverInfo").json()["deploymentType"] == "Server"
        assert s.get(f"{sb.url}/rest/api/3/myself").status_code == 404
        assert s.get(f"{sb.url}/rest/api/2/search/jql", params={"jql": "project = DC"}).status_code == 404


def test_search_refuses_bad_and_unbounded_jql(sandbox, http):
    for jql in (
        "project = ",
        "ORDER BY updated",
        "",
        "nosuchfield = 1",
        "labels > x",
        'updated > "2026-01-01 10:00:00"',
        "key = SUP-404",
        "statusCategory = Sleeping",
    ):
        r = http.get(f"{sandbox.url}/rest/api/3/search/jql", params={"jql": jql})
        assert r.status_code == 400, jql
        assert r.json()["errorMessages"] and r.json()["errors"] == {}


def test_jql_dates_are_read_in_the_searching_users_time_zone():
    zone = "Pacific/Kiritimati"  # UTC+14: a UTC reading would be off by 14 hours
    with JiraSandbox(time_zone=zone) as sb:
        s = requests.Session()
        s.auth = (EMAIL, TOKEN)
        assert s.get(f"{sb.url}/rest/api/3/myself").json()["timeZone"] == zone
        key = create(s, sb.url, project="TZ")["key"]
        updated_ms = sb.issue(key)["updated_ms"]
        assert sb.issue(key)["updated"].endswith("+1400")

        def hits(jql: str) -> list[str]:
            r = s.get(f"{sb.url}/rest/api/3/search/jql", params={"jql": jql, "fields": "updated"})
            assert r.status_code == 200, r.text
            return [i["key"] for i in r.json()["issues"]]

        moment = datetime.fromtimestamp(updated_ms / 1000, timezone.utc)
        later_minute = moment.replace(second=0, microsecond=0).timestamp() + 120
        as_local = datetime.fromtimestamp(later_minute, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
        as_utc = datetime.fromtimestamp(later_minute, timezone.utc).strftime("%Y/%m/%d %H:%M")
        assert hits(f'project = TZ AND updated < "{as_local}"') == [key]
        assert hits(f'project = TZ AND updated < "{as_utc}"') == []  # read as Kiritimati: 14 h earlier
        assert hits(f"project = TZ AND updated >= {updated_ms} AND updated <= {updated_ms}") == [key]
        assert hits(f"project = TZ AND updated > {updated_ms}") == []
        assert hits("project = TZ AND updated >= -5m") == [key]


def test_jql_status_category_reporter_and_boolean_logic(sandbox, http):
    url = sandbox.url
    a = create(http, url, project="LOG", labels=["whatsapp"])["key"]
    b = create(http, url, project="LOG", labels=["email"])["key"]
    c = create(http, url, project="LOG")["key"]
    sandbox.set_status(b, "Resolved", "done")

    def keys(jql: str) -> list[str]:
        r = http.post(f"{url}/rest/api/3/search/jql", json={"jql": jql, "fields": ["key"]})
        assert r.status_code == 200, r.text
        return [i["key"] for i in r.json()["issues"]]

    assert keys("project = LOG AND statusCategory = Done") == [b]
    assert keys("project = LOG AND statusCategory != Done ORDER BY key ASC") == [a, c]
    assert keys("project = LOG AND labels != whatsapp") == [b]  # issues without labels never match !=
    either = f"reporter = currentUser() AND (labels in (whatsapp, email) OR issuekey = {c}) ORDER BY key"
    assert keys(either) == [a, b, c]
    assert keys("project in (LOG, NONE) AND NOT labels = whatsapp ORDER BY created DESC") == [c, b]
    assert keys(f"issuekey in ({a}, {c}) ORDER BY key DESC") == [c, a]
    assert keys("project = LOG AND labels is EMPTY") == [c]


# -- workflow, attachments, links ---------------------------------------------------------------------


def test_transitions_by_name_through_the_jira_library(sandbox, http, spec):
    key = create(http, sandbox.url)["key"]
    r = http.get(f"{sandbox.url}/rest/api/3/issue/{key}/transitions")
    assert_matches_spec(spec, "/rest/api/3/issue/{issueIdOrKey}/transitions", "GET", r)
    assert [t["name"] for t in r.json()["transitions"]] == ["Start Progress", "Done"]
    j = client(sandbox.url)
    j.transition_issue(key, "Start Progress")
    assert (sandbox.issue(key)["status"], sandbox.issue(key)["statusCategory"]) == (
        "In Progress",
        "indeterminate",
    )
    j.transition_issue(key, "Done")
    assert sandbox.issue(key)["statusCategory"] == "done"
    assert [t["name"] for t in j.transitions(key)] == ["Reopen"]
    bad = http.post(f"{sandbox.url}/rest/api/3/issue/{key}/transitions", json={"transition": {"id": "21"}})
    assert bad.status_code == 400
    j.transition_issue(key, "Reopen")
    assert (sandbox.issue(key)["status"], sandbox.issue(key)["statusCategory"]) == ("To Do", "new")


def test_attachments_need_the_xsrf_header_and_keep_bytes(sandbox, http, spec):
    key = create(http, sandbox.url)["key"]
    data = bytes(range(256)) + b"\r\n--not-a-boundary\r\n\r\n"
    refused = http.post(f"{sandbox.url}/rest/api/3/issue/{key}/attachments", files={"file": ("a.bin", data)})
    assert refused.status_code == 403
    r = http.post(
        f"{sandbox.url}/rest/api/3/issue/{key}/attachments",
        headers={"X-Atlassian-Token": "no-check"},
        files={"file": ("photo.jpg", data, "image/jpeg")},
    )
    assert r.status_code == 200
    assert_matches_spec(spec, "/rest/api/3/issue/{issueIdOrKey}/attachments", "POST", r)
    assert [(a["filename"], a["size"], a["mimeType"]) for a in r.json()] == [
        ("photo.jpg", len(data), "image/jpeg")
    ]
    client(sandbox.url).add_attachment(
        key, attachment=__import__("io").BytesIO(b"%PDF-1"), filename="doc.pdf"
    )
    stored = sandbox.attachments(key)
    assert [(a["filename"], a["bytes"]) for a in stored] == [("photo.jpg", data), ("doc.pdf", b"%PDF-1")]
    content = http.get(r.json()[0]["content"])
    assert content.content == data and content.headers["Content-Type"] == "image/jpeg"


def test_issue_links(sandbox, http):
    a = create(http, sandbox.url)["key"]
    b = create(http, sandbox.url)["key"]
    client(sandbox.url).create_issue_link("Relates", a, b)
    assert sandbox.issue(a)["links"] == [{"type": "Relates", "inward": a, "outward": b}]
    links = http.get(f"{sandbox.url}/rest/api/3/issue/{b}", params={"fields": "issuelinks"}).json()
    assert links["fields"]["issuelinks"][0]["outwardIssue"]["key"] == a
    r = http.post(
        f"{sandbox.url}/rest/api/3/issueLink",
        json={"type": {"name": "Nope"}, "inwardIssue": {"key": a}, "outwardIssue": {"key": b}},
    )
    assert r.status_code == 404


# -- faults, call counting, control routes ---------------------------------------------------------


def test_429_with_retry_after_from_the_fault_plan(sandbox, http):
    key = create(http, sandbox.url)["key"]
    sandbox.faults.fail_next(429, retry_after=7, path_regex=r"/comment$")
    r = http.post(f"{sandbox.url}/rest/api/3/issue/{key}/comment", json={"body": adf("x")})
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert r.json()["errorMessages"]
    assert http.get(f"{sandbox.url}/rest/api/3/myself").status_code == 200  # other paths unaffected
    assert (
        http.post(f"{sandbox.url}/rest/api/3/issue/{key}/comment", json={"body": adf("x")}).status_code == 201
    )
    sandbox.faults.fail_next(429, retry_after=1)
    with pytest.raises(jira.JIRAError) as err:
        client(sandbox.url).issue(key)
    assert err.value.status_code == 429
    assert len(sandbox.comments(key)) == 1  # the refused write changed nothing


def test_503_outage_for_a_while(sandbox, http):
    sandbox.faults.fail_for(0.3, 503)
    assert http.get(f"{sandbox.url}/rest/api/3/myself").status_code == 503
    time.sleep(0.35)
    assert http.get(f"{sandbox.url}/rest/api/3/myself").status_code == 200


def test_fault_plan_counts_latency_and_clear():
    plan = FaultPlan()
    plan.fail_next(500, 2, path_regex="^/a")
    assert plan.check("GET", "/b") is None
    assert [plan.check("GET", "/a").status, plan.check("GET", "/a").status, plan.check("GET", "/a")] == [
        500,
        500,
        None,
    ]
    plan.set_latency(0.05)
    started = time.monotonic()
    assert plan.check("GET", "/x") is None
    assert time.monotonic() - started >= 0.05
    plan.fail_next(429, retry_after=0.5, body={"custom": True})
    fault = plan.check("GET", "/x")
    assert (fault.headers, fault.body) == ({"Retry-After": "0.5"}, {"custom": True})
    plan.fail_for(10)
    plan.clear()
    assert plan.check("GET", "/x") is None and plan.pending() == 0


def test_concurrent_writes_get_unique_ids_and_latency_runs_in_parallel(sandbox, http):
    from concurrent.futures import ThreadPoolExecutor

    key = create(http, sandbox.url)["key"]
    sandbox.faults.set_latency(0.1)

    def post(n: int) -> int:
        return requests.post(
            f"{sandbox.url}/rest/api/3/issue/{key}/comment", json={"body": adf(f"m{n}")}, auth=(EMAIL, TOKEN)
        ).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(post, range(60)))
    assert set(codes) == {201}
    assert len({c["id"] for c in sandbox.comments(key)}) == 60
    assert time.monotonic() - started < 3  # 60 x 0.1 s would take 6 s if serialised


def test_calls_are_counted_by_route_template(sandbox, http):
    key = create(http, sandbox.url)["key"]
    comment(http, sandbox.url, key, "one")
    comment(http, sandbox.url, key, "two")
    http.get(f"{sandbox.url}/rest/api/3/search/jql", params={"jql": "project = SUP"})
    calls = sandbox.calls
    assert calls["POST /rest/api/3/issue"] == 1
    assert calls["POST /rest/api/3/issue/{key}/comment"] == 2
    assert calls["GET /rest/api/3/search/jql"] == 1
    sandbox.reset_calls()
    assert sandbox.calls == {}


def test_control_routes_over_http(sandbox, http):
    url = sandbox.url
    key = create(http, url)["key"]
    assert (
        requests.post(
            f"{url}/_sandbox/faults",
            json={"status": 429, "count": 2, "retry_after": 3, "path_regex": "myself"},
        ).status_code
        == 204
    )
    assert [http.get(f"{url}/rest/api/3/myself").status_code for _ in range(3)] == [429, 429, 200]
    requests.post(f"{url}/_sandbox/faults", json={"status": 503, "for_seconds": 30})
    assert http.get(f"{url}/rest/api/3/myself").status_code == 503
    assert requests.get(f"{url}/_sandbox/calls").status_code == 200  # control routes bypass faults
    assert requests.post(f"{url}/_sandbox/faults/clear").status_code == 204
    assert http.get(f"{url}/rest/api/3/myself").status_code == 200
    note = requests.post(f"{url}/_sandbox/agent-comment", json={"key": key, "text": "hi", "internal": True})
    assert note.status_code == 201
    state = requests.get(f"{url}/_sandbox/state").json()
    assert state["issues"][0]["key"] == key and state["issues"][0]["comments"][0]["jsdPublic"] is False
    assert requests.get(f"{url}/_sandbox/calls").json()["GET /rest/api/3/myself"] == 5
    assert requests.post(f"{url}/_sandbox/reset").status_code == 204
    assert requests.get(f"{url}/_sandbox/state").json() == {"issues": []}
    assert requests.get(f"{url}/_sandbox/calls").json() == {}
    assert (
        requests.post(f"{url}/_sandbox/agent-comment", json={"key": "NOPE-1", "text": "x"}).status_code == 400
    )


def test_advance_clock_moves_write_times(sandbox, http):
    first = create(http, sandbox.url)["key"]
    sandbox.advance_clock(3600)
    second = create(http, sandbox.url)["key"]
    assert sandbox.issue(second)["created_ms"] - sandbox.issue(first)["created_ms"] >= 3_600_000


def test_standalone_process_prints_its_url():
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.jira", "--port", "0", "--email", "e@x", "--api-token", "t"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/rest/api/3/myself", auth=("e@x", "t"), timeout=5).status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


# -- the JQL parser on its own ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "jql",
    [
        'project = SUP AND labels in (whatsapp, "two words") ORDER BY updated ASC, key DESC',
        "(project = A OR project = B) AND NOT statusCategory != Done",
        "reporter = currentUser() && updated > 1700000000000 || key = A-1",
        "issuekey in (A-1, A-2) order by created desc",
    ],
)
def test_jql_parser_accepts_the_poller_subset(jql):
    assert parse(jql).where is not None


@pytest.mark.parametrize(
    "jql",
    [
        "project =",
        "project SUP",
        "(project = SUP",
        "labels = and",
        'project = "open',
        "a & b",
        "project = SUP ORDER updated",
    ],
)
def test_jql_parser_rejects_bad_syntax_with_jira_wording(jql):
    with pytest.raises(JqlError, match="JQL"):
        parse(jql)


def test_jql_dates_have_minute_precision_in_the_given_zone():
    ms = parse_date("2026-11-21 12:03", "Pacific/Kiritimati", now_ms=0)
    assert ms == int(datetime(2026, 11, 20, 22, 3, tzinfo=timezone.utc).timestamp() * 1000)
    assert parse_date("2026/11/21", "UTC", 0) == int(
        datetime(2026, 11, 21, tzinfo=timezone.utc).timestamp() * 1000
    )
    assert parse_date("-1d 2h", "UTC", now_ms=100_000_000) == 100_000_000 - 93_600_000
    with pytest.raises(JqlError):
        parse_date("2026-11-21 12:03:49", "UTC", 0)
