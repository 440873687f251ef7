"""The OpenAI adapter: every call wajira makes to the model goes through `OpenAIAdapter._call`,
which times it, reports it to metrics, logs it (never the prompt) and turns the SDK's exceptions
into ours.

The jobs retry `AiUnavailable` later (the model being down or busy is not the ticket's fault) and
stop on `AiRejected`, which only an operator can fix (a wrong key, an unknown model).
`AiToolsUnsupported`, an `AiRejected`, says the server refused the tools offered: the caller may
ask the same turn again without them.

An error carries OpenAI's status, code and message only: the SDK's exception keeps the whole
response (headers, cookies, a proxy's page) and is never chained to ours.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

import openai
from openai.types.chat import ChatCompletionMessageParam

from bot.ai.tools import Tool, ToolCall, parse_arguments, refuses_tools
from bot.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")
Observe = Callable[[str, str, float], None]

# The SDK retries these itself when allowed to; with max_retries=0 they come to us as "try later".
_TRANSIENT_STATUSES = frozenset({408, 409, 429})
_MAX_MESSAGE_CHARS = 300
_MEDIA_TYPE = re.compile(r"[a-z0-9.+-]{1,40}/[a-z0-9.+-]{1,60}")


class AiError(Exception):
    """Base of every AI failure.

    Attributes:
        status: the HTTP status, None when no answer came.
        code: OpenAI's error code ("invalid_api_key", "model_not_found", …) when given.
    """

    log_cause: ClassVar[bool] = False
    """Read by `bot.logs`: the cause is the SDK's exception (the whole response); never render it."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AiUnavailable(AiError):
    """Timeout, refused connection, 5xx, 429: try later.

    Attributes:
        retry_after: seconds OpenAI asked us to wait (`retry-after-ms` / `retry-after`), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AiRejected(AiError):
    """400/401/403/404 (bad key, unknown model, malformed request): needs an operator."""


class AiToolsUnsupported(AiRejected):
    """Tools were offered and the server cannot do tool calling (see `refuses_tools`): the same
    request without tools may well succeed."""


@dataclass(frozen=True)
class AiReply:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    # "length" means the answer was cut at max_tokens; the caller may not want to send half a reply.
    # "tool_calls": the model called tools instead of (or besides) answering.
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCall, ...] = ()


class OpenAIAdapter:
    """Chat completions through the `openai` SDK (any OpenAI-compatible `base_url`).

    Args:
        client: a configured `openai.OpenAI`; build it with max_retries=0 (see `connect`).
        observe: called as observe(operation, outcome, seconds) after every call (metrics).
    """

    def __init__(self, client: openai.OpenAI, *, observe: Observe | None = None) -> None:
        self._client = client
        self._observe = observe or (lambda op, outcome, seconds: None)

    @classmethod
    def connect(
        cls, *, api_key: str, base_url: str, timeout: float = 60.0, observe: Observe | None = None
    ) -> OpenAIAdapter:
        """Build the adapter without touching the network."""
        # max_retries=0: retries are ours. The SDK would sleep in the worker thread, and a
        # queued AI turn backs off far longer than the SDK's couple of seconds anyway.
        client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        return cls(client, observe=observe)

    # -- the one place HTTP happens ---------------------------------------------------------

    def _call(self, operation: str, fn: Callable[[], T], **fields: Any) -> T:
        started = time.monotonic()
        outcome = "ok"
        try:
            return fn()
        except AiError as exc:
            outcome = type(exc).__name__
            raise
        except openai.OpenAIError as exc:
            error = _translate(exc)
            outcome = type(error).__name__
            raise error from None
        finally:
            elapsed = time.monotonic() - started
            self._observe(operation, outcome, elapsed)
            log.debug("ai_call", operation=operation, outcome=outcome, ms=round(elapsed * 1000, 1), **fields)

    # -- operations -------------------------------------------------------------------------

    def complete(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int | None = None,
        tools: Sequence[Tool] = (),
    ) -> AiReply:
        """One chat completion.

        Args:
            model: e.g. "gpt-4o-mini".
            messages: OpenAI chat messages (`{"role", "content"}`), system prompt first.
            max_tokens: cap on the answer's length; None leaves it to the model.
            tools: functions the model may call (`tool_choice` "auto"); none: the request
                carries neither `tools` nor `tool_choice`.

        Returns:
            The first choice's text (refusals come back as their text; "" when the model only
            called tools), its function calls, and token usage.

        Raises:
            AiUnavailable: try later (`retry_after` when OpenAI said how long).
            AiToolsUnsupported: tools were offered and the server cannot do tool calling.
            AiRejected: the key, the model or the request is wrong.
        """
        extra: dict[str, Any] = {}
        if max_tokens is not None:
            # `max_tokens` is deprecated for chat completions and refused by reasoning models;
            # `max_completion_tokens` means the same for every other model.
            extra["max_completion_tokens"] = max_tokens
        if tools:
            extra["tools"] = [tool.to_openai() for tool in tools]
            extra["tool_choice"] = "auto"

        def ask() -> AiReply:
            try:
                answer = self._client.chat.completions.create(
                    model=model, messages=_sdk_messages(messages), **extra
                )
            except openai.APIStatusError as exc:
                if tools and refuses_tools(exc.status_code, _json_body(exc)):
                    raise AiToolsUnsupported(
                        f"OpenAI {exc.status_code}: {_message(exc)}", status=exc.status_code, code=exc.code
                    ) from None
                raise
            if not answer.choices:
                raise AiUnavailable("complete: the model answered without a choice")
            choice = answer.choices[0]
            usage = answer.usage
            return AiReply(
                text=choice.message.content or getattr(choice.message, "refusal", None) or "",
                model=answer.model or model,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                total_tokens=usage.total_tokens if usage else 0,
                finish_reason=choice.finish_reason or "stop",
                tool_calls=_function_calls(getattr(choice.message, "tool_calls", None)),
            )

        return self._call("complete", ask, model=model, messages=len(messages), tools=len(tools))

    def check_model(self, model: str) -> None:
        """Prove the key works and the model exists (`wajira check`).

        Raises:
            AiRejected: bad key (401) or unknown model (404).
            AiUnavailable: OpenAI did not answer.
        """
        self._call("check_model", lambda: self._client.models.retrieve(model), model=model)


def _function_calls(calls: Any) -> tuple[ToolCall, ...]:
    """The function calls of a reply; other kinds (OpenAI's "custom" tools, which we never offer)
    and calls without a name are left out."""
    found = []
    for call in calls or ():
        function = getattr(call, "function", None)
        name = getattr(function, "name", None)
        if getattr(call, "type", None) != "function" or not isinstance(name, str) or not name:
            continue
        call_id = getattr(call, "id", None)
        arguments = parse_arguments(getattr(function, "arguments", None))
        found.append(ToolCall(id=call_id if isinstance(call_id, str) else "", name=name, arguments=arguments))
    return tuple(found)


def _json_body(exc: openai.APIStatusError) -> object:
    """The SDK's `body`, unless it is the text of an answer that was not JSON (a proxy's page)."""
    media_type = (exc.response.headers.get("content-type") or "").split(";")[0].strip().lower()
    if isinstance(exc.body, str) and not media_type.endswith("json"):
        return None
    return exc.body


def _translate(exc: openai.OpenAIError) -> AiError:
    if isinstance(exc, openai.APITimeoutError):
        return AiUnavailable("OpenAI did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return AiUnavailable(f"cannot reach OpenAI ({type(exc.__cause__ or exc).__name__})")
    if isinstance(exc, openai.APIStatusError):
        status, code = exc.status_code, exc.code
        reason = f"OpenAI {status}: {_message(exc)}"
        if status == 429 and code == "insufficient_quota":
            # Same status as a rate limit, but no wait fixes an exhausted balance: an operator must.
            return AiRejected(reason, status=status, code=code)
        if status in _TRANSIENT_STATUSES or status >= 500:
            wait = _retry_after(exc.response.headers)
            return AiUnavailable(reason, status=status, code=code, retry_after=wait)
        return AiRejected(reason, status=status, code=code)
    if isinstance(exc, openai.APIResponseValidationError):
        return AiUnavailable("OpenAI answered with an unexpected shape", status=exc.status_code)
    return AiUnavailable(f"OpenAI: {type(exc).__name__}")


def _message(exc: openai.APIStatusError) -> str:
    """OpenAI's `error.message`, one line; a body that is not OpenAI's JSON (a proxy's page) is
    described, never quoted. The message echoes a masked key at most."""
    body = exc.body
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, str) and message.strip():
        text = " ".join(message.split())
        return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 1] + "…"
    size = len(body) if isinstance(body, (str, bytes)) else 0
    if not size:
        return "no error message"
    media_type = (exc.response.headers.get("content-type") or "").split(";")[0].strip().lower()
    shown = media_type if _MEDIA_TYPE.fullmatch(media_type) else "unknown type"
    return f"no OpenAI error message ({shown}, {size} characters)"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    # The SDK's own order: the millisecond header first, then seconds.
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _sdk_messages(messages: list[dict[str, Any]]) -> list[ChatCompletionMessageParam]:
    # The dicts are already the SDK's message shape (role, content, image parts), built by
    # `bot.rules.ai_context`, which stays free of the SDK's TypedDicts; only the type is told.
    return cast("list[ChatCompletionMessageParam]", messages)
