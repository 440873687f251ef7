"""GraphAdapter against cassettes recorded from the Graph sandbox.

Replay (the default) needs no server and no secret: `record_mode="none"`, so a request the
cassette does not hold fails the test instead of reaching a network. Re-record with
`WAJIRA_RECORD_CASSETTES=1`, which starts `sandbox.graph.GraphSandbox` on loopback and injects the
failures through its fault hooks. Recorded bodies are checked against Meta's v23 OpenAPI spec.

The vcr set-up is tests/support/vcr.py's, as for every cassette.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import structlog

from bot.whatsapp.graph import GraphAdapter, MediaInfo, Recipient
from bot.whatsapp.graph_errors import (
    GraphAuthFailed,
    GraphError,
    GraphRateLimited,
    GraphRejected,
    GraphUnavailable,
    WindowClosed,
)
from sandbox.graph import GraphSandbox
from tests.support.spec import OpenAPISpec, Operation, whatsapp_spec
from tests.support.vcr import (
    FAKE_BEARER,
    RECORD,
    REPLAY_URL,
    cassette_name,
    cassette_recorder,
    json_of,
    open_cassette,
    recorded,
)

CUSTOMER = "16505551234"
USER_ID = "US.13491208655302741918"  # a business-scoped user id, as Meta formats them
PNID = "106540352242922"  # sandbox.whatsapp_payloads.PHONE_NUMBER_ID
API = "v23.0"


# -- fixtures -------------------------------------------------------------------------------------

VCR = cassette_recorder("graph_adapter", authorization=FAKE_BEARER)
FAKE_TOKEN = "fake-graph-token"


@pytest.fixture(autouse=True)
def fake_keys(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fake token wherever one is read: replay needs no secret, recording needs no real one."""
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN)
    return FAKE_TOKEN


@pytest.fixture
def sandbox(fake_keys: str) -> Iterator[GraphSandbox]:
    # In replay the sandbox is never started: its steering calls (customer_wrote, fail_next_send)
    # only change memory no request will read, so the tests read the same either way.
    sb = GraphSandbox(access_token=fake_keys)
    if RECORD:
        sb.start()
    yield sb
    if RECORD:
        sb.stop()


@pytest.fixture
def base_url(sandbox: GraphSandbox) -> str:
    return sandbox.url if RECORD else REPLAY_URL


@pytest.fixture
def observed() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def graph(base_url: str, fake_keys: str, observed: list) -> GraphAdapter:
    return GraphAdapter.connect(
        base_url=base_url,
        api_version=API,
        access_token=fake_keys,
        timeout=5,
        observe=lambda op, outcome, seconds: observed.append((op, outcome)),
    )


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Any]:
    with open_cassette(VCR, cassette_name(request.node)) as recorded_cassette:
        yield recorded_cassette


# -- the spec -------------------------------------------------------------------------------------


def _template(method: str, path: str) -> str | None:
    parts = path.strip("/").split("/")
    if parts[-1] == "messages":
        return "/{Version}/{Phone-Number-ID}/messages"
    if method == "GET" and len(parts) == 2 and re.fullmatch(r"v\d+\.\d+", parts[0]):
        # One URL shape, two node types; the spec's path matcher cannot tell them apart.
        return "/{Version}/{Phone-Number-ID}" if parts[1] == PNID else "/{Version}/{Media-ID}"
    return None  # the media download: bytes, which the spec does not describe


def merged(spec: OpenAPISpec, node: dict) -> dict:
    """An `allOf` of objects as the single object Meta means.

    The message schemas are `allOf: [BaseMessageProperties, {additionalProperties: false, …}]`;
    read literally, the second member forbids the first member's `to` and `messaging_product`, so
    no message could ever pass. Merging the members keeps the intent: these properties, no others.
    """
    node = spec.resolve(node)
    if "allOf" not in node:
        return node
    out: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for part in node["allOf"]:
        part = merged(spec, part)
        out["properties"].update(part.get("properties", {}))
        out["required"] += part.get("required", [])
        if part.get("additionalProperties") is False:
            out["additionalProperties"] = False
    return out


