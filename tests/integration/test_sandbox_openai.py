"""The OpenAI sandbox, driven through the real `openai` SDK (as the daemon's AI adapter is)."""

from __future__ import annotations

import time

import openai
import pytest
import requests

from sandbox.openai_stub import OpenAISandbox

KEY = "sandbox-openai-key"
MODEL = "gpt-4o-mini"


@pytest.fixture
def ai():
    sb = OpenAISandbox()
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def client(ai):
    c = openai.OpenAI(api_key=KEY, base_url=ai.url, max_retries=0, timeout=10)
    yield c
    c.close()


def ask(client, text: str = "Where is my order SUP-12?", **kw):
    messages = [
        {"role": "system", "content": "You answer customers of ACME."},
        {"role": "user", "content": text},
    ]
    return client.chat.completions.create(model=MODEL, messages=messages, **kw)


def test_round_trip_through_the_sdk(ai, client):
    answer = ask(client)
    assert answer.object == "chat.completion" and answer.model == MODEL and answer.id.startswith("chatcmpl-")
    [choice] = answer.choices
    assert choice.index == 0 and choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert (
        choice.message.content == 'Thanks! About "Where is my order SUP-12?": an agent will confirm shortly.'
    )
    usage = answer.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    [recorded] = ai.requests()
    assert recorded["model"] == MODEL and recorded["messages"][1]["content"] == "Where is my order SUP-12?"
    assert ai.calls["POST /v1/chat/completions"] == 1


def test_default_reply_quotes_at_most_60_chars_of_the_last_user_message(client):
    long = "word " * 40
    content = ask(client, long).choices[0].message.content
    assert content.startswith('Thanks! About "word word') and len(content.split('"')[1]) == 60


def test_custom_reply_and_content_parts():
    seen = []

    def reply(messages):
        seen.append(messages)
        return "custom answer"

    with OpenAISandbox(reply=reply, models=("m1", "m2")) as sb:
        c = openai.OpenAI(api_key=KEY, base_url=sb.url, max_retries=0)
        parts = [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]
        out = c.chat.completions.create(model="m2", messages=[{"role": "user", "content": parts}])
        assert out.choices[0].message.content == "custom answer"
        assert seen[0][0]["content"] == parts
        assert sorted(m.id for m in c.models.list()) == ["m1", "m2"]


def test_requests_are_kept_even_when_the_call_fails(ai, client):
    ai.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        ask(client, "internal: refund approved by finance")
    assert "refund approved" in ai.prompts_text()
    ai.requests()[0]["messages"].clear()  # copies: the record is not ours to change
    assert len(ai.requests()[0]["messages"]) == 2


def test_bad_and_missing_key_are_401(ai):
    bad = openai.OpenAI(api_key="sk-wrong-key-1234", base_url=ai.url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        ask(bad)
    assert info.value.body["code"] == "invalid_api_key" and "1234" in info.value.body["message"]
    assert "sk-wrong-key" not in info.value.body["message"]  # masked, as OpenAI does
    r = requests.post(f"{ai.url}/chat/completions", json={"model": MODEL, "messages": []}, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")
    assert client.models.retrieve(MODEL).id == MODEL


def test_bad_request_is_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=[])
    assert info.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "wizard", "content": "x"}])


def test_injected_429_carries_retry_after_then_recovers(ai, client):
    ai.fail_next(429, count=2)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as info:
            ask(client)
        assert info.value.response.headers["retry-after"] == "1"
        assert info.value.body["code"] == "rate_limit_exceeded"
    assert ask(client).choices[0].message.content


def test_sdk_retries_honour_the_fault_plan(ai):
    ai.fail_next(503, count=1)
    retrying = openai.OpenAI(api_key=KEY, base_url=ai.url, max_retries=1)
    assert ask(retrying).choices[0].finish_reason == "stop"
    assert ai.calls["POST /v1/chat/completions"] == 2


def test_latency(ai, client):
    ai.set_latency(0.3)
    started = time.monotonic()
    ask(client)
    assert time.monotonic() - started >= 0.3


def test_max_tokens_truncates_with_finish_reason_length(client):
    answer = ask(client, max_tokens=3)
    assert answer.choices[0].finish_reason == "length"
    assert len(answer.choices[0].message.content.split()) == 3


def test_unknown_path_is_404(ai):
    r = requests.post(f"{ai.url}/completions", headers={"Authorization": f"Bearer {KEY}"}, json={}, timeout=5)
    assert r.status_code == 404 and "Invalid URL" in r.json()["error"]["message"]
