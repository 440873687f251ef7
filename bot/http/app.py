"""The daemon's WSGI application: environ in, (status, headers, body) out, nothing else."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from urllib.parse import parse_qsl

import structlog

from bot.logs import get_logger
from bot.whatsapp.webhook import Reply, WebhookHandler

log = get_logger(__name__)

Health = Callable[[], tuple[bool, dict]]


class LateApp:
    """A WSGI app filled in after the port is bound: the listener comes first (with port 0 the
    port names the instance, and a taken port should fail before storage is opened). Requests
    are served only after `app` is set: the server starts after the parts are built."""

    app: Callable[[dict, Callable], Iterable[bytes]] | None = None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        assert self.app is not None, "HttpServer.start() runs after the parts are built"
        return self.app(environ, start_response)


class WsgiApp:
    """The public port: Meta's webhook, the Flows endpoint and a bare /healthz.

    Nothing else answers here: /metrics and the detailed health live on the admin listener
    (`AdminApp`), which operators keep off the internet.
    """

    def __init__(
        self,
        *,
        webhook_path: str,
        webhook: WebhookHandler,
        health: Health,
        extra_routes: dict[str, Callable[[dict, bytes], Reply]] | None = None,
    ) -> None:
        self.webhook_path = webhook_path
        self.webhook = webhook
        self.health = health
        self.extra_routes = extra_routes or {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return _serve(self._route, environ, start_response)

    def _route(self, environ: dict) -> Reply:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == self.webhook_path:
            if method == "GET":
                return self.webhook.verify(dict(parse_qsl(environ.get("QUERY_STRING", ""))))
            if method == "POST":
                return self._deliver(environ)
            return _not_allowed("GET, POST")
        if path == "/healthz":
            # Only the verdict: the reasons (database errors name hosts) are the admin port's.
            ok, _detail = self.health()
            return Reply.json(200, status="ok") if ok else Reply.json(503, status="unavailable")
        if path in self.extra_routes:
            if method != "POST":
                return _not_allowed("POST")
            # The webhook's body limit: a route must not buffer whatever length a client declares.
            if self.webhook.too_large(_content_length(environ)):
                return self.webhook.refuse_oversized()
            return self.extra_routes[path](environ, _read_body(environ, None) or b"")
        return Reply.json(404, error=f"no route for {path}")

    def _deliver(self, environ: dict) -> Reply:
        signature = environ.get("HTTP_X_HUB_SIGNATURE_256")
        if not signature or not signature.strip():
            return self.webhook.deliver(None, b"")
        length = _content_length(environ)
        if length is None:
            return Reply.json(411, error="Content-Length required")
        if self.webhook.too_large(length):
            return self.webhook.refuse_oversized()
        body = _read_body(environ, length)
        return self.webhook.deliver(signature, body)


class AdminApp:
    """The admin listener: /metrics (Prometheus) and /healthz with its reasons and figures."""

    def __init__(self, *, health: Health, metrics: Callable[[], tuple[bytes, str]]) -> None:
        self.health = health
        self.metrics = metrics

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return _serve(self._route, environ, start_response)

    def _route(self, environ: dict) -> Reply:
        path = environ.get("PATH_INFO") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _not_allowed("GET")
        if path == "/healthz":
            ok, detail = self.health()
            return Reply(200 if ok else 503, json.dumps(detail).encode())
        if path == "/metrics":
            body, content_type = self.metrics()
            return Reply(200, body, content_type)
        return Reply.json(404, error=f"no route for {path}")


def _serve(route: Callable[[dict], Reply], environ: dict, start_response: Callable) -> Iterable[bytes]:
    """One request: a request id for its log lines, and an answer even when `route` fails."""
    # Every log line of this request carries its id (each request has its own thread).
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex[:12])
    try:
        reply = route(environ)
    except Exception:  # a bug of ours must still answer, and must be visible in the log
        log.exception("http_unhandled_error", path=environ.get("PATH_INFO"))
        reply = Reply.json(500, error="internal error")
    try:
        phrase = HTTPStatus(reply.status).phrase
    except ValueError:  # Meta's own codes (432 for a Flows signature failure) have no standard phrase
        phrase = "Unknown"
    headers = [
        ("Content-Type", reply.content_type),
        ("Content-Length", str(len(reply.body))),
        *reply.headers,
    ]
    start_response(f"{reply.status} {phrase}", headers)
    return [reply.body]


def _content_length(environ: dict) -> int | None:
    try:
        value = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return value if value >= 0 else None


def _read_body(environ: dict, length: int | None) -> bytes:
    if length is None:
        length = _content_length(environ) or 0
    stream = environ["wsgi.input"]
    chunks, remaining = [], length
    while remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _not_allowed(allow: str) -> Reply:
    return Reply(405, b'{"error": "method not allowed"}', headers=(("Allow", allow),))
