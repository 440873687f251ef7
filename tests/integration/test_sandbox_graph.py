"""The Graph sandbox, driven with `requests` the way the daemon's WhatsApp adapter calls Meta.

Bodies are checked against Meta's published OpenAPI description
(shared/specs/whatsapp-business-messaging-v23.openapi.yaml) with the tests' one checker
(tests/support/spec.py), so the sandbox cannot drift from what the Cloud API answers and what its webhooks carry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bot.rules.signature import SignatureCheck, check_signature
from sandbox import whatsapp_payloads
from sandbox.graph import GraphSandbox
from sandbox.httpserver import LoopbackServer
from tests.support.spec import whatsapp_spec

TOKEN = "sandbox-graph-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "test-app-secret"
CUSTOMER = "16505551234"


# -- Meta's description, through the one checker (tests/support/spec.py) ---------------------------


def schema(name: str) -> dict[str, Any]:
    return whatsapp_spec().component(name)


def problems(node: dict[str, Any], value: Any) -> list[str]:
    return whatsapp_spec().errors(value, node)


def assert_matches(name_or_node: str | dict, value: Any) -> None:
    node = schema(name_or_node) if isinstance(name_or_node, str) else name_or_node
    assert problems(node, value) == []


def operation(path: str, method: str) -> dict[str, Any]:
    return whatsapp_spec().path_item(path)[method]


def test_checker_catches_drift():
    # Without this, a checker that silently accepts everything would make every spec test pass.
    assert problems(schema("Statuses"), {"id": "w", "status": "sent"}) != []
    assert (
        problems(schema("Statuses"), {"id": "w", "status": "gone", "timestamp": "1", "recipient_id": "1"})
        != []
    )
    assert problems(schema("MessageResponsePayload"), {"messages": [{"id": 7}]}) != []
    assert problems(schema("Message"), {"messaging_product": "whatsapp", "to": "1", "type": "text"}) != []


# -- fixtures -----------------------------------------------------------------------------------


class Receiver:
    """A tiny webhook endpoint that keeps every POST (headers and raw body)."""

    def __init__(self) -> None:
        self.hits: list[tuple[dict[str, str], bytes]] = []
        self._cond = threading.Condition()
        self.server = LoopbackServer(self.app)

    def app(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        with self._cond:
            self.hits.append((headers, body))
            self._cond.notify_all()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.hits) < count and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            return list(self.hits)


@pytest.fixture
def graph():
    sb = GraphSandbox()
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    r.server.start()
    yield r
    r.server.stop()


@pytest.fixture
def wired(receiver):
    sb = GraphSandbox(
        webhook_url=receiver.server.url + "/api/whatsapp/webhook", app_secret=SECRET, status_delay=0.02
    )
    sb.start()
    yield sb, receiver
    sb.stop()


def text_body(body: str = "Hello from the agent", to: str = "+" + CUSTOMER) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": False, "body": body},
    }


def template_body(to: str = CUSTOMER) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": "ticket_update",
            "language": {"code": "en_US", "policy": "deterministic"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "SUP-1"}]}],
        },
    }


def post(sb: GraphSandbox, body: dict[str, Any], headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(
        sb.messages_url(), json=body, headers=AUTH if headers is None else headers, timeout=5
    )


def graph_error(r: requests.Response, status: int, code: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert_matches("GraphAPIError", body)
    assert body["error"]["code"] == code
    return body["error"]


# -- auth, sends, validation --------------------------------------------------------------------


def test_missing_and_wrong_token_are_401_graph_errors(graph):
    graph_error(post(graph, text_body(), headers={}), 401, 104)
    err = graph_error(post(graph, text_body(), headers={"Authorization": "Bearer nope"}), 401, 190)
    assert err["type"] == "OAuthException" and err["fbtrace_id"]
    graph_error(requests.get(f"{graph.url}/v23.0/{graph.phone_number_id}", timeout=5), 401, 104)
    assert graph.sent() == []


def test_text_send_is_recorded_and_answered_per_spec(graph):
    graph.customer_wrote(CUSTOMER)
    body = text_body()
    assert_matches("Message", body)  # what we send is what the spec describes
    r = post(graph, body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert_matches("MessageResponsePayload", answer)
    assert answer["contacts"] == [{"input": "+" + CUSTOMER, "wa_id": CUSTOMER}]
    wamid = answer["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    [record] = graph.sent()
    assert record["wamid"] == wamid and record["to"] == "+" + CUSTOMER and record["wa_id"] == CUSTOMER
    assert record["type"] == "text" and record["body"] == "Hello from the agent"
    assert record["phone_number_id"] == graph.phone_number_id and record["time"] > 0
    assert graph.calls["POST /{version}/{phone_number_id}/messages"] == 1
    graph.sent()[0]["body"] = "mutated"
    assert graph.sent()[0]["body"] == "Hello from the agent"


def test_text_body_limit_is_4096(graph):
    graph.customer_wrote(CUSTOMER)
    assert post(graph, text_body("x" * 4096)).status_code == 200
    err = graph_error(post(graph, text_body("x" * 4097)), 400, 100)
    assert "4096" in err["message"] and "4096" in err["error_data"]["details"]
    assert len(graph.sent()) == 1


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda b: b.pop("messaging_product"), "messaging_product is required"),
        (lambda b: b.update(messaging_product="sms"), "messaging_product"),
        (lambda b: b.pop("to"), "to is required"),
        (lambda b: b.update(type="hologram"), "Param type"),
        (lambda b: b.update(type="image", image={"id": "1", "link": "https://x/y.jpg"}), "exactly one"),
        (lambda b: b.update(type="image", image={"id": "1", "caption": "c" * 1025}), "1024"),
        (lambda b: b.update(type="template", template={"name": "t"}), "language"),
        (
            lambda b: b.update(
                type="interactive",
                interactive={"type": "button", "body": {"text": "b" * 1025}, "action": {"buttons": []}},
            ),
            "1024",
        ),
        (lambda b: b.update(type="reaction", reaction={"emoji": "👍"}), "message_id"),
    ],
)
def test_invalid_sends_are_error_100(graph, mutate, fragment):
    graph.customer_wrote(CUSTOMER)
    body = text_body()
    mutate(body)
    err = graph_error(post(graph, body), 400, 100)
    assert fragment in err["message"]
    assert graph.sent() == []


def test_unknown_phone_number_id_is_error_100(graph):
    r = requests.post(f"{graph.url}/v23.0/999/messages", json=text_body(), headers=AUTH, timeout=5)
    err = graph_error(r, 400, 100)
    assert err["error_subcode"] == 33 and "999" in err["message"]


def test_free_form_outside_24h_is_131047_but_templates_go_through(graph):
    err = graph_error(post(graph, text_body()), 400, 131047)  # never wrote: no window
    assert err["message"] == "(#131047) Re-engagement message"
    assert "24 hours" in err["error_data"]["details"]
    graph.customer_wrote(CUSTOMER, at=time.time() - 25 * 3600)
    graph_error(post(graph, text_body()), 400, 131047)
    r = post(graph, template_body())
    assert r.status_code == 200, r.text
    assert_matches("MessageResponsePayload", r.json())
    assert r.json()["messages"][0]["message_status"] == "accepted"
    graph.customer_wrote(CUSTOMER, at=time.time() - 23 * 3600)
    assert post(graph, text_body()).status_code == 200
    assert [s["type"] for s in graph.sent()] == ["template", "text"]
    assert graph.sent()[0]["template"]["name"] == "ticket_update"


def test_window_is_per_business_number():
    with GraphSandbox(phone_numbers={"111": "15550000001", "222": "15550000002"}) as sb:
        sb.customer_wrote(CUSTOMER, phone_number_id="222")
        first = requests.post(sb.messages_url("111"), json=text_body(), headers=AUTH, timeout=5)
        second = requests.post(sb.messages_url("222"), json=text_body(), headers=AUTH, timeout=5)
        assert (first.status_code, second.status_code) == (400, 200)


def test_observe_webhook_opens_the_window(graph):
    payload = whatsapp_payloads.message_payload([whatsapp_payloads.text(CUSTOMER, "hi")])
    graph.observe_webhook(payload)
    assert post(graph, text_body()).status_code == 200


@pytest.mark.parametrize(
    "code, status", [(130429, 429), (131056, 429), (80007, 429), (131026, 400), (131052, 400), (131000, 500)]
)
def test_injected_send_errors(graph, code, status):
    graph.customer_wrote(CUSTOMER)
    graph.fail_next_send(code, count=2)
    for _ in range(2):
        err = graph_error(post(graph, text_body()), status, code)
        assert err["message"].startswith(f"(#{code}) ") and err["error_data"]["details"]
    assert post(graph, text_body()).status_code == 200
    assert len(graph.sent()) == 1


def test_injected_error_titles_and_http_override(graph):
    graph.customer_wrote(CUSTOMER)
    graph.fail_next_send(131026)
    graph.fail_next_send(130429, http_status=400)
    assert "Message undeliverable" in graph_error(post(graph, text_body()), 400, 131026)["message"]
    assert "Rate limit hit" in graph_error(post(graph, text_body()), 400, 130429)["message"]


def test_mark_read_and_typing(graph):
    mid = whatsapp_payloads.new_wamid(CUSTOMER)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": mid}
    assert_matches("MarkMessageRequestPayload", body)
    r = post(graph, body)
    assert r.status_code == 200 and r.json() == {"success": True}
    assert_matches("MarkMessageResponsePayload", r.json())
    r = post(graph, {**body, "typing_indicator": {"type": "text"}})
    assert r.json() == {"success": True}
    assert [(x["message_id"], x["typing"]) for x in graph.reads()] == [(mid, False), (mid, True)]
    assert graph.sent() == []  # no window needed, nothing "sent"
    graph_error(post(graph, {**body, "typing_indicator": {"type": "audio"}}), 400, 100)


def test_phone_number_node(graph):
    r = requests.get(f"{graph.url}/v23.0/{graph.phone_number_id}", headers=AUTH, timeout=5)
    assert r.status_code == 200
    node = r.json()
    assert_matches("PhoneNumberInfo", node)
    assert node == {
        "id": graph.phone_number_id,
        "display_phone_number": "+1 555-078-3881",
        "verified_name": "Wajira Sandbox",
        "quality_rating": "GREEN",
    }
    r = requests.get(
        f"{graph.url}/v23.0/{graph.phone_number_id}?fields=name_status,quality_rating",
        headers=AUTH,
        timeout=5,
    )
    assert r.json() == {"id": graph.phone_number_id, "name_status": "APPROVED", "quality_rating": "GREEN"}
    graph_error(
        requests.get(f"{graph.url}/v23.0/{graph.phone_number_id}?fields=bogus", headers=AUTH, timeout=5),
        400,
        100,
    )
    graph_error(
        requests.get(f"{graph.url}/latest/{graph.phone_number_id}", headers=AUTH, timeout=5), 400, 100
    )
    assert graph.calls["GET /{version}/{phone_number_id}"] == 4


def test_fault_plan_speaks_graph(graph):
    graph.faults.fail_next(503, path_regex="/messages$")
    err = graph_error(post(graph, text_body()), 503, 2)
    assert err["is_transient"] is True
    graph.faults.fail_next(429, retry_after=2)
    r = post(graph, text_body())
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert_matches("GraphAPIError", r.json())


# -- status webhooks ----------------------------------------------------------------------------


def statuses_of(hits) -> list[dict[str, Any]]:
    out = []
    for headers, raw in hits:
        assert check_signature(SECRET, raw, headers.get("x-hub-signature-256")) is SignatureCheck.OK
        payload = json.loads(raw)
        assert_matches("WebhookPayload", payload)
        change = payload["entry"][0]["changes"][0]
        assert change["field"] == "messages"
        assert_matches("StatusMessageValue", change["value"])
        assert change["value"]["metadata"]["display_phone_number"] == "15550783881"
        out += change["value"]["statuses"]
    return out


def test_signed_status_callbacks_follow_a_send(wired):
    sb, receiver = wired
    sb.customer_wrote(CUSTOMER)
    wamid = post(sb, text_body()).json()["messages"][0]["id"]
    statuses = statuses_of(receiver.wait_for(3))
    assert [(s["id"], s["status"], s["recipient_id"]) for s in statuses] == [
        (wamid, "sent", CUSTOMER),
        (wamid, "delivered", CUSTOMER),
        (wamid, "read", CUSTOMER),
    ]
    assert sb.wait_statuses()
    assert [d["http_status"] for d in sb.status_deliveries()] == [200, 200, 200]


def test_fail_delivery_next_gives_sent_then_failed(wired):
    sb, receiver = wired
    sb.customer_wrote(CUSTOMER)
    sb.fail_delivery(True, code=131026)
    wamid = post(sb, text_body()).json()["messages"][0]["id"]
    assert sb.wait_statuses()
    statuses = statuses_of(receiver.wait_for(2))
    assert [s["status"] for s in statuses] == ["sent", "failed"]
    failed = statuses[1]
    assert failed["id"] == wamid
    assert_matches("Statuses", failed)
    assert failed["errors"][0]["code"] == 131026 and failed["errors"][0]["title"] == "Message undeliverable"


def test_fail_delivery_by_wamid_after_acceptance(receiver):
    url = receiver.server.url + "/hook"
    with GraphSandbox(webhook_url=url, app_secret=SECRET, status_delay=0.3) as sb:
        sb.customer_wrote(CUSTOMER)
        wamid = post(sb, text_body()).json()["messages"][0]["id"]
        sb.fail_delivery(wamid, code=131026)
        assert sb.wait_statuses(timeout=5)
    assert [s["status"] for s in statuses_of(receiver.hits)] == ["sent", "failed"]


def test_window_error_via_webhook(receiver):
    with GraphSandbox(
        webhook_url=receiver.server.url, app_secret=SECRET, status_delay=0.01, window_error_via="webhook"
    ) as sb:
        r = post(sb, text_body())
        assert r.status_code == 200
        assert sb.wait_statuses()
    [failed] = statuses_of(receiver.hits)
    assert failed["status"] == "failed" and failed["errors"][0]["code"] == 131047


def test_status_sequence_is_configurable(receiver):
    with GraphSandbox(
        webhook_url=receiver.server.url, app_secret=SECRET, status_delay=0.01, status_sequence=("sent",)
    ) as sb:
        sb.customer_wrote(CUSTOMER)
        post(sb, text_body())
        assert sb.wait_statuses()
    assert [s["status"] for s in statuses_of(receiver.hits)] == ["sent"]


# -- media --------------------------------------------------------------------------------------


def test_media_url_and_download(graph):
    data = b"%PDF-1.7 sandbox receipt"
    graph.add_media("1003383421387260", data, "application/pdf")
    r = requests.get(f"{graph.url}/v23.0/1003383421387260", headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    info = r.json()
    assert_matches(
        operation("/{Version}/{Media-ID}", "get")["responses"]["200"]["content"]["application/json"][
            "schema"
        ],
        info,
    )
    assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["file_size"] == str(len(data))
    assert info["mime_type"] == "application/pdf" and info["messaging_product"] == "whatsapp"
    got = requests.get(info["url"], headers=AUTH, timeout=5)
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"] == "application/pdf"
    assert requests.get(info["url"], timeout=5).status_code == 401
    assert requests.get(info["url"].replace("hash=", "hash=0"), headers=AUTH, timeout=5).status_code == 404
    assert graph.calls["GET /{version}/{media_id}"] == 1


def test_media_url_expires(graph):
    graph.media_url_ttl = 0.5
    graph.add_media("42", b"\x89PNG", "image/png")
    url = requests.get(f"{graph.url}/v23.0/42", headers=AUTH, timeout=5).json()["url"]
    assert requests.get(url, headers=AUTH, timeout=5).status_code == 200
    expiry = int(parse_qs(urlsplit(url).query)["ext"][0])  # epoch seconds, like Meta's CDN URLs
    time.sleep(max(0.0, expiry - time.time()) + 0.05)
    expired = requests.get(url, headers=AUTH, timeout=5)
    assert expired.status_code == 404 and b"expired" in expired.content
    fresh = requests.get(f"{graph.url}/v23.0/42", headers=AUTH, timeout=5).json()["url"]
    assert requests.get(fresh, headers=AUTH, timeout=5).content == b"\x89PNG"


def test_unknown_media_and_wrong_owner(graph):
    graph_error(requests.get(f"{graph.url}/v23.0/777", headers=AUTH, timeout=5), 400, 100)
    graph.add_media("43", b"x", "image/jpeg", phone_number_id=graph.phone_number_id)
    r = requests.get(f"{graph.url}/v23.0/43?phone_number_id=999", headers=AUTH, timeout=5)
    graph_error(r, 400, 100)


# -- control routes (for subprocess tests) ------------------------------------------------------


def test_control_routes(graph):
    ctl = graph.url + "/_sandbox"
    assert requests.post(f"{ctl}/customer_wrote", json={"wa_id": CUSTOMER}, timeout=5).json() == {"ok": True}
    requests.post(f"{ctl}/fail_send", json={"code": 130429}, timeout=5)
    assert post(graph, text_body()).status_code == 429
    assert post(graph, text_body()).status_code == 200
    requests.post(f"{ctl}/faults", json={"status": 500, "count": 1}, timeout=5)
    assert post(graph, text_body()).status_code == 500
    requests.post(f"{ctl}/faults", json={"status": 503, "seconds": 30}, timeout=5)
    assert requests.get(f"{ctl}/sent", timeout=5).status_code == 200  # control is never faulted
    requests.post(f"{ctl}/faults/clear", timeout=5)
    post(graph, {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"})
    encoded = base64.b64encode(b"abc").decode()
    requests.post(
        f"{ctl}/media", json={"media_id": "9", "mime_type": "text/plain", "data_base64": encoded}, timeout=5
    )
    assert requests.get(f"{graph.url}/v23.0/9", headers=AUTH, timeout=5).status_code == 200
    assert len(requests.get(f"{ctl}/sent", timeout=5).json()["sent"]) == 1
    assert requests.get(f"{ctl}/reads", timeout=5).json()["reads"][0]["message_id"] == "wamid.X"
    assert requests.post(f"{ctl}/customer_wrote", json={}, timeout=5).status_code == 400
    requests.post(f"{ctl}/reset", timeout=5)
    assert graph.sent() == [] and graph.reads() == [] and sum(graph.calls.values()) == 0
    graph_error(post(graph, text_body()), 400, 131047)  # the window was forgotten too
