"""OpenAISandbox: a loopback stand-in for OpenAI's chat completions and models endpoints.

Point the `openai` SDK at `sandbox.url` (it ends in `/v1`, as `base_url` expects). Every chat
request body is kept, so tests can prove what did (and did not) reach the model, e.g. that a
Jira internal comment never appears in any prompt.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sandbox.faults import FaultPlan
from sandbox.httpserver import SandboxServer

from .app import OpenAIApp
from .completions import Reply, ToolReply, default_reply, default_tool_reply, error_for_status


class OpenAISandbox(SandboxServer):
    """OpenAI's API on a free loopback port (start, stop, url and `with` from SandboxServer).

    Args:
        api_key: the only key accepted (`Authorization: Bearer …`).
        models: model ids that exist; any other answers 404 `model_not_found`.
        latency: seconds added to every API request (also `set_latency`).
        reply: messages → assistant text, or a `StubToolCall` of a tool offered; the default
            quotes the last user message.
        tool_reply: (messages, names of the tools offered) → a `StubToolCall`, or None to let
            `reply` answer; asked first whenever tools are offered. The default calls
            `hand_over` (`{"reason": "customer asked for a person"}`) when it is offered and the
            last user message holds a word of `tools.PERSON_WORDS` ("human", "person", "agent",
            "humano", "persona", …).
        tools_supported: False plays a server without tool calling: a request with `tools`
            gets 400 "Unsupported parameter: 'tools' …" with `param` "tools" (also settable
            later as `tools_supported`).
    """

    url_path = "/v1"
    app: OpenAIApp

    def __init__(
        self,
        *,
        api_key: str = "sandbox-openai-key",
        models: tuple[str, ...] = ("gpt-4o-mini",),
        latency: float = 0.0,
        reply: Reply | None = None,
        tool_reply: ToolReply | None = None,
        tools_supported: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.faults = FaultPlan(default_body=error_for_status)
        self.faults.set_latency(latency)
        self.app = OpenAIApp(
            api_key=api_key,
            models=tuple(models),
            reply=reply or default_reply,
            tool_reply=tool_reply or default_tool_reply,
            faults=self.faults,
            tools_supported=tools_supported,
        )

    @property
    def tools_supported(self) -> bool:
        return self.app.tools_supported

    @tools_supported.setter
    def tools_supported(self, value: bool) -> None:
        self.app.tools_supported = value

    @property
    def calls(self) -> Counter[str]:
        """Requests per route, e.g. `calls["POST /v1/chat/completions"]`."""
        return self.app.calls.snapshot()

    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        """Fail the next `count` API requests with `status`; a 429 carries `retry-after` (default 1 s)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        self.faults.fail_next(status, count, retry_after=retry_after)

    def set_latency(self, seconds: float) -> None:
        self.faults.set_latency(seconds)

    def requests(self) -> list[dict[str, Any]]:
        """Copies of every chat request body that reached the sandbox, answered or not."""
        return self.app.requests()

    def prompts_text(self) -> str:
        """All message texts ever sent, joined: handy for `assert secret not in …`."""
        return "\n".join(
            str(m.get("content"))
            for r in self.requests()
            for m in r.get("messages") or []
            if isinstance(m, dict)
        )

    def reset(self) -> None:
        self.app.forget_requests()
        self.app.calls.clear()
        self.faults.clear()
