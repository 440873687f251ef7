"""Minimal WSGI plumbing shared by the Graph and OpenAI stand-ins.

The sandboxes only ever speak JSON (plus raw bytes for media downloads), so a
request/response pair and a template router are all they need; anything bigger
would be a framework dependency the demo must not pull in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

JSON_TYPE = "application/json; charset=UTF-8"


class BadJson(ValueError):
    """The request body is not the JSON object the route expects."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base: str  # scheme://host:port as the client addressed us, for URLs we hand out
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> "Request":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        return cls(
            method=environ["REQUEST_METHOD"].upper(),
            path=environ.get("PATH_INFO") or "/",
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            headers=headers,
            body=body,
            base=f"{environ.get('wsgi.url_scheme', 'http')}://{host}",
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer …`` header, else None."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None

    def json_object(self) -> dict[str, Any]:
        """Parse the body as a JSON object; an empty body counts as ``{}``.

        Raises:
            BadJson: the body is not JSON or not an object.
        """
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError:
            raise BadJson("the request body is not valid JSON") from None
        if not isinstance(value, dict):
            raise BadJson("the request body must be a JSON object")
        return value


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able value, raw bytes, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/{version}/{phone_number_id}/messages": also the call-counter key
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    """First-match routing of ``METHOD path`` against ``{name}`` templates (one segment each)."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", lambda m: rf"(?P<{m.group(1)}>[^/]+)", template)
        self._routes.append(Route(method, template, re.compile(f"^{regex}/?$"), handler))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Return (route, params, path_known); path_known tells 405 from 404 when route is None."""
        path_known = False
        for route in self._routes:
            m = route.pattern.match(path)
            if not m:
                continue
            if route.method == method:
                return route, m.groupdict(), True
            path_known = True
        return None, {}, path_known


def send(start_response: Callable, response: Response) -> Iterable[bytes]:
    """Turn a Response into the WSGI status line, headers and body."""
    payload = response.encode()
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "Unknown"
    headers = [("Content-Type", response.content_type), ("Content-Length", str(len(payload)))]
    headers += [
        (k, v) for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")
    ]
    start_response(f"{response.status} {phrase}", headers)
    return [payload]
