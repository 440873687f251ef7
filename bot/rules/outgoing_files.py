"""How a file an agent attached in Jira goes to the customer: as which WhatsApp media type, if at all. Pure.

WhatsApp's media upload accepts a fixed list of MIME types, each kind with its own size limit
(Meta's "supported media types"). A file that is too big for its own kind but fits the document
limit still reaches the customer, as a document (an 8 MB photo); anything else is refused with a
reason an agent can read.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

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
_IMAGES = ("image/jpeg", "image/png")
_VIDEOS = ("video/mp4", "video/3gpp")
# image/webp is WhatsApp's sticker format, but a sticker must be a 512x512 picture under 100 KB:
# an agent's webp is sent as a document instead.
_STICKERS = ("image/webp",)

UPLOAD_TYPES: frozenset[str] = frozenset((*_AUDIO, *_DOCUMENTS, *_IMAGES, *_VIDEOS, *_STICKERS))
"""Every MIME type `POST /{phone-number-id}/media` accepts."""

_KIND: dict[str, str] = {
    **dict.fromkeys(_AUDIO, "audio"),
    **dict.fromkeys(_IMAGES, "image"),
    **dict.fromkeys(_VIDEOS, "video"),
}
_LIMIT = {"image": 5 * MB, "video": 16 * MB, "audio": 16 * MB, "document": 100 * MB}

# Names browsers and old tools give types WhatsApp knows under their registered name.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "audio/mp3": "audio/mpeg",
    "audio/x-aac": "audio/aac",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
}
# Jira says this (or nothing) when the uploader's browser did not know the type.
_UNKNOWN = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/unknown"})
# Pinned for the types WhatsApp takes: `mimetypes` answers differently across Python versions and
# systems (.m4a, .amr, .3gp, .webp are missing on some).
_BY_EXTENSION = {
    ".aac": "audio/aac",
    ".amr": "audio/amr",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".3gp": "video/3gpp",
    ".txt": "text/plain",
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_FALLBACK = "application/octet-stream"


@dataclass(frozen=True)
class FileSend:
    """Send the file as WhatsApp media of `media_type`, uploaded as `mime_type`."""

    media_type: str
    """"image", "video", "audio" or "document"."""
    mime_type: str
    """Lowercase, without parameters; one of UPLOAD_TYPES."""


@dataclass(frozen=True)
class FileRefused:
    """WhatsApp would refuse the file; `reason` says why, for an internal note."""

    reason: str


def plan_file(*, filename: str, mime_type: str | None, size: int | None) -> FileSend | FileRefused:
    """How the file goes to the customer, or why it cannot. `size` None means unknown (assumed to fit)."""
    mime = normalise_mime(mime_type, filename)
    if mime not in UPLOAD_TYPES:
        return FileRefused(
            f"WhatsApp does not accept files of type {mime} (it takes JPEG and PNG images, MP4 and 3GP "
            "videos, AAC, AMR, MP3, M4A and OGG audio, PDF, Word, Excel, PowerPoint and plain text files)"
        )
    known = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
    kind = _KIND.get(mime, "document")
    if known is None or known <= _LIMIT[kind]:
        return FileSend(kind, mime)
    if known <= _LIMIT["document"]:
        return FileSend("document", mime)  # too big for its kind: the customer still gets the bytes
    return FileRefused(f"{describe_size(known)} is over WhatsApp's 100 MB limit for documents")


def normalise_mime(mime_type: str | None, filename: str) -> str:
    """`mime_type` lowercased without parameters; guessed from `filename` when Jira did not know it."""
    mime = mime_type.split(";", 1)[0].strip().lower() if isinstance(mime_type, str) else ""
    if mime in _UNKNOWN:
        mime = _guess(filename) or _FALLBACK
    return _ALIASES.get(mime, mime)


def _guess(filename: str) -> str | None:
    if not isinstance(filename, str):
        return None
    dot = filename.rfind(".")
    extension = filename[dot:].strip().lower() if dot > 0 else ""
    if not extension:
        return None
    if extension in _BY_EXTENSION:
        return _BY_EXTENSION[extension]
    guessed, _ = mimetypes.guess_type("x" + extension, strict=False)
    return guessed.lower() if guessed else None


def describe_size(size: int) -> str:
    """`12.3 MB`, `800 KB`, `512 bytes`: rounded up, so a file just over a limit never reads as at it."""
    size = max(size, 0)
    if size < KB:
        return f"{size} bytes" if size != 1 else "1 byte"
    kilobytes = -(-size // KB)  # integer ceiling: exact for any size
    if kilobytes < KB:
        return f"{kilobytes} KB"
    tenths = -(-size * 10 // MB)  # ceiling, in tenths of a megabyte
    if tenths < 10 * KB:
        return f"{tenths // 10}.{tenths % 10} MB"
    tenths = -(-size * 10 // (MB * KB))
    return f"{tenths // 10}.{tenths % 10} GB"
