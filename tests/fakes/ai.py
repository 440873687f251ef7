"""FakeAI: stands in for `OpenAIAdapter` (`bot.ports.AiPort`)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.ai.client import AiReply, AiToolsUnsupported, Tool, ToolCall
from tests.fakes.script import Scripted

Respond = Callable[[list[dict[str, Any]], tuple[Tool, ...]], "str | ToolCall | None"]
"""(messages, tools offered) → the answer; None: the next rule answers (see `FakeAI`)."""

# The wording of OpenAI's own refusal of a parameter a model does not take.
TOOLS_REFUSED = "OpenAI 400: Unsupported parameter: 'tools' is not supported with this model."


@dataclass
class FakeAI(Scripted):
    """Stands in for `OpenAIAdapter`. Remembers every request (`requests`, with `prompts`: the
    messages of each, and `offered_tools`: the names of the tools each offered).

    Answers, first that applies: the scripted `replies` in turn (texts, and tool calls from
    `call_tool_next`/`hand_over_next`), then `respond(messages, tools)`, then `default_reply`.
    A tool call answers only a request that offered that tool: like a model that was not
    offered it, the fake then answers `default_reply` (the scripted call is used up).
    `fail("complete", *errors)` scripts exceptions (None: that call answers normally);
    `tools_supported = False` refuses every request offering tools with `AiToolsUnsupported`,
    as a server without tool calling does (the request is still recorded).
    """

    default_reply: str = "Thanks for writing! An agent will look at this shortly."
    tokens_per_reply: int = 50
    replies: list[str | ToolCall] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    respond: Respond | None = None
    tools_supported: bool = True
    _call_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def prompts(self) -> list[list[dict[str, Any]]]:
        return [r["messages"] for r in self.requests]

    @property
    def offered_tools(self) -> list[tuple[str, ...]]:
        """Per request, the names of the tools it offered (() for none)."""
        return [tuple(t.name for t in r["tools"]) for r in self.requests]

    def reply_with(self, *texts: str) -> None:
        self.replies.extend(texts)

    def call_tool_next(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolCall:
        """Script the next answer as a call of tool `name`; returns the call it will be."""
        call = ToolCall(id=f"call_fake{next(self._call_ids)}", name=name, arguments=dict(arguments or {}))
        self.replies.append(call)
        return call

    def hand_over_next(self, reason: str) -> ToolCall:
        """Script the next answer as the model calling `hand_over(reason)`."""
        return self.call_tool_next("hand_over", {"reason": reason})

    def complete(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int | None = None,
        tools: Sequence[Tool] = (),
    ) -> AiReply:
        offered = tuple(tools)
        with self._lock:
            self.requests.append(
                {
                    "model": model,
                    "messages": copy.deepcopy(messages),
                    "max_tokens": max_tokens,
                    "tools": offered,
                }
            )
        self._enter("complete")
        if offered and not self.tools_supported:
            raise AiToolsUnsupported(TOOLS_REFUSED, status=400, code="unsupported_parameter")
        with self._lock:
            answer: str | ToolCall | None = self.replies.pop(0) if self.replies else None
        if answer is None and self.respond is not None:
            answer = self.respond(copy.deepcopy(messages), offered)
        if isinstance(answer, ToolCall) and answer.name in {t.name for t in offered}:
            return self._reply(model, "", tool_calls=(answer,))
        return self._reply(model, answer if isinstance(answer, str) else self.default_reply)

    def _reply(self, model: str, text: str, tool_calls: tuple[ToolCall, ...] = ()) -> AiReply:
        # All of it counted as completion: a test's budget arithmetic stays obvious.
        return AiReply(
            text=text,
            model=model,
            prompt_tokens=0,
            completion_tokens=self.tokens_per_reply,
            total_tokens=self.tokens_per_reply,
            finish_reason="tool_calls" if tool_calls else "stop",
            tool_calls=tool_calls,
        )
