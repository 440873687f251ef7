"""The Jira sandbox's side of the WSGI toolkit: its request (API version, Jira's argument errors),
route names with the version filled in, and multipart bodies for attachments."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from typing import Any, NamedTuple

from sandbox.web import BadJson, Route
from sandbox.web import Request as BaseRequest

from .fields import split_list
from .model import ApiError

JSON_TYPE = "application/json;charset=UTF-8"


@dataclass
class Request(BaseRequest):
    version: int = 3  # the REST API version in the path

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
        """The body as JSON (None when empty); a 400 in Jira's words when it is not JSON."""
        try:
            return self.json_value()
        except BadJson:
            raise ApiError(400, "Unexpected character in the request body: it is not valid JSON.") from None


def route_name(route: Route[Any], params: dict[str, str]) -> str:
    """``METHOD template`` with the version filled in: the key of the call counter."""
    return f"{route.method} {route.template.replace('{v}', params.get('v', ''))}"


class Part(NamedTuple):
    """One field of a multipart/form-data body."""

    name: str
    filename: str | None
    mime_type: str | None
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """Split a multipart/form-data body into its parts.

    Hand-rolled rather than via the email parser so binary payloads come back
    byte for byte.
    """
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not header.get_content_type().startswith("multipart/") or not boundary:
        raise ApiError(400, "The request is not multipart/form-data.")
    delimiter = b"--" + str(boundary).encode("latin-1")
    parts: list[Part] = []
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
        parts.append(Part(str(field_name or ""), filename, mime, data))
    return parts
