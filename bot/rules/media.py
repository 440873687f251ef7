"""Inbound media as data: what a message's medium is called in Jira, and whether bytes match a hash.

Pure: no I/O. The name is decided once, from the webhook, so the comment that names the
attachment and the attachment itself always agree (DESIGN: the document's `filename` when
there is one, else `{media id}{extension from mime_type}`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
MAX_FILENAME_CHARS = 200
FALLBACK_EXTENSION = ".bin"

# The types WhatsApp accepts (Meta's "supported media types"), pinned here because
# `mimetypes` answers differently across Python versions and systems (audio/mpeg → .mpga,
# image/webp unknown before 3.13).
_EXTENSIONS = {
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/mp4": ".m4a",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "video/3gpp": ".3gp",
    "video/mp4": ".mp4",
    "text/plain": ".txt",
    "application/pdf": ".pdf",
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
}
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SPACES = re.compile(r"\s+")
_HEX = re.compile(r"[0-9a-fA-F]{64}")
_MAX_EXTENSION_CHARS = 16


@dataclass(frozen=True)
class MediaRef:
    """One medium of an inbound message, as the webhook described it."""

    kind: str
    media_id: str
    mime_type: str
    sha256: str
    """As Meta sent it in the webhook (base64); "" when absent."""
    attachment_name: str


def media_ref(kind: str, raw: Any) -> MediaRef | None:
    """The medium of a message of `kind`, or None (not a media kind, or no media id)."""
    media = _media(kind, raw)
    name = attachment_name(kind, raw)
    if media is None or name is None:
        return None
    return MediaRef(
        kind=kind,
        media_id=_str(media, "id"),
        mime_type=_str(media, "mime_type"),
        sha256=_str(media, "sha256"),
        attachment_name=name,
    )


def attachment_name(kind: str, raw: Any) -> str | None:
    """The Jira attachment name for a message's medium; None when there is nothing to fetch.

    Args:
        kind: Meta's message `type`.
        raw: the message object as Meta sent it.

    Returns:
        The sanitised `filename` (documents) when one is left, else `{media id}{extension}`.
    """
    media = _media(kind, raw)
    if media is None:
        return None
    media_id = sanitize_filename(_str(media, "id"))
    if not media_id:
        return None
    given = sanitize_filename(media.get("filename"))
    return given or _limit(media_id + extension_for(_str(media, "mime_type")))


def extension_for(mime_type: object) -> str:
    """`.ogg` for `audio/ogg; codecs=opus`; `.bin` when the type is unknown."""
    if not isinstance(mime_type, str):
        return FALLBACK_EXTENSION
    base = mime_type.split(";", 1)[0].strip().lower()
    return _EXTENSIONS.get(base) or _builtin_types().guess_extension(base) or FALLBACK_EXTENSION


def sanitize_filename(name: object) -> str:
    """One line, no path separators, no control or bidi characters, at most 200 characters
    (the extension kept); "" when nothing usable is left (empty, or only dots)."""
    if not isinstance(name, str):
        return ""
    kept = []
    for ch in name:
        cat = unicodedata.category(ch)
        if ch in "/\\":
            kept.append("_")
        elif cat in ("Zl", "Zp") or ch in "\t\n\r\v\f":
            kept.append(" ")
        elif cat in ("Cc", "Cs") or ch in _BIDI_CONTROLS:
            continue
        else:
            kept.append(ch)
    clean = _SPACES.sub(" ", "".join(kept)).strip()
    if not clean.strip("."):
        return ""  # "." and ".." name directories, not files
    return _limit(clean)


def parse_sha256(value: object) -> bytes | None:
    """A SHA-256 digest from hex (Graph's media object) or base64 (webhooks); None if neither."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _HEX.fullmatch(text):
        return bytes.fromhex(text)
    try:
        padded = (text + "=" * (-len(text) % 4)).encode("ascii")
    except UnicodeEncodeError:
        return None
    for altchars in (None, b"-_"):  # standard, then URL-safe alphabet
        try:
            digest = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(digest) == 32:
            return digest
    return None


def sha256_matches(expected: object, data: bytes) -> bool:
    """Whether `data` hashes to `expected` (hex or base64). An unreadable hash never matches."""
    digest = parse_sha256(expected)
    return digest is not None and hmac.compare_digest(digest, hashlib.sha256(data).digest())


def _limit(name: str) -> str:
    if len(name) <= MAX_FILENAME_CHARS:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and stem and len(ext) < _MAX_EXTENSION_CHARS:
        return stem[: MAX_FILENAME_CHARS - len(ext) - 1].rstrip() + "." + ext
    return name[:MAX_FILENAME_CHARS].rstrip()


def _media(kind: str, raw: Any) -> dict[str, Any] | None:
    if kind not in MEDIA_KINDS or not isinstance(raw, dict):
        return None
    media = raw.get(kind)
    return media if isinstance(media, dict) else None


def _str(parent: dict[str, Any], key: str) -> str:
    value = parent.get(key)
    return value.strip() if isinstance(value, str) else ""


@functools.lru_cache(maxsize=1)
def _builtin_types() -> mimetypes.MimeTypes:
    # Python's own table only: the system's /etc/mime.types would make names differ by host.
    return mimetypes.MimeTypes()
