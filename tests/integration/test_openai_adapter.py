"""OpenAIAdapter against cassettes recorded from the OpenAI sandbox, through the real `openai` SDK.

Replay (the default) needs no server and no key; `WAJIRA_RECORD_CASSETTES=1` re-records against
`sandbox.openai_stub.OpenAISandbox` on loopback. The vcr set-up is tests/support/vcr.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
import structlog

from bot.ai import AiRejected, AiReply, AiUnavailable, OpenAIAdapter
from sandbox.openai_stub import OpenAISandbox
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

VCR = cassette_recorder("openai_adapter", authorization=FAKE_BEARER)
FAKE_KEY = "fake-openai-key"
MODEL = "gpt-4o-mini"
CHAT = [
    {"role": "system", "content": "You answer customers of ACME."},
    {"role": "user", "content": "Where is my order SUP-12?"},
]


@pytest.fixture(autouse=True)
def fake_keys(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fake key wherever one is read: replay needs no secret, recording needs no real one."""
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    return FAKE_KEY


@pytest.fixture
def sandbox(fake_keys: str) -> Iterator[OpenAISandbox]:
    # Never started in replay: fault hooks then only change memory no request reads.
    sb = OpenAISandbox(api_key=fake_keys, models=(MODEL,))
    if RECORD:
        sb.start()
    yield sb
    if RECORD:
        sb.stop()


@pytest.fixture
def base_url(sandbox: OpenAISandbox) -> str:
    return sandbox.url if RECORD else f"{REPLAY_URL}/v1"


@pytest.fixture
def observed() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def ai(base_url: str, fake_keys: str, observed: list) -> OpenAIAdapter:
    return OpenAIAdapter.connect(
        api_key=fake_keys,
        base_url=base_url,
        timeout=5,
        observe=lambda op, outcome, seconds: observed.append((op, outcome)),
    )


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Any]:
    with open_cassette(VCR, cassette_name(request.node)) as recorded_cassette:
        yield recorded_cassette


def chat_bodies(cassette: Any) -> list[dict[str, Any]]:
    return [json_of(r.body) for r, _ in recorded(cassette) if r.method == "POST"]


# -- answers --------------------------------------------------------------------------------------


def test_complete_returns_text_and_usage(ai, cassette, observed):
    reply = ai.complete(model=MODEL, messages=CHAT)
    assert isinstance(reply, AiReply)
    assert reply.text == 'Thanks! About "Where is my order SUP-12?": an agent will confirm shortly.'
    assert (reply.model, reply.finish_reason) == (MODEL, "stop")
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    assert reply.total_tokens == reply.prompt_tokens + reply.completion_tokens
    [body] = chat_bodies(cassette)
    assert body == {"model": MODEL, "messages": CHAT}  # nothing we did not ask for
    request, _ = recorded(cassette)[0]
    assert request.uri.endswith("/v1/chat/completions") and request.headers["Authorization"] == FAKE_BEARER
    assert observed == [("complete", "ok")]


def test_max_tokens_goes_out_as_max_completion_tokens(ai, cassette):
    reply = ai.complete(model=MODEL, messages=CHAT, max_tokens=3)
    assert reply.finish_reason == "length" and len(reply.text.split()) == 3
    [body] = chat_bodies(cassette)
    assert body["max_completion_tokens"] == 3 and "max_tokens" not in body


def test_check_model(ai, cassette, observed):
    ai.check_model(MODEL)
    with pytest.raises(AiRejected) as caught:
        ai.check_model("gpt-nonexistent")
    assert (caught.value.status, caught.value.code) == (404, "model_not_found")
    assert [r.uri.rsplit("/", 2)[-2:] for r, _ in recorded(cassette)] == [
        ["models", MODEL],
        ["models", "gpt-nonexistent"],
    ]
    assert observed == [("check_model", "ok"), ("check_model", "AiRejected")]


# -- failures -------------------------------------------------------------------------------------


def test_unknown_model_in_a_completion_is_rejected(ai, cassette):
    with pytest.raises(AiRejected) as caught:
        ai.complete(model="gpt-nonexistent", messages=CHAT)
    assert (caught.value.status, caught.value.code) == (404, "model_not_found")


def test_wrong_key_is_rejected(base_url, cassette, observed):
    wrong = OpenAIAdapter.connect(
        api_key="wrong-key",
        base_url=base_url,
        observe=lambda op, outcome, seconds: observed.append((op, outcome)),
    )
    with pytest.raises(AiRejected) as caught:
        wrong.complete(model=MODEL, messages=CHAT)
    assert (caught.value.status, caught.value.code) == (401, "invalid_api_key")
    assert observed == [("complete", "AiRejected")]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_unavailable(sandbox, ai, cassette, observed, status):
    sandbox.fail_next(status)
    with pytest.raises(AiUnavailable) as caught:
        ai.complete(model=MODEL, messages=CHAT)
    assert caught.value.status == status and caught.value.retry_after is None
    assert observed == [("complete", "AiUnavailable")]


def test_429_carries_retry_after_then_the_retry_goes_through(sandbox, ai, cassette):
    sandbox.fail_next(429, retry_after=7)
    with pytest.raises(AiUnavailable) as caught:
        ai.complete(model=MODEL, messages=CHAT)
    err = caught.value
    assert (err.status, err.code, err.retry_after) == (429, "rate_limit_exceeded", 7.0)
    assert ai.complete(model=MODEL, messages=CHAT).text.startswith("Thanks!")
    assert len(recorded(cassette)) == 2  # max_retries=0: the SDK did not retry behind our back


def test_exhausted_quota_needs_an_operator(sandbox, ai, cassette):
    # Same 429 as a rate limit, but waiting does not refill a balance.
    sandbox.faults.fail_next(
        429,
        body={
            "error": {
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "type": "insufficient_quota",
                "param": None,
                "code": "insufficient_quota",
            }
        },
    )
    with pytest.raises(AiRejected) as caught:
        ai.complete(model=MODEL, messages=CHAT)
    assert (caught.value.status, caught.value.code) == (429, "insufficient_quota")


# -- without a server: transport failures, logs ---------------------------------------------------


def _offline(error: Exception, observed: list) -> OpenAIAdapter:
    def fail(request: httpx2.Request) -> httpx2.Response:
        raise error

    client = openai.OpenAI(
        api_key=FAKE_KEY,
        base_url="https://api.example/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(fail)),
    )
    return OpenAIAdapter(client, observe=lambda op, outcome, seconds: observed.append((op, outcome)))


@pytest.mark.parametrize(
    "error, fragment",
    [
        (httpx2.ReadTimeout("slow"), "in time"),
        (httpx2.ConnectError("refused"), "cannot reach"),
    ],
)
def test_transport_failures_are_unavailable(error, fragment, observed):
    with pytest.raises(AiUnavailable, match=fragment) as caught:
        _offline(error, observed).complete(model=MODEL, messages=CHAT)
    assert caught.value.status is None
    assert observed == [("complete", "AiUnavailable")]


def test_logs_carry_neither_key_nor_prompt(observed):
    with structlog.testing.capture_logs() as logs, pytest.raises(AiUnavailable):
        _offline(httpx2.ConnectError("refused"), observed).complete(model=MODEL, messages=CHAT)
    text = repr(logs)
    assert logs and FAKE_KEY not in text and "SUP-12" not in text
    assert (logs[0]["operation"], logs[0]["outcome"], logs[0]["messages"]) == ("complete", "AiUnavailable", 2)
