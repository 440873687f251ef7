"""JiraAdapter against recorded Jira answers (vcrpy cassettes in tests/cassettes/jira_adapter/).

Replay is the default: no server, network or secret is needed, and a request the cassette does
not hold (another URL, query or JSON body) fails the test. Re-record every cassette with

    WAJIRA_RECORD_CASSETTES=1 python -m pytest tests/integration/test_jira_adapter.py

which runs each test against the loopback Jira sandbox (sandbox/jira). The last tests walk every
cassette and check each recorded body against Atlassian's OpenAPI description, so a cassette
cannot teach the adapter a shape real Jira never sends.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import vcr

from bot.jira_api.adapter import MAX_HOLD_SECONDS, IssueRef, JiraAdapter
from bot.jira_api.errors import (
    IssueNotFound,
    JiraAuthFailed,
    JiraRejected,
    JiraUnavailable,
    RateLimited,
)
from bot.rules.adf import doc_from_text, text_from_doc
from bot.rules.wiki import escape_wiki, unescape_wiki
from sandbox.httpserver import LoopbackServer
from sandbox.jira import JiraSandbox, api_search
from tests.support.spec import OpenAPISpec, SpecLookupError, jira_spec
from tests.support.vcr import (
    DROPPED_RESPONSE_HEADERS,
    RECORD,
    cassette_files,
    cassette_recorder,
    open_cassette,
    read_cassette,
)

MODULE = "jira_adapter"

# One base URL in every cassette. While recording, the sandbox listens on a free loopback port
# and the recorder rewrites that origin to CASSETTE_URL in each stored URI and response body;
# in replay the adapter is pointed at CASSETTE_URL itself. Replay can then match on the whole
# URL (host and port included) plus the JSON body, with no fixed port that might be taken and no
# lenient matcher that would let a request to the wrong host pass. `.test` never resolves (RFC 6761).
CASSETTE_URL = "http://jira.wajira.test"
REDACTED = "Basic REDACTED"
MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "body")
EMAIL = "agent@example.com"
SINCE = 1_767_225_600.0  # 2026-01-01T00:00Z: a fixed window start keeps the recorded JQL replayable


# -- fake secrets and the recorder ----------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    email: str
    api_token: str
    pat: str


@pytest.fixture(autouse=True)
def credentials(monkeypatch) -> Credentials:
    """Fake secrets for every test. They override any real JIRA_API_TOKEN/JIRA_TOKEN in the
    shell, so a recording can never carry one; the sandbox is started with these when recording,
    and replay never checks them."""
    monkeypatch.setenv("JIRA_API_TOKEN", "fake-api-token-for-cassettes")
    monkeypatch.setenv("JIRA_TOKEN", "fake-pat-for-cassettes")
    return Credentials(EMAIL, os.environ["JIRA_API_TOKEN"], os.environ["JIRA_TOKEN"])


def _recorder(live_url: str | None) -> vcr.VCR:
    origin = (live_url, CASSETTE_URL) if live_url else None
    return cassette_recorder(MODULE, authorization=REDACTED, match_on=MATCH_ON, origin=origin)


@dataclass
class Rig:
    """One test's cassette, the sandbox behind it when recording, and what the adapter sent."""

    url: str
    credentials: Credentials
    cassette: Any
    sandbox: JiraSandbox | None
    sent: list[requests.PreparedRequest] = field(default_factory=list)
    outcomes: list[tuple[str, str]] = field(default_factory=list)

    def adapter(self, *, server: bool = False, api_token: str | None = None) -> JiraAdapter:
        def observe(operation: str, outcome: str, seconds: float) -> None:
            self.outcomes.append((operation, outcome))

        if server:
            adapter = JiraAdapter.connect(self.url, token=self.credentials.pat, observe=observe)
        else:
            adapter = JiraAdapter.connect(
                self.url,
                email=self.credentials.email,
                api_token=api_token or self.credentials.api_token,
                observe=observe,
            )
        # A response hook on the library's session sees each request as sent, credentials
        # included, which the cassette only keeps redacted.
        adapter._client._session.hooks["response"].append(lambda r, *a, **k: self.sent.append(r.request))
        return adapter

    def seed(self, action: Callable[[JiraSandbox], Any]) -> None:
        """Prepare the sandbox when recording; in replay the cassette already holds the result."""
        if self.sandbox is not None:
            action(self.sandbox)

    def requests_to(self, method: str, path_suffix: str) -> list[requests.PreparedRequest]:
        return [r for r in self.sent if r.method == method and urlsplit(r.url).path.endswith(path_suffix)]


