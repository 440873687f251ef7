"""Per-service Jira accounts through the real adapters, replayed from cassettes in
tests/cassettes/jira_adapter/service_accounts/ and checked against Jira's platform OpenAPI
description (every request body and every answer's body).

Two sites: `[jira]` at jira-a.wajira.test and service "sales"'s own account
(`[services.jira]`) at jira-b.wajira.test. A ticket of each service is created on its own
site, each comment goes to its ticket's site, and a poll pass searches each site once.

Re-record with

    WAJIRA_RECORD_CASSETTES=1 python -m pytest tests/integration/test_service_accounts_cassettes.py

which runs against two loopback Jira sandboxes that accept only their own credentials, so a
request made with the wrong account fails the recording. Cassettes are scrubbed as every
cassette is (tests/support/vcr.py): a fake Authorization, no cookies or account headers.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.bootstrap.vendors import connect_jira_accounts
from bot.config import Settings, parse_config
from bot.jira_api.directory import JiraDirectory
from jobs.poll import PollJob
from sandbox.jira import JiraSandbox
from storage.ai_switch import AiSwitch
from storage.customer_window import CustomerWindow
from storage.hot_tickets import HotTickets
from storage.leases import Leases
from storage.polling import HandledComments, PollState
from tests.support.spec import OpenAPISpec, SpecLookupError, jira_spec
from tests.support.vcr import (
    DROPPED_RESPONSE_HEADERS,
    RECORD,
    cassette_files,
    cassette_recorder,
    open_cassette,
    read_cassette,
    recorded,
)

MODULE = "jira_adapter/service_accounts"
SITE_A = "https://jira-a.wajira.test"  # `.test` never resolves: replay cannot reach a network
SITE_B = "https://jira-b.wajira.test"
REDACTED = "Basic REDACTED"
MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "body")
EMAIL_A, EMAIL_B = "bot-a@example.com", "bot-b@example.com"
# Fake secrets: a recording can never carry a real one, and replay never checks them.
TOKEN_A, TOKEN_B = "fake-token-a-for-cassettes", "fake-token-b-for-cassettes"


def settings(url_a: str, url_b: str) -> Settings:
    return parse_config(
        {
            "whatsapp": {
                "verify_token": "v",
                "app_secret": "test-app-secret-0123",
                "access_token": "a",
                "phone_number_id": "1",
            },
            "jira": {"url": url_a, "email": EMAIL_A},
            "openai": {"api_key": "k"},
            "services": [
                {"id": "support", "project_key": "SUP", "default": True},
                {
                    "id": "sales",
                    "project_key": "SAL",
                    "phone_number_ids": ["2"],
                    "jira": {"url": url_b, "email": EMAIL_B},
                },
            ],
        },
        # The secrets as an operator would give them: the environment, by the documented names.
        env={"JIRA_API_TOKEN": TOKEN_A, "WAJIRA_SERVICE_SALES_JIRA_API_TOKEN": TOKEN_B},
    )


@contextlib.contextmanager
def two_sites(name: str) -> Iterator[tuple[Settings, Any, list[JiraSandbox]]]:
    """Settings naming both sites, the open cassette, and (recording) the two sandboxes."""
    with contextlib.ExitStack() as stack:
        sandboxes: list[JiraSandbox] = []
        origins: list[tuple[str, str]] = []
        if RECORD:
            for email, token, account, stored in (
                (EMAIL_A, TOKEN_A, "account-a", SITE_A),
                (EMAIL_B, TOKEN_B, "account-b", SITE_B),
            ):
                sandbox = JiraSandbox(email=email, api_token=token, account_id=account)
                origins.append((sandbox.start(), stored))
                stack.callback(sandbox.stop)
                sandboxes.append(sandbox)
        recorder = cassette_recorder(MODULE, authorization=REDACTED, match_on=MATCH_ON)
        scrub = recorder.before_record_response

        def to_stored(request: Any) -> Any:
            for live, stored in origins:
                request.uri = request.uri.replace(live, stored, 1)
            return request

        def stored_body(response: dict) -> dict:
            body = response["body"]["string"]
            for live, stored in origins:
                if isinstance(body, bytes):
                    body = body.replace(live.encode(), stored.encode())
            response["body"]["string"] = body
            return scrub(response) if scrub else response

        recorder.before_record_request = to_stored
        recorder.before_record_response = stored_body
        cassette = stack.enter_context(open_cassette(recorder, name))
        urls = [live for live, _ in origins] or [SITE_A, SITE_B]
        yield settings(urls[0], urls[1]), cassette, sandboxes


def sites_of(cassette: Any) -> list[tuple[str, str, str]]:
    """(site, method, path) of each call, in order."""
    out = []
    for request, _ in recorded(cassette):
        url = urlsplit(request.uri)
        out.append((f"{url.scheme}://{url.netloc}", request.method, url.path))
    return out


def test_each_service_creates_its_ticket_on_its_own_site() -> None:
    with two_sites("create_per_service.yaml") as (s, cassette, sandboxes):
        jira = connect_jira_accounts(s)
        assert isinstance(jira, JiraDirectory)
        made = {
            project: jira.create_issue(
                project_key=project,
                issue_type="Task",
                summary=f"WhatsApp: {project}",
                description="",
                labels=["whatsapp"],
                properties={"wajira": {"conversation": "+447700900123", "service": service}},
            )
            for project, service in (("SUP", "support"), ("SAL", "sales"))
        }
        jira.add_comment(
            made["SAL"].key, "[WhatsApp] Ana: hello", prop={"kind": "customer", "wamid": "wamid.1"}
        )
        jira.add_comment(made["SUP"].key, "[WhatsApp] Bo: hi", prop={"kind": "customer", "wamid": "wamid.2"})
    assert (made["SUP"].key, made["SAL"].key) == ("SUP-1", "SAL-1")
    assert sites_of(cassette) == [
        (SITE_A, "POST", "/rest/api/3/issue"),
        (SITE_B, "POST", "/rest/api/3/issue"),
        (SITE_B, "POST", "/rest/api/3/issue/SAL-1/comment"),
        (SITE_A, "POST", "/rest/api/3/issue/SUP-1/comment"),
    ]
    [(create_sup, _), (create_sal, _), *_] = recorded(cassette)
    assert json.loads(create_sal.body)["fields"]["project"] == {"key": "SAL"}
    assert json.loads(create_sup.body)["fields"]["project"] == {"key": "SUP"}
    # Each site answers that its own account wrote the comment.
    [(_, on_b), (_, on_a)] = recorded(cassette)[2:]
    assert json.loads(on_b["body"]["string"])["author"]["accountId"] == "account-b"
    assert json.loads(on_a["body"]["string"])["author"]["accountId"] == "account-a"
    if sandboxes:  # recording: each site's own account made its ticket and comment
        a, b = sandboxes
        assert [i["reporter"] for i in a.issues()] == ["account-a"]
        assert [i["reporter"] for i in b.issues()] == ["account-b"]
        assert [c["author"]["accountId"] for c in b.comments("SAL-1")] == ["account-b"]


def test_a_poll_pass_searches_each_site_once(db) -> None:
    with two_sites("poll_per_account.yaml") as (s, cassette, _):
        clock = lambda: 1_800_000_000.0  # noqa: E731 - a fixed instant: the JQL window is in the body
        job = PollJob(
            settings=s,
            jira=connect_jira_accounts(s),
            state=PollState(db, clock=clock),
            handled=HandledComments(db, clock=clock),
            leases=Leases(db, clock=clock),
            switch=AiSwitch(db, clock=clock),
            window=CustomerWindow(db),
            hot=HotTickets(db),
            owner="poller:1",
            clock=clock,
        )
        job.run()
    calls = sites_of(cassette)
    assert sorted(calls) == sorted(
        [
            (SITE_A, "GET", "/rest/api/3/myself"),
            (SITE_A, "GET", "/rest/api/3/search/jql"),
            (SITE_B, "GET", "/rest/api/3/myself"),
            (SITE_B, "GET", "/rest/api/3/search/jql"),
        ]
    )
    jql = {
        urlsplit(r.uri).netloc: parse_qs(urlsplit(r.uri).query)["jql"][0]
        for r, _ in recorded(cassette)
        if urlsplit(r.uri).path.endswith("/search/jql")
    }
    assert jql["jira-a.wajira.test"].startswith('project in ("SUP")')
    assert jql["jira-b.wajira.test"].startswith('project in ("SAL")')


# -- every cassette: scrubbed, and as the spec says -------------------------------------------------


def _interactions() -> Iterator[tuple[str, int, dict, dict]]:
    for path in cassette_files(MODULE):
        for i, interaction in enumerate(read_cassette(path)["interactions"]):
            yield path.name, i, interaction["request"], interaction["response"]


def test_no_cassette_holds_a_credential() -> None:
    assert len(cassette_files(MODULE)) >= 2
    for path in cassette_files(MODULE):
        text = path.read_text(encoding="utf-8")
        for secret in (TOKEN_A, TOKEN_B, "ATATT"):
            assert secret not in text, f"{path.name} holds {secret!r}"
    for name, i, request, response in _interactions():
        auth = [v for k, values in request["headers"].items() if k.lower() == "authorization" for v in values]
        assert auth == [REDACTED], f"{name}#{i}: Authorization {auth}"
        assert not {k.lower() for k in response["headers"]} & DROPPED_RESPONSE_HEADERS, f"{name}#{i}"
        assert request["uri"].startswith((SITE_A + "/rest/api/", SITE_B + "/rest/api/")), request["uri"]


@pytest.fixture(scope="module")
def spec() -> OpenAPISpec:
    return jira_spec()


def test_every_cassette_agrees_with_the_jira_spec(spec: OpenAPISpec) -> None:
    errors_schema = spec.component("ErrorCollection")
    problems: list[str] = []
    for name, i, request, response in _interactions():
        method, url = request["method"], urlsplit(request["uri"])
        path = re.sub(r"^/rest/api/2/", "/rest/api/3/", url.path)
        where = f"{name}#{i} {method} {url.path}"
        try:
            op = spec.operation(method, path)
        except SpecLookupError as exc:
            problems.append(f"{where}: {exc}")
            continue
        problems += [f"{where}: {p}" for p in op.query_errors(url.query)]
        if request["body"]:
            problems += [
                f"{where} request: {p}"
                for p in spec.request_errors(method, path, json.loads(request["body"]))
            ]
        status, text = response["status"]["code"], response["body"]["string"]
        schema = op.response_schema(status) if op.declares(status) else None
        if schema is None and status >= 400:
            schema = errors_schema
        if schema is None:
            problems.append(f"{where}: the spec gives no body for {status}")
        elif text:
            problems += [
                f"{where} {status}: {p}" for p in spec.errors(json.loads(text), schema, direction="response")
            ]
    assert not problems, "\n".join(problems)
