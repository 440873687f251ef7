"""Customers' media on Meta's CDN: what `GET /{media-id}` says, and the rules for fetching it.

The fetch itself goes through `GraphAdapter._request` like every other call; this module holds
what is particular to media: the token travels only over TLS, and the size is capped while
streaming.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from bot.config.urls import clear_text_credentials
from bot.whatsapp.graph_errors import GraphRejected

CHUNK_BYTES = 64 * 1024
"""How much of a streamed body is read at a time."""


@dataclass(frozen=True)
class MediaInfo:
    """`GET /{media-id}`: where to fetch a medium (for 5 minutes) and what to expect there."""

    url: str
    mime_type: str
    sha256: str
    file_size: int | None


def check_download_url(url: str) -> None:
    """Refuse a media URL the bearer token must not be sent to.

    Raises:
        GraphRejected: not http(s), or plain http to a host that is not loopback.
    """
    # The bearer token goes with the download, so only over TLS; plain http is allowed to a
    # loopback host, which is where the sandbox (tests, `wajira demo`) serves media.
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme in ("http", "https") and host and not clear_text_credentials(parts.scheme, host):
        return
    raise GraphRejected(
        "download: refusing to send the access token to a non-https media URL", title="insecure media url"
    )


def read_capped(response: requests.Response, max_bytes: int) -> bytes:
    """The whole body of a streamed response, refused past `max_bytes`.

    Refused on its Content-Length when that already says too much, else as soon as the running
    total passes the limit, without reading the rest.

    Raises:
        GraphRejected: "too large".
    """
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    data = bytearray()
    for chunk in response.iter_content(CHUNK_BYTES):
        data += chunk
        if len(data) > max_bytes:
            raise _too_large(None, max_bytes)
    return bytes(data)


def _too_large(declared: int | None, max_bytes: int) -> GraphRejected:
    size = f"{declared} bytes" if declared is not None else f"more than {max_bytes} bytes"
    return GraphRejected(
        f"download: medium too large ({size}, limit {max_bytes})",
        title="too large",
        details=f"limit {max_bytes} bytes",
    )