@pytest.fixture
def jira(request, credentials, monkeypatch) -> Iterator[Callable[..., Rig]]:
    """`jira()` opens this test's cassette (`jira(deployment="server")` for Server/DC).

    `comment_page` and `search_page` shrink the sandbox's pages while recording, the way Jira
    answers with fewer items than `maxResults` asks for; replay takes the pages from the cassette.
    """
    rigs: list[Rig] = []
    with contextlib.ExitStack() as stack:

        def start(
            *, deployment: str = "cloud", comment_page: int = 5000, search_page: int | None = None
        ) -> Rig:
            assert not rigs, "one cassette per test"
            name = f"{request.node.name}.yaml"  # this module's cassettes keep the `test_` prefix
            sandbox, live_url = None, None
            if RECORD:
                if search_page:
                    _limit_search_pages(monkeypatch, search_page)
                sandbox = JiraSandbox(
                    email=credentials.email,
                    api_token=credentials.api_token,
                    pat=credentials.pat if deployment == "server" else None,
                    deployment=deployment,
                    comment_page_limit=comment_page,
                )
                live_url = sandbox.start()
                stack.callback(sandbox.stop)
            cassette = stack.enter_context(open_cassette(_recorder(live_url), name))
            rigs.append(Rig(live_url or CASSETTE_URL, credentials, cassette, sandbox))
            return rigs[-1]

        yield start


def _limit_search_pages(monkeypatch, size: int) -> None:
    monkeypatch.setattr(api_search, "MAX_PAGE_WITH_FIELDS", size)  # Cloud /search/jql
    classic = api_search.search_classic

    def capped(sb, req):  # Server/DC /search: an instance whose max results setting is `size`
        req.query["maxResults"] = [str(min(req.int_arg("maxResults", 50), size))]
        return classic(sb, req)

    # Before JiraSandbox() is built: its router takes the handler at construction.
    monkeypatch.setattr(api_search, "search_classic", capped)


# -- seeding the sandbox (recording only) --------------------------------------------------------


def seed_issue(
    sb: JiraSandbox, *, project: str = "SUP", prop: dict | None = None, days_ago: float = 0
) -> str:
    payload: dict[str, Any] = {
        "fields": {
            "project": {"key": project},
            "issuetype": {"name": "Task"},
            "summary": "WhatsApp +49 151 ***",
        }
    }
    if prop is not None:
        payload["properties"] = [{"key": "wajira", "value": prop}]
    with sb.store.lock:
        sb.store.clock.offset_ms = -int(days_ago * 86_400_000)
        try:
            issue = sb.store.create_issue(payload, 3 if sb.settings.cloud else 2, sb.store.bot)
        finally:
            sb.store.clock.offset_ms = 0
    return issue.key


def seed_comment(
    sb: JiraSandbox, key: str, text: str, *, prop: Any = None, agent: bool = False, internal: bool = False
) -> str:
    if agent or internal:
        return sb.add_agent_comment(key, text, internal=internal)
    payload: dict[str, Any] = {"body": doc_from_text(text) if sb.settings.cloud else escape_wiki(text)}
    if prop is not None:
        payload["properties"] = [{"key": "wajira", "value": prop}]
    with sb.store.lock:
        issue = sb.store.find_issue(key)
        return sb.store.add_comment(issue, payload, 3 if sb.settings.cloud else 2, sb.store.bot).id


def body_of(request: requests.PreparedRequest) -> Any:
    return json.loads(request.body)


