"""Tool calling in the OpenAI stand-in: checks of `tools`, `tool_choice` and tool messages, the
default decision to call `hand_over`, and the tool-call message of an answer.

Shapes follow OpenAI's API reference for chat completions; the sandbox knows function tools
only (OpenAI's "custom" tools and "allowed_tools" choices are refused as unknown values).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import OpenAIError

MAX_TOOLS = 128
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]+")
TOOL_NAME_MAX = 64
TOOL_CHOICES = ("none", "auto", "required")
HAND_OVER = "hand_over"
HAND_OVER_ARGUMENTS = {"reason": "customer asked for a person"}
# Words by which the default reply takes a customer to be asking for a person, English and
# Spanish, whole words, singular or plural: "I want a human", "¿puedo hablar con una persona?".
PERSON_WORDS = (
    "human",
    "person",
    "people",
    "agent",
    "operator",
    "humano",
    "humana",
    "persona",
    "agente",
    "operador",
)
_ASKS_FOR_A_PERSON = re.compile(rf"\b(?:{'|'.join(PERSON_WORDS)})(?:s|es)?\b", re.IGNORECASE)


@dataclass(frozen=True)
class StubToolCall:
    """A reply that calls a tool. `arguments` go out as JSON; a string goes out as it is (to
    play a model writing broken JSON)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)

    def to_openai(self) -> dict[str, Any]:
        arguments = self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)
        return {
            "id": "call_" + os.urandom(12).hex(),
            "type": "function",
            "function": {"name": self.name, "arguments": arguments},
        }


def asks_for_a_person(text: str) -> bool:
    """Whether a customer's message holds one of `PERSON_WORDS`."""
    return bool(_ASKS_FOR_A_PERSON.search(text))


def tools_refused() -> OpenAIError:
    """What a server without tool calling answers a request with `tools` (OpenAI's own wording
    for a parameter a model does not take)."""
    return OpenAIError(
        400,
        "Unsupported parameter: 'tools' is not supported with this model.",
        param="tools",
        code="unsupported_parameter",
    )


def check_tools(body: dict[str, Any]) -> list[str]:
    """Validate `tools` and `tool_choice`; return the names of the tools offered.

    Raises:
        OpenAIError: 400 naming the offending `param`, as OpenAI does.
    """
    tools = body.get("tools")
    if tools is None:
        if body.get("tool_choice") is not None:
            raise OpenAIError(
                400,
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                param="tool_choice",
                code="invalid_value",
            )
        return []
    if not isinstance(tools, list):
        raise _wrong_type("tools", "an array", tools)
    if not tools:
        raise OpenAIError(
            400,
            "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="tools",
            code="empty_array",
        )
    if len(tools) > MAX_TOOLS:
        raise OpenAIError(
            400,
            f"Invalid 'tools': array too long. Expected an array with maximum length {MAX_TOOLS}, "
            f"but got an array with length {len(tools)} instead.",
            param="tools",
            code="array_above_max_length",
        )
    names = [_check_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    _check_choice(body.get("tool_choice"), names)
    return names


def _check_tool(tool: Any, where: str) -> str:
    if not isinstance(tool, dict):
        raise _wrong_type(where, "an object", tool)
    if tool.get("type") != "function":
        raise _unknown_value(f"{where}.type", tool.get("type"), ("function",))
    function = tool.get("function")
    if function is None:
        raise _missing(f"{where}.function")
    if not isinstance(function, dict):
        raise _wrong_type(f"{where}.function", "an object", function)
    name = function.get("name")
    if name is None:
        raise _missing(f"{where}.function.name")
    if not isinstance(name, str):
        raise _wrong_type(f"{where}.function.name", "a string", name)
    if len(name) > TOOL_NAME_MAX:
        raise OpenAIError(
            400,
            f"Invalid '{where}.function.name': string too long. Expected a string with maximum length "
            f"{TOOL_NAME_MAX}, but got a string with length {len(name)} instead.",
            param=f"{where}.function.name",
            code="string_above_max_length",
        )
    if not TOOL_NAME.fullmatch(name):
        raise OpenAIError(
            400,
            f"Invalid '{where}.function.name': string does not match pattern. Expected a string that "
            f"matches the pattern '^[a-zA-Z0-9_-]+$'.",
            param=f"{where}.function.name",
            code="invalid_value",
        )
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise _wrong_type(f"{where}.function.description", "a string", description)
    parameters = function.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise _wrong_type(f"{where}.function.parameters", "an object", parameters)
        if parameters.get("type", "object") != "object":
            raise OpenAIError(
                400,
                f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"', "
                f"got 'type: \"{parameters.get('type')}\"'.",
                param=f"{where}.function.parameters",
                code="invalid_function_parameters",
            )
    return name


def _check_choice(choice: Any, names: list[str]) -> None:
    if choice is None or choice in TOOL_CHOICES:
        return
    if isinstance(choice, str):
        raise _unknown_value("tool_choice", choice, TOOL_CHOICES)
    if not isinstance(choice, dict):
        raise _wrong_type("tool_choice", "a string or an object", choice)
    if choice.get("type") != "function":
        raise _unknown_value("tool_choice.type", choice.get("type"), ("function",))
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise _missing("tool_choice.function.name")
    if name not in names:
        raise OpenAIError(
            400,
            f"Tool choice '{name}' not found in 'tools' parameter.",
            param="tool_choice",
            code="invalid_value",
        )


def check_tool_messages(messages: list[dict[str, Any]]) -> None:
    """An assistant's `tool_calls` are well formed and each is answered by the `tool` messages
    right after it; a `tool` message answers one of them (`tool_call_id`).

    Raises:
        OpenAIError: 400, as OpenAI words it.
    """
    pending: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is None:
                raise _missing(f"messages[{i}].tool_call_id")
            if call_id not in pending:
                raise OpenAIError(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    param=f"messages.[{i}].role",
                )
            pending.discard(call_id)
            continue
        if pending:
            raise _unanswered(pending, i)
        if role == "assistant" and message.get("tool_calls") is not None:
            pending = _call_ids(message["tool_calls"], f"messages[{i}].tool_calls")
    if pending:
        raise _unanswered(pending, len(messages))


def _call_ids(calls: Any, where: str) -> set[str]:
    if not isinstance(calls, list):
        raise _wrong_type(where, "an array", calls)
    ids = set()
    for j, call in enumerate(calls):
        if not isinstance(call, dict):
            raise _wrong_type(f"{where}[{j}]", "an object", call)
        for key in ("id", "type", "function"):
            if key not in call:
                raise _missing(f"{where}[{j}].{key}")
        function = call["function"]
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _missing(f"{where}[{j}].function.name")
        if not isinstance(function.get("arguments"), str):
            raise _missing(f"{where}[{j}].function.arguments")
        ids.add(str(call["id"]))
    return ids


def _unanswered(pending: set[str], at: int) -> OpenAIError:
    return OpenAIError(
        400,
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(pending))}",
        param=f"messages.[{at - 1 if at else 0}].role",
    )


def _missing(param: str) -> OpenAIError:
    return OpenAIError(
        400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def _wrong_type(param: str, expected: str, got: Any) -> OpenAIError:
    return OpenAIError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(got)} instead.",
        param=param,
        code="invalid_type",
    )


def _unknown_value(param: str, value: Any, supported: tuple[str, ...]) -> OpenAIError:
    listed = ", ".join(f"'{v}'" for v in supported)
    return OpenAIError(
        400, f"Invalid value: '{value}'. Supported values are: {listed}.", param=param, code="invalid_value"
    )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"
