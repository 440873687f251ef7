"""Media by id: seeded (the customer's), uploaded (the business's), and the download URLs for both.

Meta's `GET /{media-id}` answers with a `url` on its CDN that works for five minutes and only with
the bearer token. The sandbox imitates both halves: the URL carries its expiry and an HMAC over
(id, expiry) with a per-sandbox key, so a client that caches URLs, tampers with them or forgets the
token fails here as it would against Meta.

`POST /{phone-number-id}/media` (multipart: `messaging_product`, `file`, `type`) stores an upload
under a new numeric id after Meta's checks: a supported MIME type (else code 100, with Meta's
list) and at most 100 MB (else 131053). Sending it later checks the limit of the message's kind
(`check_sendable`): image 5 MB, audio and video 16 MB, sticker 500 KB.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .errors import GraphError, invalid_parameter, whatsapp_error
from .multipart import FormPart

DOWNLOAD_PATH = "/whatsapp_business/attachments/"
MB = 1024 * 1024
KB = 1024

_AUDIO = ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg")
_DOCUMENTS = (
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
)
_IMAGES = ("image/jpeg", "image/png", "image/webp")
_VIDEOS = ("video/mp4", "video/3gpp")
UPLOAD_TYPES = (*_AUDIO, *_DOCUMENTS, *_IMAGES, *_VIDEOS)
"""The MIME types Meta's media upload accepts, in the order its error message lists them."""
UPLOAD_MAX_BYTES = 100 * MB
"""Meta's largest medium (a document)."""
SEND_MAX_BYTES = {
    "image": 5 * MB,
    "audio": 16 * MB,
    "video": 16 * MB,
    "document": 100 * MB,
    "sticker": 500 * KB,
}
"""The largest medium each message kind may carry (a sticker: 100 KB static, 500 KB animated)."""
KIND_TYPES = {
    "image": ("image/jpeg", "image/png"),
    "audio": _AUDIO,
    "video": _VIDEOS,
    "sticker": ("image/webp",),
    "document": UPLOAD_TYPES,
}
"""Which uploaded types each message kind can carry; a document carries any of them."""


@dataclass(frozen=True)
class Medium:
    media_id: str
    data: bytes
    mime_type: str
    phone_number_id: str | None
    filename: str | None = None
    uploaded: bool = False  # by the business (`POST /media`), not seeded as a customer's

    def summary(self) -> dict[str, Any]:
        """What a sent-message record and `/_sandbox/uploads` say about it (no bytes)."""
        return {
            "id": self.media_id,
            "mime_type": self.mime_type,
            "filename": self.filename,
            "sha256": hashlib.sha256(self.data).hexdigest(),
            "size": len(self.data),
        }


class MediaExpired(Exception):
    """The download URL is past its expiry or its signature does not match."""


class MediaStore:
    """Thread-safe media by id.

    Args:
        url_ttl: seconds a download URL stays valid (Meta: 300).
    """

    def __init__(self, url_ttl: float = 300.0) -> None:
        self.url_ttl = url_ttl
        self.upload_max_bytes = UPLOAD_MAX_BYTES
        """Larger uploads are refused with 131053 (tests lower it rather than send 100 MB)."""
        self.send_max_bytes = dict(SEND_MAX_BYTES)
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._items: dict[str, Medium] = {}

    @property
    def body_cap(self) -> int:
        """The largest upload request read into memory: the file limit plus room for the form."""
        return self.upload_max_bytes + MB

    def add(self, media_id: str, data: bytes, mime_type: str, phone_number_id: str | None = None) -> None:
        with self._lock:
            self._items[str(media_id)] = Medium(str(media_id), bytes(data), mime_type, phone_number_id)

    def get(self, media_id: str) -> Medium | None:
        with self._lock:
            return self._items.get(media_id)

    def uploads(self) -> list[Medium]:
        """The business's uploads, oldest first."""
        with self._lock:
            return [m for m in self._items.values() if m.uploaded]

    def upload(self, phone_number_id: str, form: dict[str, FormPart]) -> Medium:
        """Check and store one `POST /{phone-number-id}/media` form as Meta does.

        Raises:
            GraphError: 100 for a missing or wrong `messaging_product`, a missing `file` or a type
                Meta does not take; 131053 for a file over `upload_max_bytes`.
        """
        product = form.get("messaging_product")
        if product is None:
            raise invalid_parameter("The parameter messaging_product is required.")
        if product.text() != "whatsapp":
            raise invalid_parameter("Param messaging_product must be 'whatsapp'.")
        file = form.get("file")
        if file is None or file.filename is None:
            raise invalid_parameter("The parameter file is required.")
        # Meta's docs require `type`; the part's own Content-Type stands in when it is missing.
        declared = form["type"].text() if "type" in form else file.content_type or ""
        mime_type = declared.split(";")[0].strip().lower()
        if mime_type not in UPLOAD_TYPES:
            raise invalid_parameter(
                f"Param file must be a file with one of the following types: {', '.join(UPLOAD_TYPES)}. "
                f"Received file of type '{mime_type}'."
            )
        if len(file.data) > self.upload_max_bytes:
            raise too_large(len(file.data), self.upload_max_bytes)
        with self._lock:
            media_id = _new_id(self._items)
            medium = Medium(media_id, file.data, mime_type, phone_number_id, file.filename, uploaded=True)
            self._items[media_id] = medium
        return medium

    def check_sendable(self, kind: str, media_id: str) -> Medium:
        """The medium a `/messages` body names by `id`, if that kind of message may carry it.

        Raises:
            GraphError: 100 for an id Meta does not know; 131053 for a medium of a type the kind
                cannot carry, or larger than the kind's limit.
        """
        medium = self.get(media_id)
        if medium is None:
            # Meta's wording for an id that names no media of this business (Param …['id']).
            raise invalid_parameter(
                f"Param {kind}['id'] is not a valid whatsapp business account media attachment ID"
            )
        if medium.mime_type not in KIND_TYPES.get(kind, ()):
            raise whatsapp_error(131053, details=f"Media type {medium.mime_type} cannot be sent as {kind}.")
        limit = self.send_max_bytes.get(kind, self.upload_max_bytes)
        if len(medium.data) > limit:
            raise too_large(len(medium.data), limit, kind)
        return medium

    def clear(self) -> None:
        """Forget every medium and put the size limits back to Meta's."""
        with self._lock:
            self._items.clear()
            self.upload_max_bytes = UPLOAD_MAX_BYTES
            self.send_max_bytes = dict(SEND_MAX_BYTES)

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


def too_large(size: int, limit: int, kind: str = "media") -> GraphError:
    """131053 "Media upload error", with Meta's explanation of the size limit."""
    return whatsapp_error(
        131053,
        details=f"Media file size too big. Max file size we currently support for {kind}: {limit} bytes; "
        f"it has {size} bytes.",
    )


def _new_id(taken: dict[str, Medium]) -> str:
    # Meta's media ids are 15-16 digit numbers; never reuse one a test seeded.
    while True:
        media_id = str(10**15 + secrets.randbelow(9 * 10**15))
        if media_id not in taken:
            return media_id