def send_schema(spec: OpenAPISpec, body: dict[str, Any]) -> dict:
    if "status" in body:
        # The operation's requestBody names only `Message`; the read receipt (with its typing
        # indicator) has a schema of its own in the same spec.
        return spec.component("MarkMessageRequestPayload")
    mapping = spec.component("Message")["discriminator"]["mapping"]
    return merged(spec, {"$ref": mapping[body["type"]]})


def spec_problems(cassette: Any) -> list[str]:
    """Every recorded Graph request body and JSON response against the v23 spec."""
    spec = whatsapp_spec()
    problems = []
    for request, response in recorded(cassette):
        path = requests.utils.urlparse(request.uri).path
        template = _template(request.method, path)
        if template is None:
            continue
        op = Operation(spec, request.method, template, {}, spec.path_item(template)[request.method.lower()])
        where = f"{request.method} {template}"
        if request.body:
            schema = send_schema(spec, json_of(request.body))
            problems += [
                f"{where} request {p}"
                for p in spec.errors(json_of(request.body), schema, direction="request")
            ]
        status = response["status"]["code"]
        # /messages declares only its 200; every Graph error body is the spec's GraphAPIError.
        schema = op.response_schema(status) if op.declares(status) else spec.component("GraphAPIError")
        problems += [
            f"{where} {status} {p}"
            for p in spec.errors(json_of(response["body"]["string"]), schema, direction="response")
        ]
    return problems


def sent_bodies(cassette: Any) -> list[dict[str, Any]]:
    return [json_of(r.body) for r, _ in recorded(cassette) if r.method == "POST"]


# -- sending --------------------------------------------------------------------------------------


def test_send_text_returns_the_wamid(sandbox, graph, cassette, observed):
    sandbox.customer_wrote(CUSTOMER)
    wamid = graph.send_text(PNID, Recipient(wa_id=CUSTOMER), "Hello *there*")
    reply = graph.send_text(
        PNID, Recipient(wa_id=CUSTOMER), "See https://example.com", reply_to=wamid, preview_url=True
    )
    assert wamid.startswith("wamid.") and reply.startswith("wamid.") and reply != wamid
    assert sent_bodies(cassette) == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CUSTOMER,
            "type": "text",
            "text": {"body": "Hello *there*", "preview_url": False},
        },
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CUSTOMER,
            "type": "text",
            "text": {"body": "See https://example.com", "preview_url": True},
            "context": {"message_id": wamid},
        },
    ]
    request, _ = recorded(cassette)[0]
    assert request.uri.endswith(f"/{API}/{PNID}/messages")
    assert request.headers["Authorization"] == FAKE_BEARER  # the filter ran; replay needs no token
    assert observed == [("send_text", "ok"), ("send_text", "ok")]
    assert spec_problems(cassette) == []


def test_send_template_goes_out_without_a_window(graph, cassette):
    # No customer_wrote: only a template may reach this customer.
    with_params = graph.send_template(
        PNID,
        Recipient(wa_id=CUSTOMER),
        name="ticket_update",
        language="en_US",
        body_parameters=["SUP-12", "Ana"],
    )
    without = graph.send_template(
        PNID, Recipient(wa_id=CUSTOMER), name="hello_world", language="en_US", body_parameters=[]
    )
    assert with_params.startswith("wamid.") and without.startswith("wamid.")
    envelope = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "template",
    }
    language = {"policy": "deterministic", "code": "en_US"}  # the spec's LanguageObject requires policy
    parameters = [{"type": "text", "text": "SUP-12"}, {"type": "text", "text": "Ana"}]
    assert sent_bodies(cassette) == [
        {
            **envelope,
            "template": {
                "name": "ticket_update",
                "language": language,
                "components": [{"type": "body", "parameters": parameters}],
            },
        },
        # No variables, no components.
        {**envelope, "template": {"name": "hello_world", "language": language}},
    ]
    assert json_of(recorded(cassette)[0][1]["body"]["string"])["messages"][0]["message_status"] == "accepted"
    assert spec_problems(cassette) == []


