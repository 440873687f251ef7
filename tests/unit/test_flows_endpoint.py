"""bot.flows.screens and bot.flows.endpoint: Meta's requests in, encrypted answers out."""

from __future__ import annotations

import json

import pytest

from bot.config.model import FlowScreen
from bot.flows.crypto import private_key_from_pem
from bot.flows.endpoint import FlowEndpoint
from bot.flows.screens import UNAVAILABLE, answer_request
from bot.rules.signature import sign
from sandbox.flows_client import new_key_pair, open_answer, seal

SECRET = "unit-app-secret"
SCREENS = (
    FlowScreen(
        id="INIT", next_screen="DETAILS", data={"greeting": "Hi", "sizes": [{"id": "m", "title": "M"}]}
    ),
    FlowScreen(id="DETAILS", next_screen="CONFIRM", data={"echo": "Order {order_id} ({flow_token})", "n": 3}),
    FlowScreen(id="CONFIRM", next_screen="SUCCESS", data={"order_id": "{order_id}"}),
)


def request(action: str, screen: str | None = None, data: dict | None = None) -> dict:
    out = {"version": "3.0", "action": action, "flow_token": "tok-1"}
    if screen is not None:
        out["screen"] = screen
    if data is not None:
        out["data"] = data
    return out


@pytest.mark.parametrize(
    "req, answer, outcome",
    [
        ({"version": "3.0", "action": "ping"}, {"data": {"status": "active"}}, "ping"),
        (
            request("INIT"),
            {"screen": "DETAILS", "data": {"greeting": "Hi", "sizes": [{"id": "m", "title": "M"}]}},
            "init",
        ),
        (
            request("data_exchange", "DETAILS", {"order_id": "A-17"}),
            {"screen": "CONFIRM", "data": {"echo": "Order A-17 (tok-1)", "n": 3}},
            "data_exchange",
        ),
        (
            request("data_exchange", "CONFIRM", {"order_id": "A-17"}),
            {
                "screen": "SUCCESS",
                "data": {
                    "extension_message_response": {"params": {"flow_token": "tok-1", "order_id": "A-17"}}
                },
            },
            "data_exchange",
        ),
        (
            request("BACK", "CONFIRM", {"order_id": "A-17"}),
            {"screen": "CONFIRM", "data": {"echo": "Order A-17 (tok-1)", "n": 3}},
            "back",
        ),
        (request("BACK", "ELSEWHERE"), {"screen": "ELSEWHERE", "data": {}}, "back"),
        (
            request("data_exchange", "UNKNOWN", {}),
            {"screen": "UNKNOWN", "data": {"error_message": UNAVAILABLE}},
            "unanswered",
        ),
        (
            request("navigate", "DETAILS"),
            {"screen": "DETAILS", "data": {"error_message": UNAVAILABLE}},
            "unanswered",
        ),
        (
            request("data_exchange", "DETAILS", {"error": "invalid-screen-data", "error_message": "bad"}),
            {"data": {"acknowledged": True}},
            "error_notification",
        ),
        (
            request("INIT", data={"error": "x", "error_message": "y"}),
            {"data": {"acknowledged": True}},
            "error_notification",
        ),
    ],
)
def test_answer_request(req, answer, outcome) -> None:
    assert answer_request(req, SCREENS) == (answer, outcome)


def test_answers_do_not_share_the_configured_data() -> None:
    answer, _ = answer_request(request("INIT"), SCREENS)
    answer["data"]["sizes"].append("changed")
    assert SCREENS[0].data["sizes"] == [{"id": "m", "title": "M"}]


def test_init_without_a_table_is_unanswered() -> None:
    assert answer_request(request("INIT"), ())[1] == "unanswered"


# -- the HTTP handler -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys():
    pem, public = new_key_pair()
    return private_key_from_pem(pem), public


@pytest.fixture
def endpoint(keys):
    seen: list[str] = []
    handler = FlowEndpoint(app_secret=SECRET, private_key=keys[0], screens=SCREENS, observe=seen.append)
    handler.seen = seen
    return handler


def post(endpoint, public, req: dict):
    sealed = seal(public, req)
    body = json.dumps(sealed.body).encode()
    reply = endpoint.handle(sign(SECRET, body), body)
    return reply, sealed


def test_ping_is_answered_encrypted(endpoint, keys) -> None:
    reply, sealed = post(endpoint, keys[1], {"version": "3.0", "action": "ping"})
    assert (reply.status, reply.content_type) == (200, "text/plain")
    assert open_answer(reply.body.decode(), sealed.aes_key, sealed.iv) == {"data": {"status": "active"}}
    assert endpoint.seen == ["ping"]


def test_data_exchange_goes_to_the_configured_screen(endpoint, keys) -> None:
    reply, sealed = post(endpoint, keys[1], request("data_exchange", "DETAILS", {"order_id": "B-2"}))
    answer = open_answer(reply.body.decode(), sealed.aes_key, sealed.iv)
    assert answer == {"screen": "CONFIRM", "data": {"echo": "Order B-2 (tok-1)", "n": 3}}


@pytest.mark.parametrize("header", [None, "", "sha256=" + "0" * 64, "md5=abc", sign("other-secret", b"{}")])
def test_missing_or_wrong_signature_is_432(endpoint, keys, header) -> None:
    body = json.dumps(seal(keys[1], {"action": "ping"}).body).encode()
    reply = endpoint.handle(header, body)
    assert reply.status == 432 and "X-Hub-Signature-256" in json.loads(reply.body)["error"]
    assert endpoint.seen == ["bad_signature"]


def test_signature_covers_the_raw_bytes(endpoint, keys) -> None:
    body = json.dumps(seal(keys[1], {"action": "ping"}).body).encode()
    reformatted = json.dumps(json.loads(body), indent=1).encode()
    assert endpoint.handle(sign(SECRET, body), reformatted).status == 432


def test_non_json_is_400(endpoint) -> None:
    for body in (b"not json", b"\xff\xfe", b"[" * 100_000):
        assert endpoint.handle(sign(SECRET, body), body).status == 400


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"[1]",
        b'"x"',
        b'{"encrypted_flow_data": "AAAA", "encrypted_aes_key": "AAAA", "initial_vector": "AAAA"}',
    ],
)
def test_undecryptable_is_421(endpoint, body) -> None:
    reply = endpoint.handle(sign(SECRET, body), body)
    assert reply.status == 421
    assert endpoint.seen == ["undecryptable"]


def test_a_request_for_another_key_is_421(endpoint) -> None:
    other_public = new_key_pair()[1]
    reply, _ = post(endpoint, other_public, {"action": "ping"})
    assert reply.status == 421


def test_an_empty_app_secret_is_refused(keys) -> None:
    with pytest.raises(ValueError, match="app_secret"):
        FlowEndpoint(app_secret="", private_key=keys[0])
