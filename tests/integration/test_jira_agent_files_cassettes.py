"""JiraAdapter's attachment reads for agents' files, replayed from cassettes in
tests/cassettes/jira_adapter/agent_files/ and checked against Atlassian's OpenAPI description.

Re-record with

    WAJIRA_RECORD_CASSETTES=1 python -m pytest tests/integration/test_jira_agent_files_cassettes.py

which runs each test against the loopback Jira sandbox. Besides the usual scrubbing
(tests/support/vcr.py), the Media Services URL's `token` and `client` are replaced in the
recorded Location header and in the request that follows it: the token is a credential for the
file. They live in a folder of their own because test_jira_adapter.py's walk demands a JSON body
for every status, while `getAttachmentContent` answers 303 with none and 200 with the file.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import vcr

from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.errors import IssueNotFound, JiraRejected
from sandbox.jira import JiraSandbox
from tests.support.spec import OpenAPISpec, SpecLookupError, jira_spec
from tests.support.vcr import (
    RECORD,
    cassette_files,
    cassette_recorder,
    open_cassette,
    read_cassette,
    recorded,
)

MODULE = "jira_adapter/agent_files"
CASSETTE_URL = "http://jira.wajira.test"  # as in test_jira_adapter.py: `.test` never resolves
REDACTED = "Basic REDACTED"
MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "body")
EMAIL = "agent@example.com"
SECRET_QUERY = ("token", "client")  # Media Services' download credential and app id
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") + b"\x08\x06"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n"
MEDIA_LOCATION = re.compile(
    re.escape(CASSETTE_URL) + r"/media/file/[0-9a-f-]{36}/binary\?token=REDACTED&client=REDACTED&"
)


@dataclass(frozen=True)
class Credentials:
    api_token: str
    pat: str


@pytest.fixture(autouse=True)
def credentials(monkeypatch) -> Credentials:
    """Fake secrets: a recording can never carry a real one, and replay never checks them."""
    monkeypatch.setenv("JIRA_API_TOKEN", "fake-api-token-for-cassettes")
    monkeypatch.setenv("JIRA_TOKEN", "fake-pat-for-cassettes")
    return Credentials("fake-api-token-for-cassettes", "fake-pat-for-cassettes")


def scrub_url(url: str) -> str:
    """The URL with Media Services' token and client id replaced (other parameters as they were)."""
    parts = urlsplit(url)
    if "token=" not in parts.query:
        return url
    query = parse_qs(parts.query, keep_blank_values=True)
    pairs = [(k, "REDACTED" if k in SECRET_QUERY else v) for k, values in query.items() for v in values]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def _recorder(live_url: str | None) -> vcr.VCR:
    recorder = cassette_recorder(
        MODULE,
        authorization=REDACTED,
        match_on=MATCH_ON,
        origin=(live_url, CASSETTE_URL) if live_url else None,
    )
    rewrite_request, scrub_response = recorder.before_record_request, recorder.before_record_response

    def request_hook(request: Any) -> Any:
        request = rewrite_request(request)
        request.uri = scrub_url(request.uri)
        return request

    def response_hook(response: dict) -> dict:
        response = scrub_response(response)
        headers = response["headers"]
        for name in [n for n in headers if n.lower() == "location"]:
            moved = [v.replace(live_url, CASSETTE_URL, 1) if live_url else v for v in headers[name]]
            headers[name] = [scrub_url(v) for v in moved]
        return response

    recorder.before_record_request, recorder.before_record_response = request_hook, response_hook
    return recorder


@dataclass
class Rig:
    url: str
    credentials: Credentials
    cassette: Any
    sandbox: JiraSandbox | None

    def adapter(self, *, server: bool = False) -> JiraAdapter:
        if server:
            return JiraAdapter.connect(self.url, token=self.credentials.pat)
        return JiraAdapter.connect(self.url, email=EMAIL, api_token=self.credentials.api_token)

    def seed(self, action: Callable[[JiraSandbox], Any]) -> None:
        """Prepare the sandbox when recording; in replay the cassette already holds the result."""
        if self.sandbox is not None:
            action(self.sandbox)


