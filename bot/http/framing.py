"""Where an HTTP/1.x request ends, read from the bytes received so far: pure, no sockets.

The intake loop buffers a whole request before a worker thread sees it, so it must know when
the request is complete: the header block ends at the first blank line, and the body is
Content-Length bytes long. Everything else about the request (method, path, header values)
is parsed later by wsgiref, on the complete bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024
"""Request line plus headers. Meta's deliveries carry about 1 KiB of headers; http.server
itself refuses a single line over 64 KiB."""

_HEADER_END = b"\r\n\r\n"
# One header line, matched only at a line start; `[^\r\n]*` cannot backtrack into itself.
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue[ \t]*\r\n", re.IGNORECASE)


@dataclass(frozen=True)
class Head:
    """What the intake needs to know about a request once its header block has arrived."""

    size: int
    """Bytes of the request line and headers, blank line included."""
    body_length: int
    """Bytes of body to wait for; 0 when Content-Length is absent or unusable (the app then
    answers 411 or reads nothing)."""
    declared_length: int | None
    """Content-Length as the client declared it, or None when absent or not a number."""
    expects_continue: bool


def header_end(buffer: bytes | bytearray, searched: int = 0) -> int:
    """Index just past the blank line that ends the header block, or -1 if it has not come.

    `searched` is how many bytes an earlier call already looked at, so a client trickling a
    byte at a time costs linear, not quadratic, time.
    """
    found = buffer.find(_HEADER_END, max(0, searched - len(_HEADER_END) + 1))
    return -1 if found < 0 else found + len(_HEADER_END)


def read_head(header_block: bytes, *, max_body_bytes: int) -> Head:
    """The size of the body to buffer, from a complete header block.

    A declared length over `max_body_bytes` is not buffered at all (body_length 0): the app
    answers 413 from the header alone, and the connection closes after that answer.
    """
    declared = _declared_length(header_block)
    body = declared if declared is not None and declared <= max_body_bytes else 0
    expects = body > 0 and _EXPECT_CONTINUE.search(header_block) is not None
    return Head(size=len(header_block), body_length=body, declared_length=declared, expects_continue=expects)


def _declared_length(header_block: bytes) -> int | None:
    values = _CONTENT_LENGTH.findall(header_block)
    # Two different lengths are a request-smuggling shape: trust neither.
    distinct = {value.strip() for value in values}
    if len(distinct) != 1:
        return None
    text = distinct.pop()
    if not text.isdigit() or len(text) > 18:
        return None
    return int(text)
