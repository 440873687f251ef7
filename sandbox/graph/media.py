"""Seeded media and the short-lived download URLs Graph hands out for them.

Meta's `GET /{media-id}` answers with a `url` on its CDN that works for five minutes and only with
the bearer token. The sandbox imitates both halves: the URL carries its expiry and an HMAC over
(id, expiry) with a per-sandbox key, so a client that caches URLs, tampers with them or forgets the
token fails here as it would against Meta.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

DOWNLOAD_PATH = "/whatsapp_business/attachments/"


@dataclass(frozen=True)
class Medium:
    media_id: str
    data: bytes
    mime_type: str
    phone_number_id: str | None


class MediaExpired(Exception):
    """The download URL is past its expiry or its signature does not match."""


class MediaStore:
    """Thread-safe media by id.

    Args:
        url_ttl: seconds a download URL stays valid (Meta: 300).
    """

    def __init__(self, url_ttl: float = 300.0) -> None:
        self.url_ttl = url_ttl
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._items: dict[str, Medium] = {}

    def add(self, media_id: str, data: bytes, mime_type: str, phone_number_id: str | None = None) -> None:
        with self._lock:
            self._items[str(media_id)] = Medium(str(media_id), bytes(data), mime_type, phone_number_id)

    def get(self, media_id: str) -> Medium | None:
        with self._lock:
            return self._items.get(media_id)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def describe(self, medium: Medium, base_url: str) -> dict[str, Any]:
        """The body of `GET /{version}/{media-id}` (spec: `Retrieve Media URL`).

        `sha256` is the hex digest of the bytes and `file_size` a string, as in the spec's
        schema; webhooks, by contrast, carry a base64 `sha256` (see whatsapp_payloads).
        """
        # Round up: a URL is valid for at least the TTL (Meta's `ext` is whole epoch seconds).
        expiry = math.ceil(time.time() + self.url_ttl)
        query = urlencode(
            {"mid": medium.media_id, "ext": expiry, "hash": self._sign(medium.media_id, expiry)}
        )
        return {
            "url": f"{base_url}{DOWNLOAD_PATH}?{query}",
            "mime_type": medium.mime_type,
            "sha256": hashlib.sha256(medium.data).hexdigest(),
            "file_size": str(len(medium.data)),
            "id": medium.media_id,
            "messaging_product": "whatsapp",
        }

    def open(self, media_id: str | None, expiry: str | None, signature: str | None) -> Medium:
        """Resolve a download URL's query to its medium.

        Raises:
            MediaExpired: unknown id, bad signature, or expired (all 404 at Meta's CDN).
        """
        if not media_id or not expiry or not signature:
            raise MediaExpired("Bad URL")
        try:
            deadline = int(expiry)
        except ValueError:
            raise MediaExpired("Bad URL") from None
        if not hmac.compare_digest(self._sign(media_id, deadline), signature):
            raise MediaExpired("URL signature mismatch")
        if time.time() >= deadline:
            raise MediaExpired("URL signature expired")
        medium = self.get(media_id)
        if medium is None:
            raise MediaExpired("Media not found")
        return medium

    def _sign(self, media_id: str, expiry: int) -> str:
        return hmac.new(self._key, f"{media_id}:{expiry}".encode(), hashlib.sha256).hexdigest()
