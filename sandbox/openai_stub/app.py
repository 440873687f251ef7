"""The OpenAI sandbox's WSGI app: routes, bearer auth, injected faults, and the handlers.

Request order mirrors OpenAI: an unknown path is a 404 before anything else, then the chat body is
recorded (a prompt that reached the wire has leaked, whatever the answer), then injected faults,
then the key, then the handler. Every answer carries an ``x-request-id`` as OpenAI's do.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox.faults import FaultPlan
from sandbox.web import BadJson, CallCounter, Request, Response, Router, WsgiApp, injected

from .completions import (
    OpenAIError,
    Reply,
    ToolReply,
    answer_for,
    check_chat,
    completion,
    missing_key,
    model_not_found,
    model_object,
    wrong_key,
)

CHAT_ROUTE = "/v1/chat/completions"
Handler = Callable[[Request], Response]


class OpenAIApp(WsgiApp[Request]):
    """WSGI callable; OpenAISandbox builds it and steers it through its attributes.

    Args:
        api_key: the only key accepted (`Authorization: Bearer …`).
        models: model ids that exist; any other answers 404 `model_not_found`.
        reply: messages → assistant text (or a tool call).
        tool_reply: (messages, tool names) → a tool call, or None; asked first when tools are offered.
        tools_supported: False answers any request with `tools` as a server without tool calling.
        faults: the injected failures and latency.
    """

    def __init__(
        self,
        *,
        api_key: str,
        models: tuple[str, ...],
        reply: Reply,
        tool_reply: ToolReply,
        faults: FaultPlan,
        tools_supported: bool = True,
    ) -> None:
        super().__init__(Request)
        self.api_key = api_key
        self.models = models
        self.reply = reply
        self.tool_reply = tool_reply
        self.tools_supported = tools_supported
        self.faults = faults
        self.calls = CallCounter()
        self.created = int(time.time()) - 86_400
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._router: Router[Handler] = Router()
        self._router.add("POST", CHAT_ROUTE, self._chat)
        self._router.add("GET", "/v1/models", self._list_models)
        self._router.add("GET", "/v1/models/{model}", self._get_model)

    def requests(self) -> list[dict[str, Any]]:
        """Copies of every chat request body that reached the sandbox, answered or not."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def forget_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- WSGI ---------------------------------------------------------------------------------

    def respond(self, request: Request) -> Response:
        response = super().respond(request)
        response.headers.setdefault("x-request-id", "req_" + os.urandom(16).hex())
        return response

    def bug(self, trace: str) -> Response:
        return OpenAIError(500, trace, "sandbox_bug").response()

    def dispatch(self, request: Request) -> Response:
        match = self._router.match(request.method, request.path)
        if match.route is None:
            raise OpenAIError(404, f"Invalid URL ({request.method} {request.path})")
        request.params = match.params
        self.calls.count(match.route.key)
        if match.route.template == CHAT_ROUTE:
            self._remember(request)
        fault = injected(self.faults, request)
        if fault is not None:
            return fault
        token = request.bearer()
        if token is None:
            raise missing_key()
        if token != self.api_key:
            raise wrong_key(token)
        return match.route.handler(request)

    def _remember(self, request: Request) -> None:
        # Recorded before auth and faults: a prompt that reached the wire has leaked, whatever
        # the answer was.
        try:
            body = request.json_object()
        except BadJson:
            return
        with self._lock:
            self._requests.append(copy.deepcopy(body))

    # --- handlers -----------------------------------------------------------------------------

    def _chat(self, request: Request) -> Response:
        try:
            body = request.json_object()
        except BadJson:
            raise OpenAIError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
            ) from None
        chat = check_chat(body, self.models, tools_supported=self.tools_supported)
        answer = answer_for(chat, self.reply, self.tool_reply)
        return Response(
            200,
            completion(chat.model, chat.messages, answer, body),
            {"openai-processing-ms": "1", "openai-version": "2020-10-01"},
        )

    def _list_models(self, request: Request) -> Response:
        return Response(200, {"object": "list", "data": [model_object(m, self.created) for m in self.models]})

    def _get_model(self, request: Request) -> Response:
        model = request.params["model"]
        if model not in self.models:
            raise model_not_found(model)
        return Response(200, model_object(model, self.created))
