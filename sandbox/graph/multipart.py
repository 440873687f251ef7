"""multipart/form-data (RFC 7578) as Meta's media upload receives it: the sandbox's parser.

Graph also takes its parameters url-encoded or as a JSON object; such a body holds fields but never
a file, so the upload answers "file is required" to it rather than "could not be parsed".

Stdlib `cgi` is gone from Python 3.13 and the sandboxes take no dependencies, so the body is split
here: on CRLF + "--" + boundary (so the boundary text inside a file does not cut it, unless it
follows a line break, which RFC 2046 forbids a sender to produce), each part's headers read with
the stdlib's e-mail header parser (quoted and RFC 2231 parameters, `filename*=`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import HTTP
from email.utils import collapse_rfc2231_value
from typing import Any
from urllib.parse import parse_qsl

_HEADER_PARSER = BytesHeaderParser(policy=HTTP)
_DRAIN_CHUNK = 1 << 16
MAX_PARTS = 16


class MultipartError(ValueError):
    """The body is not the multipart/form-data its Content-Type announced."""


@dataclass(frozen=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None  # None for a plain field; "" when a file part named none
    content_type: str | None

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace").strip()


def _content_type(content_type: str | None) -> Message:
    header = Message(policy=HTTP)
    header["Content-Type"] = content_type or ""
    return header


def boundary_of(content_type: str | None) -> str:
    """The boundary of a multipart/form-data Content-Type.

    Raises:
        MultipartError: another media type, or no usable boundary.
    """
    header = _content_type(content_type)
    if header.get_content_type() != "multipart/form-data":
        raise MultipartError("the body must be multipart/form-data")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 70:
        raise MultipartError("the multipart boundary is missing or longer than 70 characters")
    return boundary


def parse_form(content_type: str | None, body: bytes) -> dict[str, FormPart]:
    """The form's parts by field name (the first of a repeated name wins).

    Raises:
        MultipartError: neither multipart/form-data nor url-encoded nor a JSON object; no
            closing delimiter, a part without headers or without a name, or more than 16 parts.
    """
    media_type = _content_type(content_type).get_content_type()
    if media_type == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return _fields(pairs)
    if media_type == "application/json":
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            raise MultipartError("the body is not valid JSON") from None
        if not isinstance(value, dict):
            raise MultipartError("the JSON body must be an object")
        return _fields((str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in value.items())
    delimiter = b"\r\n--" + boundary_of(content_type).encode("latin-1")
    # The first delimiter may open the body without a line break before it.
    chunks = (b"\r\n" + body).split(delimiter)
    form: dict[str, FormPart] = {}
    closed = False
    for count, chunk in enumerate(chunks[1:]):  # chunks[0] is the preamble
        if chunk.startswith(b"--"):
            closed = True
            break
        if count >= MAX_PARTS:
            raise MultipartError(f"more than {MAX_PARTS} parts")
        part = _part(chunk.lstrip(b" \t"))  # transport padding may follow a delimiter
        form.setdefault(part.name, part)
    if not closed:
        raise MultipartError("the multipart body has no closing delimiter")
    return form


def _fields(pairs: Iterable[tuple[str, str]]) -> dict[str, FormPart]:
    form: dict[str, FormPart] = {}
    for name, value in pairs:
        form.setdefault(name, FormPart(name=name, data=value.encode(), filename=None, content_type=None))
    return form


def _part(chunk: bytes) -> FormPart:
    if not chunk.startswith(b"\r\n"):
        raise MultipartError("a multipart delimiter must end its line")
    head, separator, data = chunk[2:].partition(b"\r\n\r\n")
    if not separator:
        raise MultipartError("a part's headers have no end")
    headers = _HEADER_PARSER.parsebytes(head + b"\r\n\r\n")
    if headers.get_content_disposition() != "form-data":
        raise MultipartError("a part's Content-Disposition must be form-data")
    name = headers.get_param("name", header="content-disposition")
    if isinstance(name, tuple):  # RFC 2231 form: (charset, language, value)
        name = collapse_rfc2231_value(name)
    if not isinstance(name, str) or not name:
        raise MultipartError("a part has no name")
    filename = headers.get_filename()
    content_type = headers.get_content_type() if headers.get("content-type") else None
    return FormPart(name=name, data=data, filename=_clean(filename), content_type=content_type)


def _clean(filename: str | None) -> str | None:
    # Undecodable bytes come back as surrogates; a name we record must be printable text.
    if filename is None:
        return None
    return filename.encode("utf-8", errors="replace").decode("utf-8", errors="replace")


def declared_length(environ: dict[str, Any]) -> int:
    """A WSGI request's Content-Length (0 when absent or not a number)."""
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def drain(stream: Any, length: int, *, limit: int) -> None:
    """Read and drop up to `length` bytes (at most `limit`; past it the connection just closes)."""
    remaining = min(length, limit)
    while remaining > 0:
        chunk = stream.read(min(_DRAIN_CHUNK, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
