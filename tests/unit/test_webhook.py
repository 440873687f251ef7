"""The webhook handler and WSGI routing, with a store that remembers (no database)."""

from __future__ import annotations

import io
import json

import pytest

from bot.http.app import AdminApp, WsgiApp
from bot.rules.signature import sign
from bot.whatsapp.webhook import WebhookHandler
from sandbox import whatsapp_payloads as wa
from storage.db import StorageUnavailable
from storage.inbound import StoreResult

SECRET = "unit-secret"


class FakeStore:
    def __init__(self, fail: bool = False) -> None:
        self.batches = []
        self.fail = fail

    def __call__(self, batch):
        if self.fail:
            raise StorageUnavailable("database is down")
        self.batches.append(batch)
        return StoreResult(len(batch.messages), 0, len(batch.statuses), len(batch.others))


def make_app(store=None, max_body=4096):
    store = store or FakeStore()
    nudges = []
    handler = WebhookHandler(
        verify_token="vt",
        app_secret=SECRET,
        max_body_bytes=max_body,
        store=store,
        on_stored=nudges.append,
    )
    app = WsgiApp(
        webhook_path="/api/whatsapp/webhook",
        webhook=handler,
        health=lambda: (True, {"status": "ok", "problems": [], "last_poll": 1.0}),
    )
    return app, store, nudges


def call(app, method="POST", path="/api/whatsapp/webhook", body=b"", headers=None, query="", stream=None):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": stream or io.BytesIO(body),
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    captured = {}

    def start_response(status, hdrs):
        captured["status"] = int(status.split()[0])
        captured["headers"] = dict(hdrs)

    out = b"".join(app(environ, start_response))
    return captured["status"], out


def signed(body: bytes) -> dict:
    return {"X-Hub-Signature-256": sign(SECRET, body)}


def text_body() -> bytes:
    return json.dumps(
        wa.message_payload([wa.text("447700900123", "hi")], contacts=[wa.contact("Bo", "447700900123")])
    ).encode()


def test_verify_handshake_echoes_the_challenge():
    app, _, _ = make_app()
    status, body = call(app, "GET", query="hub.mode=subscribe&hub.verify_token=vt&hub.challenge=1158201444")
    assert (status, body) == (200, b"1158201444")


@pytest.mark.parametrize(
    "query",
    [
        "hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
        "hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=vt&hub.challenge=1",
    ],
)
def test_verify_refuses_wrong_token_or_mode(query):
    app, _, _ = make_app()
    assert call(app, "GET", query=query)[0] == 403


def test_signed_delivery_is_stored_and_nudges_the_inbox():
    app, store, nudges = make_app()
    body = text_body()
    status, reply = call(app, body=body, headers=signed(body))
    assert status == 200 and json.loads(reply) == {"status": "ok"}
    assert len(store.batches) == 1 and store.batches[0].messages[0].raw["text"]["body"] == "hi"
    assert len(nudges) == 1


@pytest.mark.parametrize(
    "headers, body, expected",
    [
        ({}, b"{}", 401),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, b"{}", 403),
        ({"X-Hub-Signature-256": "sha1=abc"}, b"{}", 403),
        ({"X-Hub-Signature-256": sign(SECRET, b"not json")}, b"not json", 400),
        ({"X-Hub-Signature-256": sign(SECRET, b'{"object": "page"}')}, b'{"object": "page"}', 400),
        ({"X-Hub-Signature-256": sign(SECRET, b"\xff\xfe")}, b"\xff\xfe", 400),
    ],
)
def test_bad_deliveries_get_a_reason_and_store_nothing(headers, body, expected):
    app, store, nudges = make_app()
    status, reply = call(app, body=body, headers=headers)
    assert status == expected
    assert json.loads(reply)["error"]
    assert store.batches == [] and nudges == []


def test_oversized_body_is_refused_by_its_declared_length_before_reading():
    app, store, _ = make_app(max_body=2048)
    body = b"x" * 4096
    environ_body = io.BytesIO(body)
    status, _ = call(app, body=body, headers=signed(body), stream=environ_body)
    assert status == 413 and store.batches == []
    assert environ_body.tell() == 0


def test_deeply_nested_json_is_a_400_not_a_crash():
    app, store, _ = make_app(max_body=10**6)
    body = b"[" * 100_000 + b"]" * 100_000
    status, _ = call(app, body=body, headers=signed(body))
    assert status == 400 and store.batches == []


def test_storage_down_is_503_so_meta_retries():
    app, _, nudges = make_app(store=FakeStore(fail=True))
    body = text_body()
    status, reply = call(app, body=body, headers=signed(body))
    assert status == 503 and "storage" in json.loads(reply)["error"] and nudges == []


def test_other_routes():
    app, _, _ = make_app()
    assert call(app, "GET", "/healthz") == (200, b'{"status": "ok"}')
    assert call(app, "GET", "/metrics")[0] == 404  # the admin listener's, never the public port's
    assert call(app, "GET", "/nope")[0] == 404
    assert call(app, "PUT")[0] == 405


def test_public_health_gives_the_verdict_and_no_reason():
    app = WsgiApp(
        webhook_path="/hook",
        webhook=make_app()[0].webhook,
        health=lambda: (False, {"status": "unhealthy", "problems": ["storage: db.internal:5432 refused"]}),
    )
    status, body = call(app, "GET", "/healthz")
    assert (status, json.loads(body)) == (503, {"status": "unavailable"})


def test_admin_routes_give_metrics_and_the_reasons():
    admin = AdminApp(
        health=lambda: (False, {"status": "unhealthy", "problems": ["storage: down"]}),
        metrics=lambda: (b"m 1\n", "text/plain"),
    )
    assert call(admin, "GET", "/metrics") == (200, b"m 1\n")
    status, body = call(admin, "GET", "/healthz")
    assert status == 503 and json.loads(body)["problems"] == ["storage: down"]
    assert call(admin, "GET", "/api/whatsapp/webhook")[0] == 404
    assert call(admin, "POST", "/metrics")[0] == 405


def test_refuses_to_start_without_app_secret():
    with pytest.raises(ValueError, match="app_secret"):
        WebhookHandler(verify_token="v", app_secret="", max_body_bytes=10, store=FakeStore())
