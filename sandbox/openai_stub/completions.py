"""Pure parts of the OpenAI stand-in: request checks, the canned answer (text or tool call),
response bodies, errors (the tool checks themselves live in tools.py).

Shapes follow OpenAI's API reference for `POST /v1/chat/completions` and `/v1/models`; error
bodies (errors.py) are `{"error": {"message", "type", "param", "code"}}`, which the `openai` SDK
turns into its typed exceptions (`NotFoundError`, `RateLimitError`, …) by HTTP status.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from .errors import OpenAIError as OpenAIError  # re-exported: callers met it here first
from .tools import (
    HAND_OVER,
    HAND_OVER_ARGUMENTS,
    StubToolCall,
    asks_for_a_person,
    check_tool_messages,
    check_tools,
    tools_refused,
)

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# OpenAI frames every message with a few tokens of its own; the figure only needs to be plausible.
_TOKENS_PER_MESSAGE = 3

Reply = Callable[[list[dict[str, Any]]], "str | StubToolCall"]
"""messages → the assistant's text, or a call of one of the tools offered."""
ToolReply = Callable[[list[dict[str, Any]], list[str]], "StubToolCall | None"]
"""(messages, names of the tools offered) → a tool call, or None to let `Reply` answer."""


@dataclass(frozen=True)
class ChatRequest:
    """A chat request that passed the checks."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[str]
    """Names of the tools offered, in order."""
    tool_choice: Any
    """"none", "auto", "required", `{"type": "function", "function": {"name"}}`, or None."""


def error_for_status(status: int) -> dict[str, Any]:
    """Default body for an injected failure that names only an HTTP status."""
    if status == 429:
        return OpenAIError(
            429,
            "Rate limit reached for requests. Please try again later.",
            "requests",
            code="rate_limit_exceeded",
        ).body()
    if status == 401:
        return OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key").body()
    if status == 503:
        return OpenAIError(
            503, "The engine is currently overloaded, please try again later.", "server_error"
        ).body()
    if status >= 500:
        return OpenAIError(
            status, "The server had an error while processing your request. Sorry about that!", "server_error"
        ).body()
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Injected failure"
    return OpenAIError(status, phrase).body()


def missing_key() -> OpenAIError:
    return OpenAIError(
        401,
        "You didn't provide an API key. You need to provide your API key in an "
        "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    )


def wrong_key(given: str) -> OpenAIError:
    # OpenAI echoes a masked key so the operator can tell which one was used.
    masked = f"{given[:3]}{'*' * 8}{given[-4:]}" if len(given) > 8 else "*" * len(given)
    return OpenAIError(
        401,
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404, f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
    )


def text_of(content: Any) -> str:
    """The text in a message's `content`: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def check_chat(body: dict[str, Any], models: tuple[str, ...], *, tools_supported: bool = True) -> ChatRequest:
    """Validate a chat request.

    Args:
        tools_supported: False plays a server without tool calling: any `tools` is refused
            (400, `param` "tools") before it is looked at.

    Raises:
        OpenAIError: 400 for a malformed request, 404 for an unknown model.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIError(
            400, "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    messages = body.get("messages")
    if messages is None:
        raise OpenAIError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list) or not messages:
        raise OpenAIError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise OpenAIError(
                400,
                f"Invalid value: '{role}'. Supported values are: {', '.join(ROLES)}.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        if "content" not in message and role != "assistant":
            raise OpenAIError(
                400,
                f"Missing required parameter: 'messages[{i}].content'.",
                param=f"messages[{i}].content",
                code="missing_required_parameter",
            )
    check_tool_messages(messages)
    if body.get("stream"):
        raise OpenAIError(
            400, "The sandbox does not stream; send stream=false.", param="stream", code="unsupported_value"
        )
    if body.get("tools") is not None and not tools_supported:
        raise tools_refused()
    tools = check_tools(body)
    if model not in models:
        raise model_not_found(model)
    return ChatRequest(model, messages, tools, body.get("tool_choice"))


def last_user_text(messages: list[dict[str, Any]]) -> str:
    return next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")


def default_tool_reply(messages: list[dict[str, Any]], tools: list[str]) -> StubToolCall | None:
    """Call `hand_over` when it is offered and the last user message asks for a person
    (`tools.PERSON_WORDS`); otherwise let the text reply answer."""
    if HAND_OVER in tools and asks_for_a_person(last_user_text(messages)):
        return StubToolCall(HAND_OVER, dict(HAND_OVER_ARGUMENTS))
    return None


def answer_for(chat: ChatRequest, reply: Reply, tool_reply: ToolReply) -> str | StubToolCall:
    """What the model says: `tool_reply` first when tools are offered (and `tool_choice` is not
    "none"), then `reply`. A call of a tool that was not offered (or with `tool_choice` "none")
    becomes `default_reply`'s text: the model cannot make it. `tool_choice` "required" or naming
    a tool forces a call, as OpenAI does: of the tool named, else of the first offered, with
    arguments {} when neither function chose that tool."""
    messages = copy.deepcopy(chat.messages)
    answer: str | StubToolCall | None = None
    if chat.tools and chat.tool_choice != "none":
        answer = tool_reply(messages, list(chat.tools))
    if answer is None:
        answer = reply(messages)
    if isinstance(answer, StubToolCall) and (answer.name not in chat.tools or chat.tool_choice == "none"):
        answer = default_reply(messages)
    choice = chat.tool_choice
    if isinstance(choice, dict):
        named = str(choice["function"]["name"])
        if not (isinstance(answer, StubToolCall) and answer.name == named):
            return StubToolCall(named)
    elif choice == "required" and not isinstance(answer, StubToolCall):
        return StubToolCall(chat.tools[0])
    return answer


def default_reply(messages: list[dict[str, Any]]) -> str:
    """Deterministic, and quotes the customer so tests can tell which message was answered."""
    last_user = last_user_text(messages)
    if not last_user.strip():
        return "Hello! How can I help you today?"
    excerpt = " ".join(last_user.split())[:60]
    return f'Thanks! About "{excerpt}": an agent will confirm shortly.'


def estimate_tokens(text: str) -> int:
    # Whitespace words are a fine stand-in for BPE tokens here: nothing bills on them.
    return len(text.split())


def completion(
    model: str, messages: list[dict[str, Any]], answer: str | StubToolCall, body: dict[str, Any]
) -> dict[str, Any]:
    """The `chat.completion` object for one answered request. A tool call comes as OpenAI sends
    one: `content` null, `tool_calls` of one function call, `finish_reason` "tool_calls"."""
    choice: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if isinstance(answer, StubToolCall):
        call = answer.to_openai()
        choice["tool_calls"] = [call]
        finish, produced = "tool_calls", call["function"]["arguments"]
    else:
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        words = answer.split()
        finish = "stop"
        if isinstance(limit, int) and 0 < limit < len(words):
            answer, finish = " ".join(words[:limit]), "length"
        choice["content"] = produced = answer
    n = body.get("n")
    n = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
    prompt_tokens = sum(estimate_tokens(text_of(m.get("content"))) + _TOKENS_PER_MESSAGE for m in messages)
    prompt_tokens += estimate_tokens(json.dumps(body.get("tools"))) if body.get("tools") else 0
    completion_tokens = max(1, estimate_tokens(produced)) * n
    return {
        "id": "chatcmpl-" + os.urandom(15).hex()[:29],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "message": dict(choice), "logprobs": None, "finish_reason": finish} for i in range(n)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_sandbox",
    }


def model_object(model: str, created: int) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": created, "owned_by": "system"}