def query_of(request: requests.PreparedRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


def adf_nodes(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("content", []):
        yield from adf_nodes(child)


# -- Cloud: identity, writes, finding what we wrote ----------------------------------------------


def test_myself_returns_the_bot_account_over_basic_auth(jira):
    rig = jira()
    me = rig.adapter().myself()
    assert me["accountId"] == "bot-account-id" and me["timeZone"] == "UTC"
    [sent] = rig.sent
    assert urlsplit(sent.url).path == "/rest/api/3/myself"
    assert sent.headers["Authorization"].startswith("Basic ")  # email + API token; redacted on disk
    assert rig.outcomes == [("myself", "ok")]


def test_create_issue_sends_adf_labels_and_properties_in_one_request(jira):
    rig = jira()
    text = "First message from Ana\n\nShe needs help with order 42"
    prop = {"kind": "customer", "wamid": "wamid.HBgN001", "phone": "+4915100000001"}
    ref = rig.adapter().create_issue(
        project_key="SUP",
        issue_type="Task",
        summary="WhatsApp: Ana",
        description=text,
        labels=["whatsapp", "de"],
        properties={"wajira": prop},
    )
    assert ref == IssueRef(key="SUP-1", id="10000")
    [create] = rig.sent
    assert (create.method, urlsplit(create.url).path) == ("POST", "/rest/api/3/issue")
    assert body_of(create) == {
        "fields": {
            "project": {"key": "SUP"},
            "issuetype": {"name": "Task"},
            "summary": "WhatsApp: Ana",
            "description": doc_from_text(text),
            "labels": ["whatsapp", "de"],
        },
        "properties": [{"key": "wajira", "value": prop}],
    }
    rig.seed(lambda sb: _assert_stored_issue(sb, prop))


def _assert_stored_issue(sb: JiraSandbox, prop: dict) -> None:
    stored = sb.issue("SUP-1")
    assert stored["properties"] == {"wajira": prop} and stored["labels"] == ["whatsapp", "de"]


def test_add_comment_posts_adf_with_the_wajira_property(jira):
    rig = jira()
    rig.seed(lambda sb: seed_issue(sb))
    prop = {"kind": "customer", "wamid": "wamid.HBgN002"}
    comment_id = rig.adapter().add_comment("SUP-1", "[WhatsApp] Ana: hello\nsecond line", prop=prop)
    assert comment_id == "10000"
    [post] = rig.requests_to("POST", "/rest/api/3/issue/SUP-1/comment")
    assert body_of(post) == {
        "body": doc_from_text("[WhatsApp] Ana: hello\nsecond line"),
        "properties": [{"key": "wajira", "value": prop}],
    }


def test_find_comment_with_property_pages_newest_first(jira):
    rig = jira(comment_page=2)

    def seed(sb: JiraSandbox) -> None:
        key = seed_issue(sb)
        seed_comment(sb, key, "[WhatsApp] Ana: hi", prop={"kind": "customer", "wamid": "wamid.A"})  # 10000
        seed_comment(sb, key, "Looking into it", agent=True)  # 10001, no property
        seed_comment(sb, key, "[AI] Hello Ana", prop={"kind": "ai", "wamid": "wamid.A"})  # 10002
        seed_comment(sb, key, "internal note", internal=True)  # 10003, only sd.public.comment
        seed_comment(
            sb, key, "[WhatsApp] Ana: thanks", prop={"kind": "customer", "wamid": "wamid.B"}
        )  # 10004
        seed_comment(sb, key, "old bot comment", prop="not an object")  # 10005, ignored

    rig.seed(seed)
    adapter = rig.adapter()
    # Newest first, two per page: [10005, 10004], [10003, 10002], [10001, 10000].
    assert adapter.find_comment_with_property("SUP-1", {"kind": "customer", "wamid": "wamid.A"}) == "10000"
    first_walk = list(rig.sent)
    assert [query_of(r)["startAt"] for r in first_walk] == ["0", "2", "4"]
    for r in first_walk:
        assert urlsplit(r.url).path == "/rest/api/3/issue/SUP-1/comment"
        assert query_of(r) | {"startAt": "-"} == {
            "startAt": "-",
            "maxResults": "100",
            "orderBy": "-created",
            "expand": "properties",
        }
    assert adapter.find_comment_with_property("SUP-1", {"wamid": "wamid.A"}) == "10002"  # the newest match
    assert adapter.find_comment_with_property("SUP-1", {"kind": "note"}) is None  # every page, then stop
    assert len(rig.sent) == 3 + 2 + 3


def test_find_issue_with_property_follows_next_page_tokens(jira):
    rig = jira(search_page=2)

    def seed(sb: JiraSandbox) -> None:
        seed_issue(sb, prop={"wamid": "wamid.3"}, days_ago=400)  # SUP-1: before the window
        for n in range(1, 6):  # SUP-2 … SUP-6, ids 10001 … 10005
            seed_issue(sb, prop={"wamid": f"wamid.{n}", "phone": "+4915100000001"})
        seed_issue(sb, project="HELP", prop={"wamid": "wamid.9"})  # another project

    rig.seed(seed)
    adapter = rig.adapter()
    found = adapter.find_issue_with_property(
        project_key="SUP", created_since_epoch=SINCE, match={"wamid": "wamid.3"}
    )
    assert found == IssueRef(key="SUP-4", id="10003")
    first, second = rig.sent
    jql = f'project = "SUP" AND created >= {int(SINCE * 1000)} ORDER BY created ASC'
    assert query_of(first) == {"jql": jql, "maxResults": "100", "fields": "summary", "properties": "wajira"}
    assert query_of(second) == query_of(first) | {"nextPageToken": query_of(second)["nextPageToken"]}
    assert all(urlsplit(r.url).path == "/rest/api/3/search/jql" for r in rig.sent)
    assert (
        adapter.find_issue_with_property(
            project_key="SUP", created_since_epoch=SINCE, match={"wamid": "wamid.9"}
        )
        is None
    )
    assert len(rig.sent) == 2 + 3  # the second walk reads all three pages, up to isLast


# -- user text stays text ------------------------------------------------------------------------

HOSTILE = (
    "Hi [~accountid:123] and @here, run {code}rm -rf /{code}\n"
    "see [link|http://evil] !img.png! *bold* :smile:\n\n"
    "second paragraph"
)


def test_user_text_cannot_become_markup_in_the_recorded_adf(jira):
    rig = jira()
    rig.seed(lambda sb: seed_issue(sb))
    rig.adapter().add_comment("SUP-1", HOSTILE, prop={"kind": "customer", "wamid": "wamid.X"})
    [sent] = rig.sent
    [recorded] = [r for r in rig.cassette.requests if r.method == "POST"]
    for body in (body_of(sent)["body"], json.loads(recorded.body)["body"]):
        nodes = list(adf_nodes(body))
        assert {n["type"] for n in nodes} <= {"doc", "paragraph", "text", "hardBreak"}
        assert not any("marks" in n or "attrs" in n for n in nodes)
        assert not any(n["type"] in ("mention", "inlineCard", "emoji") for n in nodes)
        assert text_from_doc(body) == HOSTILE  # every character arrives, as plain text


# -- errors, in the jobs' terms ------------------------------------------------------------------


def test_429_with_retry_after_becomes_rate_limited(jira):
    rig = jira()
    rig.seed(lambda sb: sb.faults.fail_next(429, retry_after=7))
    with pytest.raises(RateLimited) as err:
        rig.adapter().myself()
    assert err.value.retry_after == 7.0 and err.value.status == 429
    assert isinstance(err.value, JiraUnavailable)  # retried without counting against the message
    assert rig.outcomes == [("myself", "RateLimited")]


def test_503_becomes_jira_unavailable(jira):
    rig = jira()
    rig.seed(lambda sb: sb.faults.fail_next(503))
    with pytest.raises(JiraUnavailable) as err:
        rig.adapter().add_comment("SUP-1", "hello", prop={"kind": "customer", "wamid": "wamid.Y"})
    assert type(err.value) is JiraUnavailable and err.value.status == 503
    assert "503 Service Unavailable" in str(err.value)


def test_400_becomes_jira_rejected_with_jiras_reason(jira):
    rig = jira()
    with pytest.raises(JiraRejected) as err:
        rig.adapter().create_issue(
            project_key="SUP",
            issue_type="Task",
            summary="WhatsApp: Ana",
            description="hi",
            labels=["two words"],
            properties={},
        )
    assert type(err.value) is JiraRejected and err.value.status == 400
    assert "labels: The label 'two words' contains spaces which is invalid." in str(err.value)


def test_401_and_403_become_jira_auth_failed(jira, credentials):
    rig = jira()
    with pytest.raises(JiraAuthFailed) as err:
        rig.adapter(api_token="wrong-" + credentials.api_token).myself()
    assert err.value.status == 401 and "You are not authenticated" in str(err.value)
    rig.seed(lambda sb: sb.faults.fail_next(403))
    with pytest.raises(JiraAuthFailed) as err:
        rig.adapter().myself()
    assert err.value.status == 403
    assert isinstance(err.value, JiraRejected) and not isinstance(err.value, JiraUnavailable)


def test_404_becomes_issue_not_found(jira):
    rig = jira()
    with pytest.raises(IssueNotFound) as err:
        rig.adapter().add_comment("SUP-404", "hello", prop={"kind": "customer", "wamid": "wamid.Z"})
    assert err.value.status == 404
    assert "Issue does not exist or you do not have permission to see it." in str(err.value)


def test_retry_after_holds_every_call_of_the_account_until_it_passes(credentials):
    """Live against the sandbox: the hold is about not calling, which a cassette cannot show."""
    with JiraSandbox(email=credentials.email, api_token=credentials.api_token) as sb:
        outcomes: list[str] = []
        adapter = JiraAdapter.connect(
            sb.url,
            email=credentials.email,
            api_token=credentials.api_token,
            observe=lambda op, outcome, s: outcomes.append(outcome),
        )
        sb.faults.fail_next(429, retry_after=1)
        with pytest.raises(RateLimited):
            adapter.myself()
        before = sum(sb.calls.values())
        # Another job, another operation, within the second Jira asked for: told to wait, no call.
        with pytest.raises(RateLimited) as held:
            adapter.list_comments("WA-1")
        assert 0 < (held.value.retry_after or 0) <= 1.0
        assert sum(sb.calls.values()) == before
        assert outcomes == ["RateLimited", "RateLimited"]
        time.sleep(1.05)
        assert adapter.myself()["accountId"]  # once it has passed, calls go through again
        assert sum(sb.calls.values()) == before + 1


@pytest.mark.parametrize("asked", ["1000000000", "inf"])
def test_an_absurd_retry_after_holds_the_account_five_minutes_at_most(credentials, asked):
    with JiraSandbox(email=credentials.email, api_token=credentials.api_token) as sb:
        adapter = JiraAdapter.connect(sb.url, email=credentials.email, api_token=credentials.api_token)
        sb.faults.fail_next(429, headers={"Retry-After": asked})
        with pytest.raises(RateLimited):
            adapter.myself()
        try:
            adapter.myself()
        except RateLimited as held:
            assert asked != "inf"
            assert 0 < (held.retry_after or 0) <= MAX_HOLD_SECONDS
        else:
            assert asked == "inf"  # not a number of seconds: no hold at all


def test_jira_slower_than_the_adapter_timeout_is_unavailable(credentials):
    """Live against the sandbox: a cassette cannot be slow."""
    with JiraSandbox(email=credentials.email, api_token=credentials.api_token) as sb:
        sb.faults.set_latency(0.8)
        outcomes: list[str] = []
        adapter = JiraAdapter.connect(
            sb.url,
            email=credentials.email,
            api_token=credentials.api_token,
            timeout=0.2,
            observe=lambda op, outcome, s: outcomes.append(outcome),
        )
        started = time.monotonic()
        with pytest.raises(JiraUnavailable, match="did not answer in time") as err:
            adapter.myself()
        assert time.monotonic() - started < 0.7
        assert not isinstance(err.value, RateLimited) and outcomes == ["JiraUnavailable"]
        time.sleep(0.7)  # let the delayed handler finish before the server closes under it


@contextlib.contextmanager
def _proxy_login_page() -> Iterator[str]:
    """A 200 with an HTML body, as a captive portal or SSO proxy in front of Jira answers.
    Served live: cassettes come from the sandbox, and the spec check rightly refuses a non-JSON body."""

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<html><body>Please log in</body></html>"]

    with LoopbackServer(app) as server:
        yield server.url


def test_a_2xx_that_is_not_json_is_unavailable(credentials):
    with _proxy_login_page() as url:
        adapter = JiraAdapter.connect(url, email=credentials.email, api_token=credentials.api_token)
        with pytest.raises(JiraUnavailable):
            adapter.myself()


def test_a_2xx_that_is_not_json_is_reported_as_such(credentials):
    with _proxy_login_page() as url:
        adapter = JiraAdapter.connect(url, email=credentials.email, api_token=credentials.api_token)
        with pytest.raises(JiraUnavailable, match="not JSON"):
            adapter.myself()


# -- Server / Data Center: API v2, escaped wiki markup, bearer PAT -------------------------------


def test_server_dc_writes_escaped_wiki_markup_over_api_v2_with_bearer_auth(jira, credentials):
    rig = jira(deployment="server")
    adapter = rig.adapter(server=True)
    assert not adapter.cloud
    assert adapter.myself()["name"] == "bot-account-id"  # Server users have names, not account ids
    ref = adapter.create_issue(
        project_key="SUP",
        issue_type="Task",
        summary="WhatsApp: Ana",
        description=HOSTILE,
        labels=["whatsapp"],
        properties={"wajira": {"phone": "+49"}},
    )
    assert ref == IssueRef(key="SUP-1", id="10000")
    prop = {"kind": "customer", "wamid": "wamid.S1"}
    assert adapter.add_comment("SUP-1", HOSTILE, prop=prop) == "10000"

    assert all(urlsplit(r.url).path.startswith("/rest/api/2/") for r in rig.sent)
    assert {r.headers["Authorization"] for r in rig.sent} == {f"Bearer {credentials.pat}"}
    [create] = rig.requests_to("POST", "/rest/api/2/issue")
    [comment] = rig.requests_to("POST", "/rest/api/2/issue/SUP-1/comment")
    description, text = body_of(create)["fields"]["description"], body_of(comment)["body"]
    assert description == text == escape_wiki(HOSTILE) and unescape_wiki(text) == HOSTILE
    assert r"\[\~accountid:123\]" in text and r"\{code\}" in text and r"\!img.png\!" in text
    assert body_of(comment)["properties"] == [{"key": "wajira", "value": prop}]


def test_server_dc_finds_by_property_with_offset_paging(jira):
    rig = jira(deployment="server", comment_page=2, search_page=2)

    def seed(sb: JiraSandbox) -> None:
        for n in range(1, 4):  # SUP-1 … SUP-3
            seed_issue(sb, prop={"wamid": f"wamid.{n}"})
        for n in range(1, 4):  # comments 10000 … 10002 on SUP-3
            seed_comment(
                sb, "SUP-3", f"[WhatsApp] Ana: {n}", prop={"kind": "customer", "wamid": f"wamid.c{n}"}
            )

    rig.seed(seed)
    adapter = rig.adapter(server=True)
    found = adapter.find_issue_with_property(
        project_key="SUP", created_since_epoch=SINCE, match={"wamid": "wamid.3"}
    )
    assert found == IssueRef(key="SUP-3", id="10002")
    searches = rig.requests_to("GET", "/rest/api/2/search")
    assert [query_of(r)["startAt"] for r in searches] == ["0", "2"]
    assert all(query_of(r)["properties"] == "wajira" for r in searches)
    assert adapter.find_comment_with_property("SUP-3", {"wamid": "wamid.c1"}) == "10000"
    pages = rig.requests_to("GET", "/rest/api/2/issue/SUP-3/comment")
    assert [query_of(r)["startAt"] for r in pages] == ["0", "2"]


# -- every cassette against the spec -------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> OpenAPISpec:
    return jira_spec()


def _interactions() -> Iterator[tuple[str, int, dict, dict]]:
    for path in cassette_files(MODULE):
        for i, interaction in enumerate(read_cassette(path)["interactions"]):
            yield path.name, i, interaction["request"], interaction["response"]


def test_no_cassette_holds_a_credential_or_a_cookie(credentials):
    files = cassette_files(MODULE)
    assert len(files) >= 12
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in ("ATATT", credentials.api_token, credentials.pat):
            assert secret not in text, f"{path.name} holds {secret!r}"
    for name, i, request, response in _interactions():
        auth = [v for k, values in request["headers"].items() if k.lower() == "authorization" for v in values]
        assert auth == [REDACTED], f"{name}#{i}: Authorization {auth}"
        assert not {k.lower() for k in request["headers"]} & {"cookie"}, f"{name}#{i}"
        assert not {k.lower() for k in response["headers"]} & DROPPED_RESPONSE_HEADERS, f"{name}#{i}"
        assert request["uri"].startswith(CASSETTE_URL + "/rest/api/"), f"{name}#{i}: {request['uri']}"


def test_every_cassette_agrees_with_the_jira_spec(spec):
    errors_schema = spec.component("ErrorCollection")
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for name, i, request, response in _interactions():
        method, url = request["method"], urlsplit(request["uri"])
        # Server/DC's v2 takes and returns the same shapes as Cloud's v3, except that rich text
        # (comment body, description) is a wiki string instead of an ADF object; the v3 spec leaves
        # those untyped (`Comment.body`, `IssueUpdateDetails.fields`), so v2 bodies are checked
        # against the v3 operation of the same path. The v2 string bodies are asserted in the tests.
        path = re.sub(r"^/rest/api/2/", "/rest/api/3/", url.path)
        where = f"{name}#{i} {method} {url.path}"
        try:
            op = spec.operation(method, path)
        except SpecLookupError as exc:
            problems.append(f"{where}: {exc}")
            continue
        seen.add((method, op.template))
        problems += [f"{where}: {p}" for p in op.query_errors(url.query)]
        if request["body"]:
            sent = json.loads(request["body"])
            problems += [f"{where} request: {p}" for p in spec.request_errors(method, path, sent)]
        status, text = response["status"]["code"], response["body"]["string"]
        schema = op.response_schema(status) if op.declares(status) else None
        if schema is None and status >= 400:
            schema = errors_schema  # Jira's documented error body, also where the spec lists none
        if schema is None:
            problems.append(f"{where}: the spec gives no body for {status}")
        elif text:
            answer = json.loads(text)
            problems += [f"{where} {status}: {p}" for p in spec.errors(answer, schema, direction="response")]
    assert not problems, "\n".join(problems)
    assert seen >= {
        ("GET", "/rest/api/3/myself"),
        ("POST", "/rest/api/3/issue"),
        ("POST", "/rest/api/3/issue/{issueIdOrKey}/comment"),
        ("GET", "/rest/api/3/issue/{issueIdOrKey}/comment"),
        ("GET", "/rest/api/3/search/jql"),
        ("GET", "/rest/api/3/search"),
    }


def test_spec_check_catches_drift(spec):
    # Without this, a checker that accepts everything would make the cassette test pass.
    comment = "/rest/api/3/issue/SUP-1/comment"
    assert spec.request_errors("POST", comment, {"body": doc_from_text("x")}) == []
    assert spec.request_errors("POST", comment, {"body": {}, "id": "1"}) == [
        "$.id: readOnly property in a request"
    ]
    assert spec.request_errors("POST", comment, {"body": {}, "properties": [{"key": 1, "value": {}}]}) != []
    assert spec.request_errors("POST", comment, {"body": {}, "properties": [{"key": "k", "v": 1}]}) != []
    assert spec.response_errors("POST", "/rest/api/3/issue", 201, {"id": 10000, "key": "SUP-1"}) != []
    assert spec.response_errors("POST", "/rest/api/3/issue", 201, {"id": "1", "key": "A-1", "extra": 1}) != []
    assert spec.response_errors("GET", "/rest/api/3/myself", 200, {"accountType": "robot"}) != []
    assert spec.response_errors("GET", "/rest/api/3/search/jql", 200, {"issues": [{"id": 1}]}) != []
    assert spec.errors({"errorMessages": "oops"}, spec.component("ErrorCollection")) != []
    assert spec.operation("GET", comment).query_errors("orderBy=newest&startAt=x&bogus=1") != []
    assert spec.operation("GET", "/rest/api/3/issue/createmeta").template == "/rest/api/3/issue/createmeta"
    with pytest.raises(SpecLookupError):
        spec.operation("GET", "/rest/api/3/no/such/thing")
    with pytest.raises(SpecLookupError):
        spec.response_errors("GET", "/rest/api/3/myself", 429, {})