@pytest.fixture
def jira(request, credentials) -> Iterator[Callable[..., Rig]]:
    with contextlib.ExitStack() as stack:

        def start(*, deployment: str = "cloud") -> Rig:
            sandbox, live_url = None, None
            if RECORD:
                sandbox = JiraSandbox(
                    email=EMAIL,
                    api_token=credentials.api_token,
                    pat=credentials.pat if deployment == "server" else None,
                    deployment=deployment,
                )
                live_url = sandbox.start()
                stack.callback(sandbox.stop)
            cassette = stack.enter_context(open_cassette(_recorder(live_url), f"{request.node.name}.yaml"))
            return Rig(live_url or CASSETTE_URL, credentials, cassette, sandbox)

        yield start


def seed_files(sb: JiraSandbox) -> None:
    """SUP-1 with one agent comment showing a PNG and a PDF (attachments 10000 and 10001)."""
    payload = {
        "fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": "WhatsApp: Ana"}
    }
    with sb.store.lock:
        key = sb.store.create_issue(payload, 3 if sb.settings.cloud else 2, sb.store.bot).key
    files = [("photo.png", "image/png", PNG), ("invoice.pdf", "application/pdf", PDF)]
    sb.add_agent_comment_with_files(key, "Your invoice and a photo", files)


def media_ids(node: dict) -> list[str]:
    found = [node["attrs"]["id"]] if node.get("type") == "media" else []
    for child in node.get("content") or []:
        found += media_ids(child)
    return found


# -- the recorded calls ----------------------------------------------------------------------------


def test_attachment_media_id_matches_the_comments_media_nodes(jira):
    rig = jira()
    rig.seed(seed_files)
    adapter = rig.adapter()
    [comment] = adapter.list_comments("SUP-1")
    resolved = {
        adapter.attachment_media_id(a["id"]): a["filename"] for a in adapter.list_attachments("SUP-1")
    }
    assert list(resolved.values()) == ["photo.png", "invoice.pdf"]
    assert media_ids(comment["body"]) == list(resolved)  # the nodes name exactly the issue's files
    statuses = [response["status"]["code"] for _, response in recorded(rig.cassette)]
    assert statuses == [200, 200, 303, 303]  # the files themselves were never requested


def test_attachment_content_follows_the_redirect_to_media_services(jira):
    rig = jira()
    rig.seed(seed_files)
    assert rig.adapter().attachment_content("10001", max_bytes=len(PDF)) == PDF
    (to_jira, moved), (to_media, served) = recorded(rig.cassette)
    assert urlsplit(to_jira.uri).path == "/rest/api/3/attachment/content/10001"
    assert moved["status"]["code"] == 303 and MEDIA_LOCATION.match(moved["headers"]["Location"][0])
    assert to_media.uri == moved["headers"]["Location"][0]
    assert served["status"]["code"] == 200 and served["headers"]["Content-Type"][0].startswith(
        "application/pdf"
    )


def test_attachment_content_past_the_cap_is_rejected(jira):
    rig = jira()
    rig.seed(seed_files)
    with pytest.raises(JiraRejected, match="attachment 10001 is larger than 10 bytes"):
        rig.adapter().attachment_content("10001", max_bytes=10)


def test_a_missing_attachment_is_rejected(jira):
    rig = jira()
    with pytest.raises(JiraRejected) as err:
        rig.adapter().attachment_media_id("10404")
    assert err.value.status == 404 and not isinstance(err.value, IssueNotFound)


def test_server_dc_serves_attachment_content_without_a_media_id(jira):
    rig = jira(deployment="server")
    rig.seed(seed_files)
    adapter = rig.adapter(server=True)
    assert adapter.attachment_media_id("10000") is None
    assert adapter.attachment_content("10000", max_bytes=len(PNG)) == PNG
    [comment] = adapter.list_comments("SUP-1")
    assert comment["body"] == "Your invoice and a photo\n\n!photo.png!\n\n[^invoice.pdf]"


