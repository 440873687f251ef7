"""Request/response values and a tiny router for the Jira sandbox's WSGI app."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from .model import ApiError
from .render import split_list

JSON_TYPE = "application/json;charset=UTF-8"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base: str  # scheme://host:port the client used, for "self" links
    version: int = 3
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def int_arg(self, name: str, default: int) -> int:
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ApiError(400, f"The '{name}' parameter must be a number, got '{raw}'.") from None

    def list_arg(self, name: str) -> list[str]:
        return split_list(self.query.get(name))

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise ApiError(400, "Unexpected character in the request body: it is not valid JSON.") from None


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


Handler = Callable[[Any, Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/rest/api/{v}/issue/{key}/comment"
    pattern: re.Pattern[str]
    handler: Handler
    versions: tuple[int, ...]


class Router:
    """Match ``METHOD path`` against templates whose ``{v}`` is the REST API version."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, versions: tuple[int, ...] = (2, 3)) -> None:
        regex = re.sub(
            r"\{(\w+)\}",
            lambda m: r"(?P<v>[23])" if m.group(1) == "v" else rf"(?P<{m.group(1)}>[^/]+)",
            template,
        )
        self._routes.append(Route(method, template, re.compile(f"^{regex}/?$"), handler, versions))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """Return (route, params, allowed methods); route is None when nothing matches the method."""
        allowed: list[str] = []
        for route in self._routes:
            m = route.pattern.match(path)
            if not m:
                continue
            params = m.groupdict()
            if "v" in params and int(params["v"]) not in route.versions:
                continue
            if route.method == method:
                return route, params, allowed
            allowed.append(route.method)
        return None, {}, allowed


def route_name(route: Route, params: dict[str, str]) -> str:
    """``METHOD template`` with the version filled in: the key of the call counter."""
    return f"{route.method} {route.template.replace('{v}', params.get('v', ''))}"


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str | None, str | None, bytes]]:
    """Split a multipart/form-data body into (field name, filename, content type, bytes).

    Hand-rolled rather than via the email parser so binary payloads come back
    byte for byte.
    """
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not header.get_content_type().startswith("multipart/") or not boundary:
        raise ApiError(400, "The request is not multipart/form-data.")
    delimiter = b"--" + str(boundary).encode("latin-1")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # closing delimiter
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        part = Message()
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            if ":" in line:
                name, value = line.split(":", 1)
                part[name.strip()] = value.strip()
        if data.endswith(b"\r\n"):
            data = data[:-2]  # the CRLF before the next delimiter belongs to the framing
        field_name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        mime = part.get_content_type() if part.get("content-type") else None
        parts.append((str(field_name or ""), filename, mime, data))
    return parts
