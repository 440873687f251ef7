"""Files we send to a customer: upload the bytes to Meta, then a media message naming the upload.

`POST /{phone-number-id}/media` takes multipart/form-data (`messaging_product`, `file`, `type`)
and answers `{"id": "<media id>"}`; `POST /{phone-number-id}/messages` then sends an `image`,
`video`, `audio` or `document` object holding that id. Both calls go through
`GraphAdapter._request` like every other (one timing, one error ladder); this module holds what is
particular to them: the multipart fields, a filename that cannot reshape the part's headers, and
which media object takes a caption or a filename.

Which kind a file is, and whether it fits WhatsApp's limits, is the caller's decision
(`bot.rules.outgoing_files`); Meta's own refusals come back as `GraphRejected` (code 100 for a type
it does not take, 131053 for a medium too large).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import requests

from bot.whatsapp.graph_errors import GraphUnavailable
from bot.whatsapp.recipient import Recipient, envelope

CAPTION_MAX = 1024
"""Meta's limit for a media caption, in characters."""
FILENAME_MAX = 240
SEND_TYPES = ("image", "video", "audio", "document")
# Meta's media objects: audio takes only the id; only a document shows a filename.
_CAPTIONED = frozenset({"image", "video", "document"})
# CR/LF would end the part's header line; quotes and backslashes would end or escape the quoted
# filename; other control characters have no business in a name shown to a customer.
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f"\\]')

T = TypeVar("T")


class _Transport(Protocol):
    """The parts of `GraphAdapter` the mixin relies on."""

    def _request(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        read: Callable[[requests.Response], T],
        json: dict[str, Any] | None = ...,
        stream: bool = ...,
        fields: dict[str, Any] | None = ...,
        files: dict[str, tuple[str, bytes, str]] | None = ...,
        data: dict[str, str] | None = ...,
    ) -> T: ...

    def _url(self, *segments: str) -> str: ...

    def _send(self, operation: str, phone_number_id: str, to: Recipient, message: dict[str, Any]) -> str: ...


class MediaSending:
    """`upload_media` and `send_media`, mixed into `GraphAdapter`."""

    def upload_media(
        self: _Transport, phone_number_id: str, data: bytes, *, mime_type: str, filename: str
    ) -> str:
        """Upload a file to Meta for this business number; its id is then good for a media message.

        Meta keeps an upload for 30 days. The bytes, the filename and the token are never logged.

        Args:
            phone_number_id: the business number that will send it.
            data: the file's bytes.
            mime_type: one of the types WhatsApp accepts (`image/png`, `application/pdf`, …);
                sent as the `type` field and as the file part's Content-Type.
            filename: the file's name; CR, LF, quotes and control characters are removed and it
                is clipped to 240 characters.

        Returns:
            Meta's media id.

        Raises:
            GraphRejected: a type WhatsApp refuses (code 100), a file too large (131053), an
                unknown phone_number_id (100).
            GraphRateLimited: back off (130429, 131056, HTTP 429).
            GraphAuthFailed: the token is bad.
            GraphUnavailable: 5xx, no answer, or an answer without a media id.
        """
        # `files=` makes requests build multipart/form-data with its own boundary; nothing on the
        # session sets a JSON Content-Type, so the multipart one is the only one sent.
        answer = self._request(
            "upload_media",
            "POST",
            self._url(phone_number_id, "media"),
            read=_media_id,
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (safe_filename(filename), data, mime_type)},
            fields={"phone_number_id": phone_number_id, "mime_type": mime_type, "size": len(data)},
        )
        return answer

    def send_media(
        self: _Transport,
        phone_number_id: str,
        to: Recipient,
        *,
        media_type: str,
        media_id: str,
        filename: str | None = None,
        caption: str | None = None,
    ) -> str:
        """Send an uploaded medium as an image, video, audio or document message.

        Args:
            media_type: "image", "video", "audio" or "document".
            media_id: what `upload_media` returned.
            filename: shown to the customer; documents only (ignored for other types).
            caption: images, videos and documents only, clipped to 1024 characters; an audio
                message has no caption, so it is dropped there: send the text on its own.

        Returns:
            The new message's wamid.

        Raises:
            ValueError: `media_type` is not one of the four.
            WindowClosed: 24 h since the customer last wrote; send a template instead.
            GraphRejected: unknown media id (100), medium too large for its type or of the
                wrong type (131053), undeliverable (131026), …
            GraphRateLimited, GraphAuthFailed, GraphUnavailable: as for `send_text`.
        """
        message = media_message(
            to, media_type=media_type, media_id=media_id, filename=filename, caption=caption
        )
        return self._send("send_media", phone_number_id, to, message)


def media_message(
    to: Recipient, *, media_type: str, media_id: str, filename: str | None, caption: str | None
) -> dict[str, Any]:
    """The `/messages` body for an uploaded medium (spec: `ImageMessage`, `DocumentMessage`, …).

    Raises:
        ValueError: `media_type` is not image, video, audio or document.
    """
    if media_type not in SEND_TYPES:
        raise ValueError(f"media_type must be one of {', '.join(SEND_TYPES)}, not {media_type!r}")
    media: dict[str, Any] = {"id": media_id}
    if caption and media_type in _CAPTIONED:
        media["caption"] = clip_caption(caption)
    if filename and media_type == "document":
        media["filename"] = safe_filename(filename)
    return {**envelope(to), "type": media_type, media_type: media}


def clip_caption(caption: str) -> str:
    """At most 1024 characters; a clipped caption ends in "…" so the customer sees it was cut."""
    if len(caption) <= CAPTION_MAX:
        return caption
    return caption[: CAPTION_MAX - 1] + "…"


def safe_filename(filename: str) -> str:
    """A filename that cannot break out of a multipart header or a JSON-borne name shown to people.

    Control characters (CR and LF above all), quotes and backslashes go, surrounding spaces go, the
    result is clipped to 240 characters keeping the extension when it is short, and an empty
    result becomes "file".
    """
    name = _UNSAFE_IN_NAME.sub("", filename).strip()
    if len(name) > FILENAME_MAX:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= 10:
            name = stem[: FILENAME_MAX - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:FILENAME_MAX]
    return name or "file"


def _media_id(response: requests.Response) -> str:
    try:
        answer = response.json()
    except ValueError:  # a 2xx proxy page, not Graph
        raise GraphUnavailable("upload_media: Graph answered with something that is not JSON") from None
    media_id = answer.get("id") if isinstance(answer, dict) else None
    if isinstance(media_id, bool) or not isinstance(media_id, str | int) or not str(media_id):
        # Stored or not, we cannot name it: the caller treats it like any unknown outcome.
        raise GraphUnavailable("upload_media: Graph answered 2xx without a media id")
    return str(media_id)