def test_business_scoped_user_is_addressed_in_recipient(sandbox, graph, cassette):
    # Meta's BSUID guide (newer than the v23 spec) adds `recipient` for business-scoped user
    # ids; `to` stays a phone or group id. With both known, the phone goes in `to` (Meta's
    # recommendation; it also wins when both are sent).
    sandbox.customer_wrote(USER_ID)
    wamid = graph.send_text(PNID, Recipient(user_id=USER_ID), "Hello")
    assert wamid.startswith("wamid.")
    body = sent_bodies(cassette)[0]
    assert body["recipient"] == USER_ID and "to" not in body
    assert Recipient(wa_id=CUSTOMER, user_id=USER_ID).envelope_fields() == {"to": CUSTOMER}
    with pytest.raises(ValueError):
        Recipient()
    # The v23 spec knows `to` only: these two are the spec's age, not our mistake.
    assert spec_problems(cassette) == [
        "POST /{Version}/{Phone-Number-ID}/messages request $: missing required 'to'",
        "POST /{Version}/{Phone-Number-ID}/messages request $: unexpected property 'recipient'",
    ]


def test_window_closed_is_131047(graph, cassette, observed):
    with pytest.raises(WindowClosed) as caught:
        graph.send_text(PNID, Recipient(wa_id=CUSTOMER), "Are you still there?")
    err = caught.value
    assert (err.code, err.status, err.title) == (131047, 400, "Re-engagement message")
    assert "24 hours" in err.details and err.fbtrace_id
    assert observed == [("send_text", "WindowClosed")]
    assert spec_problems(cassette) == []


@pytest.mark.parametrize(
    "code, status, expected",
    [
        (131026, 400, GraphRejected),  # undeliverable
        (100, 400, GraphRejected),  # invalid parameter
        (131051, 400, GraphRejected),  # unsupported message type
        (131052, 400, GraphRejected),  # media download error
        (131053, 400, GraphRejected),  # media upload error
        (130429, 429, GraphRateLimited),  # throughput
        (131056, 429, GraphRateLimited),  # pair rate limit
        (80007, 429, GraphRateLimited),  # account rate limit
        (131000, 500, GraphUnavailable),  # something went wrong
    ],
)
def test_send_errors_map_to_our_exceptions(sandbox, graph, cassette, observed, code, status, expected):
    sandbox.customer_wrote(CUSTOMER)
    sandbox.fail_next_send(code)
    with pytest.raises(GraphError) as caught:
        graph.send_text(PNID, Recipient(wa_id=CUSTOMER), "Hi")
    err = caught.value
    assert type(err) is expected
    assert (err.code, err.status) == (code, status) and err.title and err.details
    assert observed == [("send_text", expected.__name__)]
    assert spec_problems(cassette) == []


def test_throughput_code_rate_limits_whatever_the_status(sandbox, graph, cassette):
    sandbox.customer_wrote(CUSTOMER)
    sandbox.fail_next_send(130429, http_status=400)  # Meta does answer some rate limits with a 400
    with pytest.raises(GraphRateLimited) as caught:
        graph.send_text(PNID, Recipient(wa_id=CUSTOMER), "Hi")
    assert (caught.value.status, caught.value.retry_after) == (400, None)


def test_429_carries_retry_after_then_the_retry_goes_through(sandbox, graph, cassette):
    sandbox.customer_wrote(CUSTOMER)
    sandbox.faults.fail_next(429, retry_after=7, path_regex="/messages$")
    with pytest.raises(GraphRateLimited) as caught:
        graph.send_text(PNID, Recipient(wa_id=CUSTOMER), "Hi")
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (429, 4, 7.0)
    assert graph.send_text(PNID, Recipient(wa_id=CUSTOMER), "Hi").startswith("wamid.")
    assert spec_problems(cassette) == []


