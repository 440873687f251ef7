"""The sandboxes' one WSGI toolkit: request, responses, errors, a template router and the app base.

The sandboxes speak JSON (plus raw bytes for media and attachments), so a request/response pair,
a router of ``{name}`` templates and a base class that turns ``environ`` into a ``Request`` and a
``Response`` back into WSGI are all they need; a framework would be a dependency the demo must not
pull in. Each sandbox subclasses ``WsgiApp`` (its ``dispatch`` does routing, faults and auth in
the order its real service does) and ``HttpError`` (its service's error dialect); start/stop on
loopback is ``sandbox.httpserver.SandboxServer``.

To add an endpoint to a sandbox: write a handler that takes the ``Request`` and returns a
``Response`` (or raises the sandbox's ``HttpError``), and add its ``METHOD`` and path template to
the sandbox's router: ``sandbox/jira/app.py`` (``build_router``), ``sandbox/graph/app.py`` and
``sandbox/openai_stub/app.py`` (their ``__init__``); test-only ``/_sandbox/…`` routes go in the
sandbox's ``control.py``.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Generic, Self, TypeVar
from urllib.parse import parse_qs

from sandbox.faults import FaultPlan

JSON_TYPE = "application/json; charset=UTF-8"
StartResponse = Callable[..., Any]


class BadJson(ValueError):
    """The request body is not the JSON (object) the route expects."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base: str  # scheme://host:port as the client addressed us, for URLs and "self" links we hand out
    params: dict[str, str] = field(default_factory=dict)  # the route template's {names}

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Self:
        # wsgiref hands PATH_INFO over as latin-1 text of the raw bytes; recover the UTF-8.
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", errors="replace")
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
        return cls(
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=path or "/",
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            headers=headers,
            body=body,
            base=f"{environ.get('wsgi.url_scheme', 'http')}://{host}",
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer …`` header, else None."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None

    def json_value(self) -> Any:
        """The body parsed as JSON; None for an empty body.

        Raises:
            BadJson: the body is not JSON.
        """
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise BadJson("the request body is not valid JSON") from None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body counts as ``{}``.

        Raises:
            BadJson: the body is not JSON or not an object.
        """
        value = self.json_value()
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise BadJson("the request body must be a JSON object")
        return value


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able value, raw bytes, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None  # None: the app's JSON type

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


def text_response(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    """A ``text/plain`` answer (Meta's CDN speaks it for expired media URLs)."""
    return Response(status, text.encode("utf-8"), dict(headers or {}), content_type="text/plain")


def injected(plan: FaultPlan, request: Request) -> Response | None:
    """The failure ``plan`` has due for this request (after its latency), else None."""
    fault = plan.check(request.method, request.path)
    if fault is None:
        return None
    return Response(fault.status, fault.body, dict(fault.headers))


class HttpError(Exception):
    """Raise from a handler to answer with an error; each sandbox's subclass speaks its dialect."""

    def response(self) -> Response:
        raise NotImplementedError


H = TypeVar("H")


@dataclass(frozen=True)
class Route(Generic[H]):
    method: str
    template: str  # "/{version}/{phone_number_id}/messages": also the call-counter key
    pattern: re.Pattern[str]
    handler: H

    @property
    def key(self) -> str:
        """``METHOD template``: the name tests read call counts by."""
        return f"{self.method} {self.template}"


@dataclass(frozen=True)
class Match(Generic[H]):
    route: Route[H] | None
    params: dict[str, str]
    allowed: list[str]  # when route is None: methods the path does answer to (405, not 404)


class Router(Generic[H]):
    """First-match routing of ``METHOD path`` against ``{name}`` templates.

    Args:
        patterns: regex for a ``{name}`` that is not simply one path segment
            (Jira's ``{v}``: the REST API versions the deployment serves).
    """

    def __init__(self, patterns: dict[str, str] | None = None) -> None:
        self._patterns = dict(patterns or {})
        self._routes: list[Route[H]] = []

    def add(self, method: str, template: str, handler: H) -> None:
        def group(m: re.Match[str]) -> str:
            return f"(?P<{m.group(1)}>{self._patterns.get(m.group(1), '[^/]+')})"

        regex = re.sub(r"\{(\w+)\}", group, template)
        self._routes.append(Route(method, template, re.compile(f"^{regex}/?$"), handler))

    def match(self, method: str, path: str) -> Match[H]:
        allowed: list[str] = []
        for route in self._routes:
            m = route.pattern.match(path)
            if not m:
                continue
            if route.method == method:
                return Match(route, m.groupdict(), allowed)
            allowed.append(route.method)
        return Match(None, {}, allowed)


class CallCounter:
    """Requests per route name, safe across the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


R = TypeVar("R", bound=Request)


class WsgiApp(Generic[R]):
    """Base of a sandbox's WSGI callable: parse, ``dispatch``, render errors, send.

    Subclasses implement ``dispatch`` and may override ``bug`` (the 500 for a sandbox bug, in
    their service's dialect).

    Args:
        request_type: the Request class to parse into (a sandbox may add helpers to it).
        json_type: the Content-Type of JSON answers, byte for byte as the real service sends it.
    """

    def __init__(self, request_type: type[R], json_type: str = JSON_TYPE) -> None:
        self.request_type = request_type
        self.json_type = json_type

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = self.request_type.from_environ(environ)
        return send(start_response, self.respond(request), self.json_type)

    def respond(self, request: R) -> Response:
        try:
            return self.dispatch(request)
        except HttpError as exc:
            return exc.response()
        except Exception:  # a sandbox bug must surface in the test, not hang the client
            return self.bug(traceback.format_exc())

    def dispatch(self, request: R) -> Response:
        raise NotImplementedError

    def bug(self, trace: str) -> Response:
        return Response(500, {"error": trace})


def send(start_response: StartResponse, response: Response, json_type: str = JSON_TYPE) -> Iterable[bytes]:
    """Turn a Response into the WSGI status line, headers and body."""
    payload = response.encode()
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "Unknown"
    headers = [
        ("Content-Type", response.content_type or json_type),
        ("Content-Length", str(len(payload))),
    ]
    headers += [
        (k, v) for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")
    ]
    start_response(f"{response.status} {phrase}", headers)
    return [payload]
