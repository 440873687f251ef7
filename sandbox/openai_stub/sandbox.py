"""OpenAISandbox: a loopback stand-in for OpenAI's chat completions and models endpoints.

Point the `openai` SDK at `sandbox.url` (it ends in `/v1`, as `base_url` expects). Every chat
request body is kept, so tests can prove what did (and did not) reach the model, e.g. that a
Jira internal comment never appears in any prompt.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import traceback
from collections import Counter
from typing import Any

from sandbox.faults import FaultPlan
from sandbox.graph.wsgi import BadJson, Request, Response, Router, send
from sandbox.httpserver import LoopbackServer

from .completions import (
    OpenAIError,
    Reply,
    check_chat,
    completion,
    default_reply,
    error_for_status,
    missing_key,
    model_not_found,
    model_object,
    wrong_key,
)

_CHAT_ROUTE = "/v1/chat/completions"


class OpenAISandbox:
    """OpenAI's API on a free loopback port.

    Args:
        api_key: the only key accepted (`Authorization: Bearer …`).
        models: model ids that exist; any other answers 404 `model_not_found`.
        latency: seconds added to every API request (also `set_latency`).
        reply: messages → assistant text; the default quotes the last user message.
    """

    def __init__(
        self,
        *,
        api_key: str = "sandbox-openai-key",
        models: tuple[str, ...] = ("gpt-4o-mini",),
        latency: float = 0.0,
        reply: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.models = tuple(models)
        self.reply = reply or default_reply
        self.faults = FaultPlan(default_body=error_for_status)
        self.faults.set_latency(latency)
        self.calls: Counter[str] = Counter()
        self._created = int(time.time()) - 86_400
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._router = Router()
        self._router.add("POST", _CHAT_ROUTE, self._chat)
        self._router.add("GET", "/v1/models", self._list_models)
        self._router.add("GET", "/v1/models/{model}", self._get_model)
        self._server = LoopbackServer(self._app, host, port)

    # --- lifecycle and steering ---------------------------------------------------------------

    def start(self) -> str:
        """Start serving; return the base URL to pass to `openai.OpenAI(base_url=…)`."""
        self._server.start()
        return self.url

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> "OpenAISandbox":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{self._server.url}/v1"

    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        """Fail the next `count` API requests with `status`; a 429 carries `retry-after` (default 1 s)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        self.faults.fail_next(status, count, retry_after=retry_after)

    def set_latency(self, seconds: float) -> None:
        self.faults.set_latency(seconds)

    def requests(self) -> list[dict[str, Any]]:
        """Copies of every chat request body that reached the sandbox, answered or not."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def prompts_text(self) -> str:
        """All message texts ever sent, joined: handy for `assert secret not in …`."""
        return "\n".join(
            str(m.get("content"))
            for r in self.requests()
            for m in r.get("messages") or []
            if isinstance(m, dict)
        )

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self.calls.clear()
        self.faults.clear()

    # --- WSGI ---------------------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response):
        request = Request.from_environ(environ)
        try:
            response = self._dispatch(request)
        except OpenAIError as exc:
            response = Response(exc.status, exc.body(), exc.headers)
        except Exception:  # a sandbox bug must surface in the test, not hang the client
            response = Response(500, OpenAIError(500, traceback.format_exc(), "sandbox_bug").body())
        response.headers.setdefault("x-request-id", "req_" + os.urandom(16).hex())
        return send(start_response, response)

    def _dispatch(self, request: Request) -> Response:
        route, params, _ = self._router.match(request.method, request.path)
        if route is None:
            raise OpenAIError(404, f"Invalid URL ({request.method} {request.path})")
        request.params = params
        with self._lock:
            self.calls[f"{route.method} {route.template}"] += 1
        if route.template == _CHAT_ROUTE:
            self._remember(request)
        fault = self.faults.check(request.method, request.path)
        if fault is not None:
            return Response(fault.status, fault.body, dict(fault.headers))
        token = request.bearer()
        if token is None:
            raise missing_key()
        if token != self.api_key:
            raise wrong_key(token)
        return route.handler(request)

    def _remember(self, request: Request) -> None:
        # Recorded before auth and faults: a prompt that reached the wire has leaked, whatever
        # the answer was.
        try:
            body = request.json_object()
        except BadJson:
            return
        with self._lock:
            self._requests.append(copy.deepcopy(body))

    def _chat(self, request: Request) -> Response:
        try:
            body = request.json_object()
        except BadJson:
            raise OpenAIError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
            ) from None
        model, messages = check_chat(body, self.models)
        text = self.reply(copy.deepcopy(messages))
        return Response(
            200,
            completion(model, messages, text, body),
            {"openai-processing-ms": "1", "openai-version": "2020-10-01"},
        )

    def _list_models(self, request: Request) -> Response:
        return Response(
            200, {"object": "list", "data": [model_object(m, self._created) for m in self.models]}
        )

    def _get_model(self, request: Request) -> Response:
        model = request.params["model"]
        if model not in self.models:
            raise model_not_found(model)
        return Response(200, model_object(model, self._created))
