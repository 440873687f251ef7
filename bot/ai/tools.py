"""Tool calling, the vendor-neutral part: the tools we offer, the calls a model makes, and how
to tell a server that cannot do tool calling from one that refused the request for another reason.
No I/O here: `client.py` sends and receives."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# OpenAI's rule for function names.
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# The arguments of one tool call: ours fit in a few hundred bytes; past this, the model is babbling.
MAX_ARGUMENT_BYTES = 16 * 1024


@dataclass(frozen=True)
class Tool:
    """A function the model may call.

    Attributes:
        name: OpenAI's rule, `^[a-zA-Z0-9_-]{1,64}$` (`ValueError` otherwise).
        description: when and why the model should call it.
        parameters: the JSON Schema (an object schema) of its arguments.
    """

    name: str
    description: str
    parameters: dict[str, Any]

    def __post_init__(self) -> None:
        if not TOOL_NAME.fullmatch(self.name):
            raise ValueError(f"invalid tool name {self.name!r}: 1-64 of a-z, A-Z, 0-9, _ and -")

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class ToolCall:
    """The model asking for a function call.

    Attributes:
        id: OpenAI's `call_…` id ("" when a compatible server sent none).
        arguments: the arguments, parsed; {} when the model sent something that is not a JSON
            object of at most `MAX_ARGUMENT_BYTES` (see `parse_arguments`).
    """

    id: str
    name: str
    arguments: dict[str, Any]


def parse_arguments(raw: object) -> dict[str, Any]:
    """A tool call's arguments: OpenAI sends a JSON string, which the model wrote and which need not
    be valid. {} for anything but a JSON object of at most `MAX_ARGUMENT_BYTES` (a compatible server
    sending the object itself is taken as is)."""
    if isinstance(raw, dict):
        raw = json.dumps(raw)
    if not isinstance(raw, str) or len(raw.encode("utf-8", "surrogatepass")) > MAX_ARGUMENT_BYTES:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the parser's depth
        return {}
    return value if isinstance(value, dict) else {}


# -- servers that cannot do tool calling ---------------------------------------------------------

# 500: llama.cpp's server answers so ("Unsupported param: tools", "tools param requires --jinja
# flag"); only the wording below makes such a 500 a refusal, any other stays "try later".
_TOOL_REFUSAL_STATUSES = frozenset({400, 404, 422, 500})
_TOOL_PARAMS = frozenset({"tools", "tool_choice"})
# Each alternative keeps "tool" within a few words of the refusal, so a long message that only
# echoes our request (vLLM's validation errors quote the whole input) does not count.
_TOOL_REFUSAL = re.compile(
    r"""
      \btool(?:s|_choice)?\b[^.]{0,40}?\b(?:not\ supported|unsupported|unknown|unrecognized)
    | \b(?:not\ support|unsupported|unrecognized|unknown|extra)[^.]{0,40}?\btool(?:s|_choice)?\b
    | --enable-auto-tool-choice
    | \btools\ param\ requires\b
    """,
    re.IGNORECASE | re.VERBOSE,
)


def refuses_tools(status: int, body: object) -> bool:
    """Whether an error answer to a request offering tools means "this server cannot do tools".

    The rule, kept narrow because a match turns tools off for the service until restart:
    status 400, 404, 422 or 500, and either
    - OpenAI's error names `tools` or `tool_choice` as its `param` (OpenAI itself: "Unsupported
      parameter: 'tools' is not supported with this model.", code "unsupported_parameter"); or
    - its message says so within a few words of "tool": Ollama "<model> does not support tools",
      llama.cpp "Unsupported param: tools" and "tools param requires --jinja flag", vLLM "\"auto\"
      tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set", LiteLLM
      "… does not support parameters: ['tools']", proxies "Unrecognized request argument
      supplied: tools"; or
    - a FastAPI/pydantic 422 `detail` entry whose `loc` ends in `tools`/`tool_choice`
      (an "extra fields not permitted" refusal).

    Args:
        status: the HTTP status.
        body: the SDK's `APIStatusError.body`: the `error` object, the whole JSON body when it
            has none (vLLM's `{"object": "error", "message", …}`, FastAPI's `{"detail": […]}`),
            or a string (Ollama's `{"error": "…"}`, a body that is not JSON).
    """
    if status not in _TOOL_REFUSAL_STATUSES:
        return False
    if isinstance(body, str):
        return bool(_TOOL_REFUSAL.search(body[:1000]))
    if not isinstance(body, dict):
        return False
    if body.get("param") in _TOOL_PARAMS:
        return True
    message = body.get("message")
    if isinstance(message, str) and _TOOL_REFUSAL.search(message[:1000]):
        return True
    detail = body.get("detail")
    return status == 422 and isinstance(detail, list) and any(_names_a_tool_field(d) for d in detail)


def _names_a_tool_field(entry: object) -> bool:
    loc = entry.get("loc") if isinstance(entry, dict) else None
    return isinstance(loc, list | tuple) and bool(loc) and loc[-1] in _TOOL_PARAMS
