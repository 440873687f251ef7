"""OpenAIAdapter with tools (issue 14's `hand_over`): the request it sends, the tool calls it
reads back, and the refusals that mean "this server cannot do tool calling".

Cassettes (tests/cassettes/openai_adapter/, recorded from the OpenAI sandbox as
test_openai_adapter.py's are) hold the round trips; answers no sandbox gives (garbage arguments,
other servers' wording of a refusal) come from an `httpx2.MockTransport`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from bot.ai.client import AiRejected, AiToolsUnsupported, AiUnavailable, OpenAIAdapter
from bot.ai.tools import MAX_ARGUMENT_BYTES, Tool, ToolCall, parse_arguments, refuses_tools
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
HAND_OVER = Tool(
    name="hand_over",
    description="Hand the conversation to a person.",
    parameters={
        "type": "object",
        "properties": {"reason": {"type": "string"}},
        "required": ["reason"],
        "additionalProperties": False,
    },
)
HAND_OVER_JSON = {
    "type": "function",
    "function": {
        "name": "hand_over",
        "description": "Hand the conversation to a person.",
        "parameters": HAND_OVER.parameters,
    },
}


def chat(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You answer customers of ACME."}, {"role": "user", "content": text}]


@pytest.fixture(autouse=True)
def fake_keys(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    return FAKE_KEY


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, fake_keys: str) -> Iterator[OpenAISandbox]:
    # Never started in replay. `@pytest.mark.parametrize("sandbox", [False], indirect=True)`
    # records against a server without tool calling.
    sb = OpenAISandbox(api_key=fake_keys, models=(MODEL,), tools_supported=getattr(request, "param", True))
    if RECORD:
        sb.start()
    yield sb
    if RECORD:
        sb.stop()


@pytest.fixture
def ai(sandbox: OpenAISandbox, fake_keys: str) -> OpenAIAdapter:
    base_url = sandbox.url if RECORD else f"{REPLAY_URL}/v1"
    return OpenAIAdapter.connect(api_key=fake_keys, base_url=base_url, timeout=5)


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Any]:
    with open_cassette(VCR, cassette_name(request.node)) as recorded_cassette:
        yield recorded_cassette


def chat_bodies(cassette: Any) -> list[dict[str, Any]]:
    return [json_of(r.body) for r, _ in recorded(cassette) if r.method == "POST"]


# -- round trips (cassettes) -------------------------------------------------------------------------


def test_offered_tool_called(ai, cassette):
    reply = ai.complete(model=MODEL, messages=chat("I want to talk to a human"), tools=[HAND_OVER])
    [call] = reply.tool_calls
    assert (call.name, call.arguments) == ("hand_over", {"reason": "customer asked for a person"})
    assert call.id.startswith("call_")
    assert (reply.text, reply.finish_reason) == ("", "tool_calls")
    [body] = chat_bodies(cassette)
    assert body["tools"] == [HAND_OVER_JSON] and body["tool_choice"] == "auto"
    _, response = recorded(cassette)[0]
    message = json_of(response["body"]["string"])["choices"][0]["message"]
    assert message["content"] is None and message["tool_calls"][0]["type"] == "function"


def test_offered_tool_not_called(ai, cassette):
    reply = ai.complete(
        model=MODEL, messages=chat("Where is my order SUP-12?"), tools=[HAND_OVER], max_tokens=200
    )
    assert reply.tool_calls == () and reply.finish_reason == "stop"
    assert reply.text == 'Thanks! About "Where is my order SUP-12?": an agent will confirm shortly.'
    [body] = chat_bodies(cassette)
    assert set(body) == {"model", "messages", "max_completion_tokens", "tools", "tool_choice"}


@pytest.mark.parametrize("sandbox", [False], ids=["no_tool_calling"], indirect=True)
def test_tools_refused_by_the_server(ai, cassette):
    with pytest.raises(AiToolsUnsupported) as caught:
        ai.complete(model=MODEL, messages=chat("I want a person"), tools=[HAND_OVER])
    assert isinstance(caught.value, AiRejected)
    assert (caught.value.status, caught.value.code) == (400, "unsupported_parameter")
    assert "'tools' is not supported" in str(caught.value)
    # The same turn without tools goes through: what the AI job does next.
    reply = ai.complete(model=MODEL, messages=chat("I want a person"))
    assert reply.text.startswith("Thanks!") and reply.tool_calls == ()
    first, second = chat_bodies(cassette)
    assert "tools" in first and "tools" not in second and "tool_choice" not in second


# -- without a server: what the adapter sends and reads ---------------------------------------------


class Wire:
    """An adapter whose every request gets `status` and `body`; `sent` keeps the request bodies."""

    def __init__(self, status: int, body: Any, content_type: str = "application/json") -> None:
        self.sent: list[dict[str, Any]] = []

        def answer(request: httpx2.Request) -> httpx2.Response:
            self.sent.append(json.loads(request.content))
            raw = body if isinstance(body, str) else json.dumps(body)
            return httpx2.Response(status, content=raw.encode(), headers={"content-type": content_type})

        client = openai.OpenAI(
            api_key=FAKE_KEY,
            base_url="https://api.example/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(answer)),
        )
        self.ai = OpenAIAdapter(client)


def completion_with(message: dict[str, Any], finish_reason: str = "tool_calls") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }


def function_call(arguments: str, name: str = "hand_over", call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_without_tools_the_request_is_unchanged():
    wire = Wire(200, completion_with({"role": "assistant", "content": "hi"}, "stop"))
    wire.ai.complete(model=MODEL, messages=chat("hello"))
    wire.ai.complete(model=MODEL, messages=chat("hello"), tools=())
    assert wire.sent == [{"model": MODEL, "messages": chat("hello")}] * 2


def test_tools_go_out_as_function_tools_with_auto_choice():
    other = Tool(
        name="look-up_2", description="Look an order up.", parameters={"type": "object", "properties": {}}
    )
    wire = Wire(200, completion_with({"role": "assistant", "content": "hi"}, "stop"))
    wire.ai.complete(model=MODEL, messages=chat("hello"), tools=[HAND_OVER, other])
    [body] = wire.sent
    assert body["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in body["tools"]] == ["hand_over", "look-up_2"]
    assert body["tools"][0] == HAND_OVER_JSON


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "ünï"])
def test_a_tool_name_openai_refuses_is_refused_here(name):
    with pytest.raises(ValueError, match="invalid tool name"):
        Tool(name=name, description="", parameters={})


def test_tool_calls_are_parsed_and_content_null_is_empty_text():
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            function_call('{"reason": "wants a refund over the limit"}'),
            function_call('{"order": 12}', name="look_up", call_id="call_2"),
        ],
    }
    reply = Wire(200, completion_with(message)).ai.complete(
        model=MODEL, messages=chat("x"), tools=[HAND_OVER]
    )
    assert reply.text == "" and reply.finish_reason == "tool_calls"
    assert reply.tool_calls == (
        ToolCall(id="call_1", name="hand_over", arguments={"reason": "wants a refund over the limit"}),
        ToolCall(id="call_2", name="look_up", arguments={"order": 12}),
    )


def test_text_beside_a_tool_call_is_kept():
    message = {"role": "assistant", "content": "One moment.", "tool_calls": [function_call("{}")]}
    reply = Wire(200, completion_with(message)).ai.complete(
        model=MODEL, messages=chat("x"), tools=[HAND_OVER]
    )
    assert reply.text == "One moment." and reply.tool_calls[0].arguments == {}


def test_calls_other_than_functions_are_ignored():
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_c", "type": "custom", "custom": {"name": "hand_over", "input": "reason"}},
            {"id": "call_n", "type": "function", "function": {"arguments": "{}"}},  # no name
            function_call('{"reason": "r"}'),
        ],
    }
    reply = Wire(200, completion_with(message)).ai.complete(
        model=MODEL, messages=chat("x"), tools=[HAND_OVER]
    )
    assert [c.id for c in reply.tool_calls] == ["call_1"]


@pytest.mark.parametrize(
    "arguments",
    [
        '{"reason": "cut off',  # the model stopped mid-JSON
        "reason=refund",
        '["a list"]',
        '"a string"',
        "null",
        "",
        "[" * 100_000,  # far past the size limit
        '{"a":' * 2_500 + "1" + "}" * 2_500,  # under it, nested past the parser's depth
    ],
)
def test_arguments_that_are_not_a_json_object_become_empty(arguments):
    message = {"role": "assistant", "content": None, "tool_calls": [function_call(arguments)]}
    reply = Wire(200, completion_with(message)).ai.complete(
        model=MODEL, messages=chat("x"), tools=[HAND_OVER]
    )
    assert reply.tool_calls == (ToolCall(id="call_1", name="hand_over", arguments={}),)


def test_argument_size_limit():
    def sized(total: int) -> str:
        return json.dumps({"reason": "r" * (total - len('{"reason": ""}'))})

    assert parse_arguments(sized(MAX_ARGUMENT_BYTES))["reason"].startswith("r")
    assert parse_arguments(sized(MAX_ARGUMENT_BYTES + 1)) == {}
    assert parse_arguments({"reason": "an object, as a lax server sends it"}) == {
        "reason": "an object, as a lax server sends it"
    }
    assert parse_arguments(None) == {}


# -- refusals: tools unsupported, or something else ----------------------------------------------------

OLLAMA = {"error": {"message": "registry.ollama.ai/library/gemma3:4b does not support tools", "type": "api_error", "param": None, "code": None}}  # fmt: skip
OLLAMA_NATIVE = {"error": "codellama:latest does not support tools"}
VLLM_OLD = {"object": "error", "message": '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', "type": "BadRequestError", "param": None, "code": 400}  # fmt: skip
VLLM = {"error": {"message": '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', "type": "invalid_request_error", "param": None, "code": "400"}}  # fmt: skip
LLAMA_CPP = {"error": {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}}
LLAMA_CPP_OLD = {"error": {"code": 500, "message": "Unsupported param: tools", "type": "server_error"}}
LITELLM = {"error": {"message": "litellm.UnsupportedParamsError: ollama_chat does not support parameters: ['tools', 'tool_choice']. To drop these, set `litellm.drop_params=True`", "type": "invalid_request_error", "param": None, "code": "400"}}  # fmt: skip
UNRECOGNIZED = {"error": {"message": "Unrecognized request argument supplied: tools", "type": "invalid_request_error", "param": None, "code": None}}  # fmt: skip
OPENAI_PARAM = {"error": {"message": "Unsupported parameter: 'tools' is not supported with this model.", "type": "invalid_request_error", "param": "tools", "code": "unsupported_parameter"}}  # fmt: skip
CHOICE_PARAM = {"error": {"message": "Invalid value.", "type": "invalid_request_error", "param": "tool_choice", "code": None}}  # fmt: skip
FASTAPI_EXTRA = {"detail": [{"loc": ["body", "tools"], "msg": "extra fields not permitted", "type": "value_error.extra"}]}  # fmt: skip


@pytest.mark.parametrize(
    "status, body",
    [
        (400, OLLAMA),
        (400, OLLAMA_NATIVE),
        (400, VLLM_OLD),
        (400, VLLM),
        (500, LLAMA_CPP),
        (500, LLAMA_CPP_OLD),
        (400, LITELLM),
        (400, UNRECOGNIZED),
        (400, OPENAI_PARAM),
        (404, OPENAI_PARAM),
        (400, CHOICE_PARAM),
        (422, FASTAPI_EXTRA),
    ],
)
def test_a_server_refusing_tools_raises_tools_unsupported(status, body):
    with pytest.raises(AiToolsUnsupported) as caught:
        Wire(status, body).ai.complete(model=MODEL, messages=chat("x"), tools=[HAND_OVER])
    assert caught.value.status == status


OTHER_400 = {"error": {"message": "Invalid 'messages': empty array.", "type": "invalid_request_error", "param": "messages", "code": "empty_array"}}  # fmt: skip
CONTEXT = {"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens (including 90 in your tool definitions).", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}  # fmt: skip
BAD_SCHEMA = {"error": {"message": "Invalid schema for function 'hand_over': In context=(), 'required' is required to be supplied.", "type": "invalid_request_error", "param": "tools[0].function.parameters", "code": "invalid_function_parameters"}}  # fmt: skip
ECHOING = {"object": "error", "message": "[{'type': 'missing', 'loc': ('body', 'model'), 'msg': 'Field required', 'input': {'messages': [{'role': 'user', 'content': 'x'}], 'tools': [{'type': 'function'}]}}]", "type": "BadRequestError", "param": None, "code": 400}  # fmt: skip
SERVER_ERROR = {"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": None, "code": None}}  # fmt: skip
FASTAPI_OTHER = {"detail": [{"loc": ["body", "temperature"], "msg": "extra fields not permitted", "type": "value_error.extra"}]}  # fmt: skip


@pytest.mark.parametrize(
    "status, body, raised",
    [
        (400, OTHER_400, AiRejected),
        (400, CONTEXT, AiRejected),
        (400, BAD_SCHEMA, AiRejected),
        (400, ECHOING, AiRejected),
        (422, FASTAPI_OTHER, AiRejected),
        (500, SERVER_ERROR, AiUnavailable),
        (503, LLAMA_CPP_OLD, AiUnavailable),  # only 500 is llama.cpp's refusal status
        (401, OPENAI_PARAM, AiRejected),
        (429, OLLAMA, AiUnavailable),
    ],
)
def test_other_errors_stay_what_they_were(status, body, raised):
    with pytest.raises(raised) as caught:
        Wire(status, body).ai.complete(model=MODEL, messages=chat("x"), tools=[HAND_OVER])
    assert not isinstance(caught.value, AiToolsUnsupported)


def test_a_refusal_naming_tools_is_plain_rejection_when_no_tools_were_sent():
    with pytest.raises(AiRejected) as caught:
        Wire(400, OPENAI_PARAM).ai.complete(model=MODEL, messages=chat("x"))
    assert not isinstance(caught.value, AiToolsUnsupported)


def test_a_page_that_is_not_json_is_never_read_as_a_refusal():
    # Ollama's `{"error": "… does not support tools"}` reaches us as a bare string too (above);
    # a proxy's page saying the same words is not the server's answer.
    page = "<html><body>Our gateway does not support tools yet</body></html>"
    with pytest.raises(AiRejected) as caught:
        Wire(400, page, "text/html").ai.complete(model=MODEL, messages=chat("x"), tools=[HAND_OVER])
    assert not isinstance(caught.value, AiToolsUnsupported)
    assert refuses_tools(400, "m does not support tools") and not refuses_tools(400, None)


# -- the sandbox over HTTP, through the SDK ------------------------------------------------------------


@pytest.fixture
def live(fake_keys: str) -> Iterator[OpenAISandbox]:
    with OpenAISandbox(api_key=fake_keys, models=(MODEL,)) as sb:
        yield sb


def test_sandbox_hands_over_by_default_and_keeps_every_body(live, fake_keys):
    ai = OpenAIAdapter.connect(api_key=fake_keys, base_url=live.url, timeout=5)
    reply = ai.complete(model=MODEL, messages=chat("¿Puedo hablar con una persona?"), tools=[HAND_OVER])
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [
        ("hand_over", {"reason": "customer asked for a person"})
    ]
    assert ai.complete(model=MODEL, messages=chat("¿Puedo hablar con una persona?")).tool_calls == ()
    live.tools_supported = False
    with pytest.raises(AiToolsUnsupported):
        ai.complete(model=MODEL, messages=chat("a person please"), tools=[HAND_OVER])
    assert [("tools" in b) for b in live.requests()] == [True, False, True]


def test_sandbox_validation_reaches_the_sdk_with_its_param(live, fake_keys):
    client = openai.OpenAI(api_key=fake_keys, base_url=live.url, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=chat("hi"),  # type: ignore[arg-type]
            tools=[{"type": "function", "function": {"name": "not valid!"}}],
        )
    assert (caught.value.param, caught.value.code) == ("tools[0].function.name", "invalid_value")
    assert len(live.requests()) == 1  # refused, and still recorded
