"""The OpenAI sandbox's tool calling, its pure parts: request checks as OpenAI words them, the
default decision to call `hand_over`, and the answer's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.openai_stub.completions import (
    ChatRequest,
    OpenAIError,
    answer_for,
    check_chat,
    completion,
    default_reply,
    default_tool_reply,
)
from sandbox.openai_stub.tools import MAX_TOOLS, StubToolCall, asks_for_a_person

MODELS = ("gpt-4o-mini",)
USER = [{"role": "user", "content": "Where is my order?"}]


def tool(name: Any = "hand_over", **function: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, **function}}


def body(messages: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": messages or USER, **extra}


def refusal(request: dict[str, Any], **kw: Any) -> OpenAIError:
    with pytest.raises(OpenAIError) as caught:
        check_chat(request, MODELS, **kw)
    return caught.value


# -- tools and tool_choice ----------------------------------------------------------------------------


def test_valid_tools_and_choices_pass():
    tools = [tool(description="d", parameters={"type": "object", "properties": {}}), tool("b-2"), tool("c")]
    for choice in (None, "none", "auto", "required", {"type": "function", "function": {"name": "b-2"}}):
        chat = check_chat(body(tools=tools, tool_choice=choice), MODELS)
        assert (chat.tools, chat.tool_choice) == (["hand_over", "b-2", "c"], choice)
    assert check_chat(body(), MODELS).tools == []
    assert len(check_chat(body(tools=[tool(f"t{i}") for i in range(MAX_TOOLS)]), MODELS).tools) == MAX_TOOLS


@pytest.mark.parametrize(
    "extra, param, code, fragment",
    [
        ({"tools": {"a": 1}}, "tools", "invalid_type", "expected an array, but got an object"),
        ({"tools": []}, "tools", "empty_array", "empty array"),
        ({"tools": [tool(f"t{i}") for i in range(129)]}, "tools", "array_above_max_length", "length 129"),
        ({"tools": ["hand_over"]}, "tools[0]", "invalid_type", "expected an object"),
        (
            {"tools": [{"type": "custom", "custom": {"name": "x"}}]},
            "tools[0].type",
            "invalid_value",
            "'custom'",
        ),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter", "Missing"),
        (
            {"tools": [tool(), {"type": "function", "function": {}}]},
            "tools[1].function.name",
            "missing_required_parameter",
            "Missing",
        ),
        ({"tools": [tool("has space")]}, "tools[0].function.name", "invalid_value", "does not match pattern"),
        (
            {"tools": [tool("x" * 65)]},
            "tools[0].function.name",
            "string_above_max_length",
            "maximum length 64",
        ),
        ({"tools": [tool(7)]}, "tools[0].function.name", "invalid_type", "expected a string"),
        ({"tools": [tool(description=3)]}, "tools[0].function.description", "invalid_type", "a string"),
        ({"tools": [tool(parameters=[])]}, "tools[0].function.parameters", "invalid_type", "an object"),
        (
            {"tools": [tool(parameters={"type": "string"})]},
            "tools[0].function.parameters",
            "invalid_function_parameters",
            "Invalid schema for function 'hand_over'",
        ),
        ({"tool_choice": "auto"}, "tool_choice", "invalid_value", "only allowed when 'tools' are specified"),
        (
            {"tools": [tool()], "tool_choice": "always"},
            "tool_choice",
            "invalid_value",
            "'none', 'auto', 'required'",
        ),
        ({"tools": [tool()], "tool_choice": 1}, "tool_choice", "invalid_type", "a number"),
        (
            {"tools": [tool()], "tool_choice": {"type": "function"}},
            "tool_choice.function.name",
            "missing_required_parameter",
            "Missing",
        ),
        (
            {"tools": [tool()], "tool_choice": {"type": "function", "function": {"name": "other"}}},
            "tool_choice",
            "invalid_value",
            "'other' not found",
        ),
        (
            {"tools": [tool()], "tool_choice": {"type": "allowed_tools"}},
            "tool_choice.type",
            "invalid_value",
            "'allowed_tools'",
        ),
    ],
)
def test_malformed_tools_are_refused_naming_the_param(extra, param, code, fragment):
    error = refusal(body(**extra))
    assert (error.status, error.param, error.code) == (400, param, code)
    assert fragment in error.message
    assert error.body()["error"]["type"] == "invalid_request_error"


def test_a_server_without_tool_calling_refuses_any_tools_first():
    for tools in ([tool()], [tool("bad name")], []):
        error = refusal(body(tools=tools), tools_supported=False)
        assert (error.status, error.param, error.code) == (400, "tools", "unsupported_parameter")
        assert "'tools' is not supported" in error.message
    assert check_chat(body(), MODELS, tools_supported=False).tools == []


def test_an_unknown_model_comes_after_the_tool_checks():
    assert refusal(body(tools=[]) | {"model": "gpt-x"}).param == "tools"
    assert refusal(body(tools=[tool()]) | {"model": "gpt-x"}).status == 404


# -- tool messages ------------------------------------------------------------------------------------


def assistant_calls(*ids: str) -> dict[str, Any]:
    calls = [{"id": i, "type": "function", "function": {"name": "look_up", "arguments": "{}"}} for i in ids]
    return {"role": "assistant", "content": None, "tool_calls": calls}


def answer(call_id: str | None) -> dict[str, Any]:
    message = {"role": "tool", "content": "order shipped"}
    return message | ({"tool_call_id": call_id} if call_id else {})


def test_tool_results_answering_each_call_pass():
    messages = [*USER, assistant_calls("call_a", "call_b"), answer("call_b"), answer("call_a")]
    assert check_chat(body(messages + [{"role": "assistant", "content": "Shipped!"}]), MODELS).messages[1][
        "tool_calls"
    ]


@pytest.mark.parametrize(
    "messages, param, fragment",
    [
        ([*USER, assistant_calls("call_a"), answer(None)], "messages[2].tool_call_id", "Missing required"),
        ([*USER, answer("call_a")], "messages.[1].role", "must be a response to a preceeding message"),
        ([*USER, assistant_calls("call_a"), answer("call_z")], "messages.[2].role", "preceeding"),
        (
            [*USER, assistant_calls("call_a", "call_b"), answer("call_a"), *USER],
            "messages.[2].role",
            "call_b",
        ),
        ([*USER, assistant_calls("call_a")], "messages.[1].role", "did not have response messages: call_a"),
        ([*USER, {"role": "assistant", "tool_calls": {"id": "x"}}], "messages[1].tool_calls", "an array"),
        (
            [*USER, {"role": "assistant", "tool_calls": [{"id": "x", "type": "function"}]}],
            "messages[1].tool_calls[0].function",
            "Missing",
        ),
    ],
)
def test_broken_tool_messages_are_refused(messages, param, fragment):
    error = refusal(body(messages))
    assert (error.status, error.param) == (400, param)
    assert fragment in error.message


# -- what the model answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I want to talk to a human",
        "Can a real PERSON call me?",
        "agents please",
        "¿Puedo hablar con una persona?",
        "quiero un humano",
        "pásame con un agente",
    ],
)
def test_asking_for_a_person(text):
    assert asks_for_a_person(text)


@pytest.mark.parametrize("text", ["Where is my order?", "my personal data", "the agency sent it", "humanity"])
def test_not_asking_for_a_person(text):
    assert not asks_for_a_person(text)


def chat(text: str, tools: list[str], choice: Any = None) -> ChatRequest:
    return ChatRequest("gpt-4o-mini", [{"role": "system", "content": "s"}, {"role": "user", "content": text}], tools, choice)  # fmt: skip


def test_default_hands_over_when_offered_and_asked():
    called = answer_for(chat("I want a human", ["look_up", "hand_over"]), default_reply, default_tool_reply)
    assert called == StubToolCall("hand_over", {"reason": "customer asked for a person"})


def test_default_answers_text_otherwise():
    for request in (
        chat("I want a human", []),  # not offered
        chat("I want a human", ["look_up"]),  # another tool only
        chat("I want a human", ["hand_over"], "none"),
        chat("Where is my order?", ["hand_over"]),
    ):
        text = answer_for(request, default_reply, default_tool_reply)
        assert isinstance(text, str) and text.startswith("Thanks!")


def test_only_the_last_user_message_counts():
    request = chat("thanks, all good now", ["hand_over"])
    request.messages[1:1] = [
        {"role": "user", "content": "get me a human"},
        {"role": "assistant", "content": "ok"},
    ]
    assert isinstance(answer_for(request, default_reply, default_tool_reply), str)


def test_a_reply_function_may_call_a_tool_but_only_one_offered():
    def reply(messages: list[dict[str, Any]]) -> StubToolCall:
        return StubToolCall("look_up", {"order": 12})

    assert answer_for(chat("x", ["look_up"]), reply, default_tool_reply) == StubToolCall(
        "look_up", {"order": 12}
    )
    assert answer_for(chat("x", ["hand_over"]), reply, default_tool_reply) == default_reply(
        chat("x", []).messages
    )


def test_a_forced_choice_always_calls():
    named = {"type": "function", "function": {"name": "look_up"}}
    assert answer_for(
        chat("hi", ["hand_over", "look_up"], named), default_reply, default_tool_reply
    ) == StubToolCall("look_up")
    assert answer_for(
        chat("hi", ["look_up", "hand_over"], "required"), default_reply, default_tool_reply
    ) == (StubToolCall("look_up"))
    # "required" takes whichever tool the model chose.
    assert answer_for(
        chat("a human!", ["look_up", "hand_over"], "required"), default_reply, default_tool_reply
    ).name == (  # type: ignore[union-attr]
        "hand_over"
    )


def test_a_tool_call_answers_as_openai_does():
    out = completion("gpt-4o-mini", USER, StubToolCall("hand_over", {"reason": "r"}), {"n": 2})
    assert len(out["choices"]) == 2
    for choice in out["choices"]:
        message = choice["message"]
        assert choice["finish_reason"] == "tool_calls"
        assert message["role"] == "assistant" and message["content"] is None
        [call] = message["tool_calls"]
        assert call["id"].startswith("call_") and call["type"] == "function"
        assert call["function"]["name"] == "hand_over" and json.loads(call["function"]["arguments"]) == {
            "reason": "r"
        }
    assert out["usage"]["completion_tokens"] > 0


def test_string_arguments_go_out_as_they_are():
    out = completion("gpt-4o-mini", USER, StubToolCall("hand_over", '{"reason": "cut'), {})
    assert out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"reason": "cut'


def test_a_text_answer_has_no_tool_calls():
    message = completion("gpt-4o-mini", USER, "hello there", {})["choices"][0]["message"]
    assert message["content"] == "hello there" and "tool_calls" not in message