# -- every cassette against the spec, and free of secrets ------------------------------------------


@pytest.fixture(scope="module")
def spec() -> OpenAPISpec:
    return jira_spec()


def _interactions() -> Iterator[tuple[str, int, dict, dict]]:
    for path in cassette_files(MODULE):
        for i, interaction in enumerate(read_cassette(path)["interactions"]):
            yield path.name, i, interaction["request"], interaction["response"]


def _header(headers: dict, name: str) -> str:
    return next((v[0] for k, v in headers.items() if k.lower() == name), "")


def test_no_cassette_holds_a_credential_or_a_media_token(credentials):
    files = cassette_files(MODULE)
    assert len(files) == 5
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in ("ATATT", credentials.api_token, credentials.pat):
            assert secret not in text, f"{path.name} holds {secret!r}"
        assert not re.findall(r"(?:token|client)=(?!REDACTED)", text), f"{path.name} holds a media token"
    for name, i, request, response in _interactions():
        auth = [v for k, values in request["headers"].items() if k.lower() == "authorization" for v in values]
        assert auth in ([REDACTED], []), f"{name}#{i}: Authorization {auth}"
        assert not {k.lower() for k in request["headers"]} & {"cookie"}, f"{name}#{i}"
        assert not {k.lower() for k in response["headers"]} & {"set-cookie"}, f"{name}#{i}"


def test_every_cassette_agrees_with_the_jira_spec(spec):
    problems: list[str] = []
    seen: set[tuple[str, str, int]] = set()
    for name, i, request, response in _interactions():
        method, url = request["method"], urlsplit(request["uri"])
        status, text = response["status"]["code"], response["body"]["string"]
        where = f"{name}#{i} {method} {url.path} {status}"
        if url.path.startswith("/media/"):
            # Atlassian's Media Services, not the platform API: only where the redirect said.
            if not MEDIA_LOCATION.match(request["uri"]) or status != 200:
                problems.append(f"{where}: not a followed content redirect")
            continue
        # Server/DC's v2 answers the same shapes for these calls (bodies are wiki strings).
        path = re.sub(r"^/rest/api/2/", "/rest/api/3/", url.path)
        try:
            op = spec.operation(method, path)
        except SpecLookupError as exc:
            problems.append(f"{where}: {exc}")
            continue
        seen.add((method, op.template, status))
        problems += [f"{where}: {p}" for p in op.query_errors(url.query)]
        if not op.declares(status):
            problems.append(f"{where}: the spec declares no such answer")
            continue
        schema = op.response_schema(status) or (spec.component("ErrorCollection") if status >= 400 else None)
        is_json = _header(response["headers"], "content-type").startswith("application/json")
        if schema is not None:
            answer = json.loads(text) if is_json else None
            problems += [f"{where}: {p}" for p in spec.errors(answer, schema, direction="response")]
        elif status == 303 and not MEDIA_LOCATION.match(_header(response["headers"], "location")):
            problems.append(f"{where}: the Location names no Media Services file")
    assert not problems, "\n".join(problems)
    content = "/rest/api/3/attachment/content/{id}"
    assert seen >= {
        ("GET", content, 303),
        ("GET", content, 200),
        ("GET", content, 404),
        ("GET", "/rest/api/3/issue/{issueIdOrKey}/comment", 200),
        ("GET", "/rest/api/3/issue/{issueIdOrKey}", 200),
    }


def test_the_media_token_scrubber_keeps_everything_else():
    url = "http://h.test/media/file/abc/binary?token=eyJh.b.c&client=9f&collection=&dl=true&name=Niño%20a.pdf"
    scrubbed = parse_qs(urlsplit(scrub_url(url)).query, keep_blank_values=True)
    assert scrubbed == {
        "token": ["REDACTED"],
        "client": ["REDACTED"],
        "collection": [""],
        "dl": ["true"],
        "name": ["Niño a.pdf"],
    }
    assert scrub_url("http://h.test/rest/api/3/myself?x=1") == "http://h.test/rest/api/3/myself?x=1"