def test_5xx_is_unavailable(sandbox, graph, cassette):
    sandbox.faults.fail_next(503)
    with pytest.raises(GraphUnavailable) as caught:
        graph.phone_number(PNID)
    assert (caught.value.status, caught.value.code) == (503, 2)
    assert spec_problems(cassette) == []


def test_bad_token_is_auth_failed(base_url, cassette, observed):
    wrong = GraphAdapter.connect(
        base_url=base_url,
        api_version=API,
        access_token="wrong-token",
        observe=lambda op, outcome, seconds: observed.append((op, outcome)),
    )
    with pytest.raises(GraphAuthFailed) as caught:
        wrong.phone_number(PNID)
    assert (caught.value.status, caught.value.code) == (401, 190)
    assert isinstance(caught.value, GraphRejected)  # no retry will fix it
    assert observed == [("phone_number", "GraphAuthFailed")]
    assert spec_problems(cassette) == []


# -- read marks, phone number ---------------------------------------------------------------------


def test_mark_read_and_typing(graph, cassette, observed):
    wamid = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUZBQTM1"
    graph.mark_read(PNID, wamid)
    graph.mark_read(PNID, wamid, typing=True)
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    assert sent_bodies(cassette) == [read, {**read, "typing_indicator": {"type": "text"}}]
    assert observed == [("mark_read", "ok"), ("mark_read", "ok")]
    spec = whatsapp_spec()
    for body in sent_bodies(cassette):
        assert spec.errors(body, spec.component("MarkMessageRequestPayload"), direction="request") == []
    for _, response in recorded(cassette):
        answer = json_of(response["body"]["string"])
        assert spec.errors(answer, spec.component("MarkMessageResponsePayload"), direction="response") == []
    assert spec_problems(cassette) == []


def test_phone_number(graph, cassette):
    node = graph.phone_number(PNID)
    assert node == {
        "id": PNID,
        "display_phone_number": "+1 555-078-3881",
        "verified_name": "Wajira Sandbox",
        "quality_rating": "GREEN",
    }
    with pytest.raises(GraphRejected) as caught:
        graph.phone_number("999")
    assert (caught.value.code, caught.value.subcode) == (100, 33)
    assert spec_problems(cassette) == []


# -- media ----------------------------------------------------------------------------------------

PDF = b"%PDF-1.7 sandbox receipt for SUP-12\n" * 8


def test_media_info_then_download(sandbox, graph, cassette, observed):
    sandbox.add_media("1003383421387260", PDF, "application/pdf")
    info = graph.media_info("1003383421387260")
    assert isinstance(info, MediaInfo)
    digest = hashlib.sha256(PDF).hexdigest()
    assert (info.mime_type, info.sha256, info.file_size) == ("application/pdf", digest, len(PDF))
    assert graph.download(info.url, max_bytes=len(PDF)) == PDF  # exactly at the limit is fine
    request, _ = recorded(cassette)[1]
    assert request.headers["Authorization"] == FAKE_BEARER  # Meta's CDN wants the bearer token too
    assert observed == [("media_info", "ok"), ("download", "ok")]
    assert spec_problems(cassette) == []


def test_download_refuses_a_medium_over_the_limit(sandbox, graph, cassette, observed):
    sandbox.add_media("1003383421387261", PDF, "application/pdf")
    info = graph.media_info("1003383421387261")
    with pytest.raises(GraphRejected) as caught:
        graph.download(info.url, max_bytes=len(PDF) - 1)
    assert caught.value.title == "too large"
    assert observed == [("media_info", "ok"), ("download", "GraphRejected")]


def test_expired_or_doctored_media_url_is_rejected(sandbox, graph, cassette):
    sandbox.add_media("1003383421387262", PDF, "application/pdf")
    info = graph.media_info("1003383421387262")
    # Meta's CDN answers a plain-text 404 for expired or altered URLs: ask media_info again.
    with pytest.raises(GraphRejected) as caught:
        graph.download(info.url.replace("hash=", "hash=0"), max_bytes=len(PDF))
    assert (caught.value.status, caught.value.code) == (404, None)


