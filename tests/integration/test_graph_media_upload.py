"""Files to the customer: `GraphAdapter.upload_media` and `send_media`, and the Graph sandbox's
side of them (multipart `POST /{phone-number-id}/media`, Meta's type and size rules, the
inspection routes the e2e harness reads).

Two halves. The first drives the adapter against a running sandbox over loopback HTTP; the
second replays cassettes (tests/cassettes/graph_adapter/, recorded from the sandbox with
`WAJIRA_RECORD_CASSETTES=1`) and checks every recorded body against Meta's v23 OpenAPI spec.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
import requests
import structlog

from bot.whatsapp.graph import GraphAdapter, Recipient
from bot.whatsapp.graph_errors import GraphRateLimited, GraphRejected, GraphUnavailable, WindowClosed
from bot.whatsapp.media_out import FILENAME_MAX, clip_caption, media_message, safe_filename
from sandbox.graph import GraphSandbox
from sandbox.graph.multipart import MultipartError, parse_form
from sandbox.httpserver import LoopbackServer
from tests.fakes import FakeGraph
from tests.integration.test_graph_adapter import send_schema
from tests.support.spec import whatsapp_spec
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
PNID = "106540352242922"  # sandbox.whatsapp_payloads.PHONE_NUMBER_ID
API = "v23.0"
TOKEN = "media-upload-token"  # made up, and shaped like no real token
MB = 1024 * 1024


def png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny, grey) PNG: signature, IHDR, IDAT, IEND with their CRCs."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = png()
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% receipt for SUP-12\n%%EOF\n"
OGG = b"OggS\x00\x02" + bytes(range(64))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# == the adapter against a running sandbox ========================================================


@pytest.fixture
def sandbox() -> Iterator[GraphSandbox]:
    with GraphSandbox(access_token=TOKEN) as sb:
        yield sb


@pytest.fixture
def graph(sandbox: GraphSandbox) -> GraphAdapter:
    return GraphAdapter.connect(base_url=sandbox.url, api_version=API, access_token=TOKEN, timeout=10)


def to() -> Recipient:
    return Recipient(wa_id=CUSTOMER)


def test_a_png_goes_out_as_an_image_with_the_same_bytes(sandbox, graph):
    sandbox.customer_wrote(CUSTOMER)
    media_id = graph.upload_media(PNID, PNG, mime_type="image/png", filename="screenshot.png")
    assert media_id.isdigit()
    wamid = graph.send_media(PNID, to(), media_type="image", media_id=media_id, caption="Your *receipt*")
    assert wamid.startswith("wamid.")
    sent = sandbox.sent()[-1]
    assert (sent["type"], sent["body"], sent["wamid"]) == ("image", "Your *receipt*", wamid)
    assert sent["payload"]["image"] == {"id": media_id, "caption": "Your *receipt*"}
    assert sent["media"] == {
        "id": media_id,
        "mime_type": "image/png",
        "filename": "screenshot.png",
        "uploaded_filename": "screenshot.png",
        "sha256": sha(PNG),
        "size": len(PNG),
    }
    # The e2e harness's way: the bytes by id over the control route.
    got = requests.get(f"{sandbox.url}/_sandbox/media/{media_id}", timeout=5)
    assert got.status_code == 200 and got.content == PNG
    assert (
        got.headers["Content-Type"] == "image/png" and got.headers["X-Sandbox-Filename"] == "screenshot.png"
    )
    # Meta describes an uploaded medium like a received one.
    info = graph.media_info(media_id)
    assert (info.mime_type, info.sha256, info.file_size) == ("image/png", sha(PNG), len(PNG))
    assert sandbox.calls["POST /{version}/{phone_number_id}/media"] == 1


def test_a_pdf_goes_out_as_a_document_keeping_its_filename(sandbox, graph):
    sandbox.customer_wrote(CUSTOMER)
    media_id = graph.upload_media(PNID, PDF, mime_type="application/pdf", filename="Invoice März 2026.pdf")
    graph.send_media(
        PNID, to(), media_type="document", media_id=media_id, filename="Invoice März 2026.pdf", caption="Here"
    )
    sent = sandbox.sent()[-1]
    assert sent["payload"]["document"] == {
        "id": media_id,
        "caption": "Here",
        "filename": "Invoice März 2026.pdf",
    }
    assert sent["media"]["filename"] == sent["media"]["uploaded_filename"] == "Invoice März 2026.pdf"
    assert sent["media"]["sha256"] == sha(PDF)
    uploads = requests.get(f"{sandbox.url}/_sandbox/uploads", timeout=5).json()["uploads"]
    assert uploads == [
        {
            "id": media_id,
            "mime_type": "application/pdf",
            "filename": "Invoice März 2026.pdf",
            "sha256": sha(PDF),
            "size": len(PDF),
            "phone_number_id": PNID,
        }
    ]


def test_audio_goes_without_a_caption_and_other_kinds_without_a_filename(sandbox, graph):
    sandbox.customer_wrote(CUSTOMER)
    audio = graph.upload_media(PNID, OGG, mime_type="audio/ogg", filename="voice.ogg")
    graph.send_media(PNID, to(), media_type="audio", media_id=audio, caption="dropped", filename="voice.ogg")
    image = graph.upload_media(PNID, PNG, mime_type="image/png", filename="a.png")
    graph.send_media(PNID, to(), media_type="image", media_id=image, filename="a.png")
    audio_sent, image_sent = sandbox.sent()[-2:]
    assert audio_sent["payload"]["audio"] == {"id": audio}  # Meta refuses a caption on audio
    assert image_sent["payload"]["image"] == {"id": image}
    assert audio_sent["media"]["sha256"] == sha(OGG)


def test_an_unsupported_type_is_rejected_with_code_100(sandbox, graph):
    with pytest.raises(GraphRejected) as refused:
        graph.upload_media(PNID, b"PK\x03\x04zip", mime_type="application/zip", filename="logs.zip")
    err = refused.value
    assert (err.status, err.code) == (400, 100)
    assert err.title.startswith("Param file must be a file with one of the following types: audio/aac")
    assert "Received file of type 'application/zip'" in err.title
    assert sandbox.media.uploads() == []


def test_an_image_over_5_mb_uploads_but_is_refused_as_an_image_with_131053(sandbox, graph):
    sandbox.customer_wrote(CUSTOMER)
    big = PNG + b"\x00" * (5 * MB + 1 - len(PNG))
    media_id = graph.upload_media(PNID, big, mime_type="image/png", filename="huge.png")  # ≤ 100 MB
    with pytest.raises(GraphRejected) as refused:
        graph.send_media(PNID, to(), media_type="image", media_id=media_id)
    assert (refused.value.code, refused.value.title) == (131053, "Media upload error")
    assert str(5 * MB) in refused.value.details
    # The same file fits a document.
    assert graph.send_media(PNID, to(), media_type="document", media_id=media_id, filename="huge.png")
    assert [s["type"] for s in sandbox.sent()] == ["document"]


def test_an_upload_over_the_limit_is_131053(sandbox, graph):
    # Meta's limit is 100 MB; lowered here so the test does not push 100 MB through loopback.
    sandbox.media.upload_max_bytes = 64 * 1024
    with pytest.raises(GraphRejected) as refused:
        graph.upload_media(PNID, b"%PDF" + b"x" * 64 * 1024, mime_type="application/pdf", filename="big.pdf")
    assert (refused.value.status, refused.value.code) == (400, 131053)
    # A body past the sandbox's read cap is drained, not buffered, and still answered cleanly.
    with pytest.raises(GraphRejected) as drained:
        graph.upload_media(PNID, b"x" * (2 * MB), mime_type="application/pdf", filename="bigger.pdf")
    assert drained.value.code == 131053
    anonymous = requests.post(
        f"{sandbox.url}/{API}/{PNID}/media",
        data=b"x" * (2 * MB),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
        timeout=10,
    )
    assert anonymous.status_code == 401  # the token is checked before the size, as everywhere
    assert sandbox.calls["POST /{version}/{phone_number_id}/media"] == 3
    assert sandbox.media.uploads() == []
    assert graph.upload_media(PNID, PDF, mime_type="application/pdf", filename="ok.pdf").isdigit()


def test_a_medium_of_the_wrong_kind_or_an_unknown_id_is_rejected(sandbox, graph):
    sandbox.customer_wrote(CUSTOMER)
    pdf = graph.upload_media(PNID, PDF, mime_type="application/pdf", filename="a.pdf")
    with pytest.raises(GraphRejected) as wrong_kind:
        graph.send_media(PNID, to(), media_type="image", media_id=pdf)
    assert wrong_kind.value.code == 131053 and "application/pdf" in wrong_kind.value.details
    with pytest.raises(GraphRejected) as unknown:
        graph.send_media(PNID, to(), media_type="video", media_id="424242")
    assert unknown.value.code == 100
    assert "video['id'] is not a valid whatsapp business account media attachment ID" in unknown.value.title
    with pytest.raises(ValueError):
        graph.send_media(PNID, to(), media_type="sticker", media_id=pdf)
    assert sandbox.sent() == []


def test_media_follow_the_24_hour_window(sandbox, graph):
    media_id = graph.upload_media(PNID, PNG, mime_type="image/png", filename="a.png")  # no window needed
    with pytest.raises(WindowClosed) as closed:
        graph.send_media(PNID, to(), media_type="image", media_id=media_id)
    assert closed.value.code == 131047
    sandbox.customer_wrote(CUSTOMER)
    assert graph.send_media(PNID, to(), media_type="image", media_id=media_id).startswith("wamid.")


def test_rate_limits_and_outages_on_upload(sandbox, graph):
    sandbox.faults.fail_next(429, retry_after=3, path_regex="/media$")
    with pytest.raises(GraphRateLimited) as limited:
        graph.upload_media(PNID, PNG, mime_type="image/png", filename="a.png")
    assert limited.value.retry_after == 3.0
    sandbox.faults.fail_next(500, path_regex="/media$")
    with pytest.raises(GraphUnavailable) as down:
        graph.upload_media(PNID, PNG, mime_type="image/png", filename="a.png")
    assert down.value.status == 500


@pytest.mark.parametrize(
    "status, content_type, body, match",
    [
        (502, "text/html", b"<html><body>Bad gateway</body></html>", "not a Graph error"),
        (200, "text/html", b"<html>captive portal</html>", "not JSON"),
        (200, "application/json", b'{"success": true}', "without a media id"),
        (200, "application/json", b'{"id": ""}', "without a media id"),
    ],
)
def test_pages_that_are_not_graph_answers_are_unavailable(status, content_type, body, match):
    def app(environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(f"{status} X", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    with LoopbackServer(app) as proxy:
        graph = GraphAdapter.connect(base_url=proxy.url, api_version=API, access_token=TOKEN, timeout=5)
        with pytest.raises(GraphUnavailable, match=match):
            graph.upload_media(PNID, PNG, mime_type="image/png", filename="a.png")


def test_the_upload_is_multipart_with_a_name_that_cannot_inject_headers():
    seen: list[tuple[str, bytes]] = []

    def app(environ, start_response):
        seen.append((environ["CONTENT_TYPE"], environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"id": "1234567890123456"}']

    evil = 'x"; name="messaging_product"\r\nContent-Type: text/html\r\n\r\n<script>.pdf'
    with LoopbackServer(app) as server:
        graph = GraphAdapter.connect(base_url=server.url, api_version=API, access_token=TOKEN, timeout=5)
        assert graph.upload_media(PNID, PDF, mime_type="application/pdf", filename=evil) == "1234567890123456"
    content_type, body = seen[0]
    assert content_type.startswith("multipart/form-data; boundary=")  # never the JSON type
    form = parse_form(content_type, body)
    assert set(form) == {"messaging_product", "type", "file"}
    assert form["messaging_product"].text() == "whatsapp" and form["type"].text() == "application/pdf"
    assert form["file"].data == PDF and form["file"].content_type == "application/pdf"
    assert (
        unquote(form["file"].filename or "") == "x; name=messaging_productContent-Type: text/html<script>.pdf"
    )
    assert body.count(b"Content-Disposition") == 3


def test_safe_filename_and_caption_clipping():
    assert safe_filename('a"b\\c\r\nd\x00e.pdf') == "abcde.pdf"
    assert safe_filename("  \r\n ") == "file"
    long = "n" * 300 + ".docx"
    clipped = safe_filename(long)
    assert len(clipped) == FILENAME_MAX and clipped.endswith(".docx")
    assert len(safe_filename("x" * 300)) == FILENAME_MAX
    assert clip_caption("é" * 1024) == "é" * 1024
    assert clip_caption("é" * 1025) == "é" * 1023 + "…" and len(clip_caption("a" * 5000)) == 1024
    body = media_message(to(), media_type="video", media_id="9", filename="v.mp4", caption="c" * 2000)
    assert body["video"] == {"id": "9", "caption": "c" * 1023 + "…"}
    assert body["messaging_product"] == "whatsapp" and body["to"] == CUSTOMER and body["type"] == "video"


def test_logs_carry_neither_bytes_nor_token_nor_filename(sandbox, graph):
    sandbox.customer_wrote(CUSTOMER)
    with structlog.testing.capture_logs() as logs:
        media_id = graph.upload_media(PNID, PDF, mime_type="application/pdf", filename="secret-plan.pdf")
        graph.send_media(PNID, to(), media_type="document", media_id=media_id, caption="private words")
    text = repr(logs)
    assert [entry["operation"] for entry in logs] == ["upload_media", "send_media"]
    assert logs[0]["size"] == len(PDF) and logs[0]["mime_type"] == "application/pdf"
    for leak in (TOKEN, "secret-plan", "receipt for SUP-12", "private words", CUSTOMER):
        assert leak not in text


# -- the sandbox's endpoint, spoken to directly ----------------------------------------------------


def upload(
    sb: GraphSandbox, *, data=None, files=None, body=None, headers=None, pnid=PNID
) -> requests.Response:
    return requests.post(
        f"{sb.url}/{API}/{pnid}/media",
        data=body if body is not None else data,
        files=files,
        headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})},
        timeout=10,
    )


def graph_error(r: requests.Response, status: int, code: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    spec = whatsapp_spec()
    assert spec.errors(body, spec.component("GraphAPIError"), direction="response") == []
    assert body["error"]["code"] == code
    return body["error"]


FILE = {"file": ("a.png", PNG, "image/png")}


def test_the_sandbox_checks_the_form_as_meta_does(sandbox):
    missing_product = graph_error(upload(sandbox, data={"type": "image/png"}, files=FILE), 400, 100)
    assert missing_product["message"] == "(#100) The parameter messaging_product is required."
    wrong_product = {"messaging_product": "sms", "type": "image/png"}
    graph_error(upload(sandbox, data=wrong_product, files=FILE), 400, 100)
    no_file = graph_error(
        upload(sandbox, data={"messaging_product": "whatsapp", "type": "image/png"}), 400, 100
    )
    assert "file is required" in no_file["message"]
    # Graph takes parameters as JSON too, but a JSON string is not a file (the spec's curl example).
    as_json = upload(
        sandbox,
        body=b'{"messaging_product": "whatsapp", "file": "@/tmp/a.png;type=image/png"}',
        headers={"Content-Type": "application/json"},
    )
    assert "file is required" in graph_error(as_json, 400, 100)["message"]
    # `type` absent: the file part's own Content-Type stands in.
    ok = upload(sandbox, data={"messaging_product": "whatsapp"}, files=FILE)
    assert ok.status_code == 200 and sandbox.media.get(ok.json()["id"]).mime_type == "image/png"
    # A parameter on the type is not part of it.
    voice = upload(
        sandbox,
        data={"messaging_product": "whatsapp", "type": "audio/ogg; codecs=opus"},
        files={"file": ("v.ogg", OGG, "audio/ogg")},
    )
    assert sandbox.media.get(voice.json()["id"]).mime_type == "audio/ogg"
    graph_error(upload(sandbox, data={"messaging_product": "whatsapp"}, files=FILE, pnid="999"), 400, 100)
    assert (
        upload(
            sandbox, data={"messaging_product": "whatsapp"}, files=FILE, headers={"Authorization": ""}
        ).status_code
        == 401
    )


def test_the_sandbox_answers_the_spec_and_counts_the_route(sandbox):
    r = upload(sandbox, data={"messaging_product": "whatsapp", "type": "image/png"}, files=FILE)
    assert r.status_code == 200
    op = whatsapp_spec().path_item("/{Version}/{Phone-Number-ID}/media")["post"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert whatsapp_spec().errors(r.json(), schema, direction="response") == []
    assert set(r.json()) == {"id"} and r.json()["id"].isdigit() and len(r.json()["id"]) == 16
    assert sandbox.calls["POST /{version}/{phone_number_id}/media"] == 1


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", b'["messaging_product", "whatsapp"]'),
        ("application/json", b"{not json"),
        ("text/plain", b"messaging_product=whatsapp"),
        ("multipart/form-data", b"--x\r\n"),  # no boundary parameter
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb"),
        ("multipart/form-data; boundary=x", b"--x\r\nno header end--x--\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: attachment\r\n\r\nb\r\n--x--\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nb\r\n--x--\r\n"),
        (
            "multipart/form-data; boundary=x",
            b"".join([b"--x\r\nContent-Disposition: form-data; name=p\r\n\r\n1\r\n"] * 17) + b"--x--",
        ),
    ],
)
def test_a_body_that_is_not_a_form_is_error_100(sandbox, content_type, body):
    error = graph_error(upload(sandbox, body=body, headers={"Content-Type": content_type}), 400, 100)
    assert "could not be parsed" in error["message"]


def test_the_parser_keeps_files_whole():
    boundary = "----b"
    # The delimiter's text inside a file, but never right after a line break (RFC 2046 forbids that).
    tricky = b"%PDF x------b not a delimiter\r\nline 2 ------b--\r\n"
    body = (
        b"preamble\r\n------b  \r\n"  # transport padding after the delimiter
        b'Content-Disposition: form-data; name="messaging_product"\r\n\r\nwhatsapp\r\n'
        b"------b\r\n"
        b"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n"
        b"Content-Type: application/pdf\r\n\r\n" + tricky + b"\r\n------b--\r\nepilogue"
    )
    form = parse_form(f'multipart/form-data; boundary="{boundary}"', body)
    assert form["file"].data == tricky and form["file"].filename == "résumé.pdf"
    assert form["messaging_product"].filename is None and form["messaging_product"].text() == "whatsapp"
    with pytest.raises(MultipartError):
        parse_form("multipart/form-data; boundary=" + "b" * 71, body)


def test_control_routes_for_media(sandbox, graph):
    ctl = f"{sandbox.url}/_sandbox"
    assert requests.get(f"{ctl}/media/777", timeout=5).status_code == 404
    limits = requests.post(f"{ctl}/media_limits", json={"send_max_bytes": {"image": 10}}, timeout=5).json()
    assert limits["send_max_bytes"]["image"] == 10 and limits["upload_max_bytes"] == 100 * MB
    assert (
        requests.post(f"{ctl}/media_limits", json={"send_max_bytes": {"gif": 1}}, timeout=5).status_code
        == 400
    )
    sandbox.customer_wrote(CUSTOMER)
    media_id = graph.upload_media(PNID, PNG, mime_type="image/png", filename="a.png")
    with pytest.raises(GraphRejected) as refused:
        graph.send_media(PNID, to(), media_type="image", media_id=media_id)
    assert refused.value.code == 131053
    requests.post(f"{ctl}/reset", timeout=5)
    assert requests.get(f"{ctl}/uploads", timeout=5).json() == {"uploads": []}
    assert sandbox.media.send_max_bytes["image"] == 5 * MB  # reset puts Meta's limits back


# == cassettes, checked against the spec ==========================================================

VCR = cassette_recorder(
    "graph_adapter", authorization=FAKE_BEARER, match_on=("method", "scheme", "path", "query", "form_or_json")
)


def _form_or_json(r1: Any, r2: Any) -> None:
    """Bodies match when their JSON or their multipart fields do; a multipart boundary is random."""
    assert _comparable(r1) == _comparable(r2)


def _comparable(request: Any) -> Any:
    body = request.body or b""
    content_type = request.headers.get("Content-Type") or request.headers.get("content-type") or ""
    if content_type.startswith("multipart/"):
        form = parse_form(content_type, body if isinstance(body, bytes) else body.encode())
        return {name: (p.filename, p.content_type, p.data) for name, p in form.items()}
    return json_of(body) if body else None


VCR.register_matcher("form_or_json", _form_or_json)
CASSETTE_TOKEN = "fake-graph-token"


@pytest.fixture
def recording_sandbox() -> Iterator[GraphSandbox]:
    # In replay the sandbox is never started: its steering only changes memory no request reads.
    sb = GraphSandbox(access_token=CASSETTE_TOKEN)
    if RECORD:
        sb.start()
    yield sb
    if RECORD:
        sb.stop()


@pytest.fixture
def taped(recording_sandbox: GraphSandbox) -> GraphAdapter:
    base_url = recording_sandbox.url if RECORD else REPLAY_URL
    return GraphAdapter.connect(base_url=base_url, api_version=API, access_token=CASSETTE_TOKEN, timeout=5)


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Any]:
    with open_cassette(VCR, cassette_name(request.node)) as recorded_cassette:
        yield recorded_cassette


def spec_problems(cassette: Any) -> list[str]:
    """Every recorded upload form, send body and answer against the v23 spec."""
    spec = whatsapp_spec()
    problems = []
    for request, response in recorded(cassette):
        path = requests.utils.urlparse(request.uri).path
        template = f"/{{Version}}/{{Phone-Number-ID}}/{path.rsplit('/', 1)[-1]}"
        op = spec.path_item(template)["post"]
        status = response["status"]["code"]
        answer = json_of(response["body"]["string"])
        if path.endswith("/media"):
            form = _comparable(request)
            fields = {
                name: ("<binary>" if filename is not None else data.decode())
                for name, (filename, _, data) in form.items()
            }
            schema = op["requestBody"]["content"]["multipart/form-data"]["schema"]
            problems += [f"upload form {p}" for p in spec.errors(fields, schema, direction="request")]
            missing = set(schema["properties"]) - set(fields)
            problems += [f"upload form lacks {name}" for name in sorted(missing)]
        else:
            body = json_of(request.body)
            problems += [f"send {p}" for p in spec.errors(body, send_schema(spec, body), direction="request")]
        if status == 200:
            schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        else:
            schema = spec.component("GraphAPIError")  # the operations declare no error bodies
        problems += [f"{template} {status} {p}" for p in spec.errors(answer, schema, direction="response")]
    return problems


def test_upload_a_png_then_send_it_as_an_image(recording_sandbox, taped, cassette):
    recording_sandbox.customer_wrote(CUSTOMER)
    media_id = taped.upload_media(PNID, PNG, mime_type="image/png", filename="screenshot.png")
    wamid = taped.send_media(PNID, to(), media_type="image", media_id=media_id, caption="Your receipt")
    assert wamid.startswith("wamid.")
    (upload_request, upload_response), (send_request, _) = recorded(cassette)
    assert upload_request.uri.endswith(f"/{API}/{PNID}/media")
    assert upload_request.headers["Authorization"] == FAKE_BEARER  # the filter ran
    assert upload_request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert _comparable(upload_request) == {
        "messaging_product": (None, None, b"whatsapp"),
        "type": (None, None, b"image/png"),
        "file": ("screenshot.png", "image/png", PNG),
    }
    assert json_of(upload_response["body"]["string"]) == {"id": media_id}
    assert json_of(send_request.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "image",
        "image": {"id": media_id, "caption": "Your receipt"},
    }
    assert spec_problems(cassette) == []


def test_upload_a_pdf_then_send_it_as_a_document_with_its_filename(recording_sandbox, taped, cassette):
    recording_sandbox.customer_wrote(CUSTOMER)
    media_id = taped.upload_media(PNID, PDF, mime_type="application/pdf", filename="invoice-SUP-12.pdf")
    taped.send_media(
        PNID, to(), media_type="document", media_id=media_id, filename="invoice-SUP-12.pdf", caption="Invoice"
    )
    _, (send_request, _) = recorded(cassette)
    assert json_of(send_request.body)["document"] == {
        "id": media_id,
        "caption": "Invoice",
        "filename": "invoice-SUP-12.pdf",
    }
    assert spec_problems(cassette) == []


def test_upload_audio_then_send_it_without_a_caption(recording_sandbox, taped, cassette):
    recording_sandbox.customer_wrote(CUSTOMER)
    media_id = taped.upload_media(PNID, OGG, mime_type="audio/ogg", filename="voice-note.ogg")
    taped.send_media(PNID, to(), media_type="audio", media_id=media_id, caption="not sent")
    _, (send_request, _) = recorded(cassette)
    assert json_of(send_request.body)["audio"] == {"id": media_id}
    assert spec_problems(cassette) == []


def test_upload_refuses_an_unsupported_type(taped, cassette):
    with pytest.raises(GraphRejected) as refused:
        taped.upload_media(PNID, b"PK\x03\x04", mime_type="application/zip", filename="logs.zip")
    assert (refused.value.status, refused.value.code) == (400, 100)
    assert "Param file must be a file with one of the following types" in refused.value.title
    assert spec_problems(cassette) == []


def test_send_refuses_an_image_over_its_limit(recording_sandbox, taped, cassette):
    # Recorded with the sandbox's image limit lowered to 64 bytes: the answer is Meta's 131053
    # either way, and the cassette stays small.
    recording_sandbox.media.send_max_bytes["image"] = 64
    recording_sandbox.customer_wrote(CUSTOMER)
    media_id = taped.upload_media(PNID, PNG, mime_type="image/png", filename="big.png")
    with pytest.raises(GraphRejected) as refused:
        taped.send_media(PNID, to(), media_type="image", media_id=media_id)
    assert (refused.value.code, refused.value.title) == (131053, "Media upload error")
    assert refused.value.details and refused.value.fbtrace_id
    assert spec_problems(cassette) == []


def test_the_spec_check_sees_a_bad_upload_form():
    # Without this, a checker that accepted everything would make the cassette tests pass.
    spec = whatsapp_spec()
    op = spec.path_item("/{Version}/{Phone-Number-ID}/media")["post"]
    schema = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert spec.errors({"messaging_product": 7, "file": "<binary>"}, schema, direction="request") != []
    assert json.loads(json.dumps(schema))["properties"]["file"]["format"] == "binary"


# == the fake remembers what it sent, bytes included ==============================================


def test_fake_graph_records_sent_media_with_their_bytes():
    fake = FakeGraph(enforce_window=True)
    fake.customer_wrote(CUSTOMER, PNID)
    media_id = fake.upload_media(PNID, OGG, mime_type="audio/ogg", filename="voice.ogg")
    wamid = fake.send_media(
        PNID, to(), media_type="audio", media_id=media_id, caption="x", filename="voice.ogg"
    )
    assert fake.uploads == [
        {
            "media_id": media_id,
            "phone_number_id": PNID,
            "data": OGG,
            "mime_type": "audio/ogg",
            "filename": "voice.ogg",
        }
    ]
    assert fake.media_sent == [
        {
            "wamid": wamid,
            "phone_number_id": PNID,
            "to": to(),
            "media_type": "audio",
            "media_id": media_id,
            "filename": None,  # as the adapter sends it: no filename, no caption on audio
            "caption": None,
            "data": OGG,
            "mime_type": "audio/ogg",
        }
    ]
    unlimited = FakeGraph(media_limits=False)
    assert unlimited.upload_media(PNID, b"PK", mime_type="application/zip", filename="x.zip")
    assert fake.calls == ["upload_media", "send_media"]