def test_unknown_media_id(graph, cassette):
    with pytest.raises(GraphRejected) as caught:
        graph.media_info("777")
    assert caught.value.code == 100
    assert spec_problems(cassette) == []


# -- without a server: streaming limit, transport failures, URL guard, logs -----------------------


class _CountingStream(io.RawIOBase):
    """An endless body that counts what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[:] = b"x" * len(buffer)
        self.read_bytes += len(buffer)
        return len(buffer)


class _FakeSession:
    """Stands in for requests.Session: answers with `response`, or raises `error`; remembers calls."""

    def __init__(self, response: requests.Response | None = None, error: Exception | None = None) -> None:
        self.response, self.error, self.calls = response, error, []

    def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs))
        if self.error is not None:
            raise self.error
        return self.response


def _fake(session: _FakeSession, observed: list) -> GraphAdapter:
    return GraphAdapter(
        session,
        base_url="https://graph.example",
        api_version=API,
        access_token=FAKE_TOKEN,
        observe=lambda op, outcome, seconds: observed.append((op, outcome)),
    )


def test_download_without_content_length_stops_at_the_limit(observed):
    raw = _CountingStream()
    response = requests.Response()
    response.status_code, response.raw = 200, io.BufferedReader(raw)  # chunked: no Content-Length
    session = _FakeSession(response)
    with pytest.raises(GraphRejected, match="too large"):
        _fake(session, observed).download("https://lookaside.example/m?mid=1", max_bytes=100_000)
    assert raw.read_bytes < 100_000 + 2 * 65_536  # not "read it all, then complain"
    assert session.calls[0][2]["stream"] is True
    assert observed == [("download", "GraphRejected")]


@pytest.mark.parametrize(
    "error",
    [
        requests.ConnectTimeout("t"),
        requests.ReadTimeout("t"),
        requests.ConnectionError("refused"),
        requests.exceptions.ChunkedEncodingError(),
    ],
)
def test_transport_failures_are_unavailable(error, observed):
    with pytest.raises(GraphUnavailable) as caught:
        _fake(_FakeSession(error=error), observed).send_text(PNID, Recipient(wa_id=CUSTOMER), "Hi")
    # No chain to the `requests` exception: its text names the (signed) URL and the response.
    assert (
        caught.value.status is None and caught.value.__cause__ is None and caught.value.__suppress_context__
    )
    assert observed == [("send_text", "GraphUnavailable")]


def _response(status: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code, response.raw = status, io.BytesIO(body)
    return response


def test_2xx_without_a_wamid_is_an_unknown_outcome(observed):
    response = _response(200, b'{"messaging_product": "whatsapp"}')
    with pytest.raises(GraphUnavailable, match="without a message id"):
        _fake(_FakeSession(response), observed).send_text(PNID, Recipient(wa_id=CUSTOMER), "Hi")


@pytest.mark.parametrize("url", ["http://cdn.example/m", "ftp://127.0.0.1/m", "file:///etc/passwd"])
def test_download_never_sends_the_token_in_clear(url, observed):
    session = _FakeSession()
    with pytest.raises(GraphRejected):
        _fake(session, observed).download(url, max_bytes=10)
    assert session.calls == []


def test_logs_carry_neither_token_nor_phone_nor_text(observed):
    response = _response(
        400,
        json.dumps(
            {
                "error": {
                    "message": "(#131026) Message undeliverable",
                    "type": "OAuthException",
                    "code": 131026,
                    "fbtrace_id": "A1",
                }
            }
        ).encode(),
    )
    with structlog.testing.capture_logs() as logs, pytest.raises(GraphRejected):
        _fake(_FakeSession(response), observed).send_text(PNID, Recipient(wa_id=CUSTOMER), "my secret text")
    text = repr(logs)
    assert logs and FAKE_TOKEN not in text and CUSTOMER not in text and "my secret text" not in text
    assert logs[0]["code"] == 131026 and logs[0]["to"] == "+1********34"
