"""FakeGraph: stands in for `GraphAdapter` (`bot.ports.GraphPort`)."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bot.rules.window import CUSTOMER_WINDOW_SECONDS
from bot.whatsapp.graph import GraphRejected, MediaInfo, Recipient, WindowClosed
from bot.whatsapp.interactive_out import list_message
from bot.whatsapp.media_out import media_message
from sandbox.graph import validate as sandbox_validate
from sandbox.graph.errors import GraphError as SandboxRefusal
from sandbox.graph.media import KIND_TYPES, SEND_MAX_BYTES, UPLOAD_MAX_BYTES, UPLOAD_TYPES
from tests.fakes.script import Scripted


@dataclass
class FakeGraph(Scripted):
    """Stands in for `GraphAdapter`. Remembers what Meta accepted (`sent`, `templates`,
    `reads`), which media were asked for (`media_asked`, `downloads`) and every attempt
    (`calls`); `fail(operation, *errors)` scripts the next answers of any operation: an
    exception is raised, None lets that call through. A failed call sends nothing.

    Like Meta, with `enforce_window` a free-form text to someone who has not written within
    24 hours (`customer_wrote`) raises `WindowClosed`. Off by default: most tests leave the
    window to the outbox's own check. Media are seeded with `add_media`; `media_info` hands out
    a fresh https URL per call, and `download` serves only URLs it handed out.

    Files to the customer: `upload_media` keeps the bytes (`uploads`) and makes them a medium
    like any other (so `media_info` describes it); `send_media` records what went out, bytes
    included (`media_sent`), under the window rule of `send_text`. With `media_limits` (the
    default) it refuses what the Graph sandbox refuses: an unsupported type (code 100), an upload
    over 100 MB or a medium over its kind's limit or of the wrong type (131053), an unknown id (100).

    Interactive lists: `send_list` builds the adapter's body and checks it with the Graph
    sandbox's own rules (so a part over Meta's limits is `GraphRejected` 131009 here too), then
    applies the window rule of `send_text` and records what went out (`lists`).
    """

    sent: list[dict[str, Any]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    reads: list[dict[str, Any]] = field(default_factory=list)
    enforce_window: bool = False
    clock: Callable[[], float] = time.time
    media: dict[str, _Medium] = field(default_factory=dict)
    media_asked: list[str] = field(default_factory=list)
    """Media ids passed to `media_info`, in order."""
    downloads: list[dict[str, Any]] = field(default_factory=list)
    """Every `download` asked for: url, max_bytes."""
    uploads: list[dict[str, Any]] = field(default_factory=list)
    """Accepted `upload_media` calls: media_id, phone_number_id, data, mime_type, filename."""
    media_sent: list[dict[str, Any]] = field(default_factory=list)
    """Accepted `send_media` calls: wamid, phone_number_id, to, media_type, media_id, filename,
    caption (as the adapter sends them: no caption on audio, filename on documents only), and the
    medium's data and mime_type."""
    media_limits: bool = True
    lists: list[dict[str, Any]] = field(default_factory=list)
    """Accepted `send_list` calls: wamid, phone_number_id, to, body, button, rows (as sent:
    id, title and a description only where one was given), section_title."""
    _windows: dict[tuple[str, str], float] = field(default_factory=dict)
    _urls: dict[str, str] = field(default_factory=dict)
    _wamids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _media_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1_000_000_000_000_001))

    def customer_wrote(self, address: str, phone_number_id: str, at: float | None = None) -> None:
        """Open (or move) the 24-hour window: `address` (wa_id or user id) last wrote at `at`."""
        self._windows[(phone_number_id, address)] = self.clock() if at is None else at

    def add_media(
        self,
        media_id: str,
        data: bytes,
        mime: str,
        *,
        sha256: str | None = None,
        file_size: int | str | None = "real",
    ) -> None:
        """Seed a medium; `sha256` and `file_size` (None: Graph does not say) default to the truth."""
        size = len(data) if file_size == "real" else file_size
        digest = hashlib.sha256(data).hexdigest() if sha256 is None else sha256
        self.media[media_id] = _Medium(data, mime, digest, size if isinstance(size, int) else None)

    def _wamid(self) -> str:
        return f"wamid.FAKE{next(self._wamids):06d}"

    def send_text(
        self,
        phone_number_id: str,
        to: Recipient,
        body: str,
        *,
        reply_to: str | None = None,
        preview_url: bool = False,
    ) -> str:
        self._enter("send_text")
        self._require_window(phone_number_id, to)
        wamid = self._wamid()
        self.sent.append(
            {"wamid": wamid, "phone_number_id": phone_number_id, "to": to, "body": body, "reply_to": reply_to}
        )
        return wamid

    def send_template(
        self, phone_number_id: str, to: Recipient, *, name: str, language: str, body_parameters: list[str]
    ) -> str:
        self._enter("send_template")
        wamid = self._wamid()
        self.templates.append(
            {
                "wamid": wamid,
                "phone_number_id": phone_number_id,
                "to": to,
                "name": name,
                "language": language,
                "body_parameters": list(body_parameters),
            }
        )
        return wamid

    def mark_read(self, phone_number_id: str, wamid: str, *, typing: bool = False) -> None:
        self._enter("mark_read")
        self.reads.append({"phone_number_id": phone_number_id, "wamid": wamid, "typing": typing})

    def media_info(self, media_id: str) -> MediaInfo:
        self._enter("media_info")
        self.media_asked.append(media_id)
        medium = self.media.get(media_id)
        if medium is None:
            raise GraphRejected("Graph HTTP 400 (#100) Unsupported get request", code=100, status=400)
        with self._lock:
            url = f"https://cdn.example/{media_id}?u={len(self._urls) + 1}"
            self._urls[url] = media_id
        return MediaInfo(
            url=url, mime_type=medium.mime_type, sha256=medium.sha256, file_size=medium.file_size
        )

    def download(self, url: str, *, max_bytes: int) -> bytes:
        self._enter("download")
        self.downloads.append({"url": url, "max_bytes": max_bytes})
        media_id = self._urls.get(url)
        if media_id is None or media_id not in self.media:
            # Meta's CDN answers 404 to an expired or doctored URL.
            raise GraphRejected("Graph HTTP 404: media URL expired or unknown", status=404)
        data = self.media[media_id].data
        if len(data) > max_bytes:
            raise GraphRejected(
                f"download: medium too large (limit {max_bytes})",
                title="too large",
                details=f"limit {max_bytes} bytes",
            )
        return data

    def upload_media(self, phone_number_id: str, data: bytes, *, mime_type: str, filename: str) -> str:
        self._enter("upload_media")
        if self.media_limits and mime_type not in UPLOAD_TYPES:
            raise _rejected(
                100, f"Param file must be a file with one of the following types: {', '.join(UPLOAD_TYPES)}"
            )
        if self.media_limits and len(data) > UPLOAD_MAX_BYTES:
            raise _rejected(131053, "Media upload error")
        media_id = str(next(self._media_ids))
        self.add_media(media_id, data, mime_type)
        self.uploads.append(
            {
                "media_id": media_id,
                "phone_number_id": phone_number_id,
                "data": bytes(data),
                "mime_type": mime_type,
                "filename": filename,
            }
        )
        return media_id

    def send_media(
        self,
        phone_number_id: str,
        to: Recipient,
        *,
        media_type: str,
        media_id: str,
        filename: str | None = None,
        caption: str | None = None,
    ) -> str:
        self._enter("send_media")
        # The adapter's own body: a bad media_type fails alike, and what is recorded is what
        # would have gone out (no caption on audio, a filename on documents only).
        message = media_message(
            to, media_type=media_type, media_id=media_id, filename=filename, caption=caption
        )
        medium = self.media.get(media_id)
        if medium is None:
            raise _rejected(
                100, f"Param {media_type}['id'] is not a valid whatsapp business account media attachment ID"
            )
        if self.media_limits and (
            medium.mime_type not in KIND_TYPES[media_type] or len(medium.data) > SEND_MAX_BYTES[media_type]
        ):
            raise _rejected(131053, "Media upload error")
        self._require_window(phone_number_id, to)
        wamid = self._wamid()
        sent = message[media_type]
        self.media_sent.append(
            {
                "wamid": wamid,
                "phone_number_id": phone_number_id,
                "to": to,
                "media_type": media_type,
                "media_id": media_id,
                "filename": sent.get("filename"),
                "caption": sent.get("caption"),
                "data": medium.data,
                "mime_type": medium.mime_type,
            }
        )
        return wamid

    def send_list(
        self,
        phone_number_id: str,
        to: Recipient,
        *,
        body: str,
        button: str,
        rows: list[dict[str, str]],
        section_title: str = "",
    ) -> str:
        self._enter("send_list")
        # The adapter's body, judged by the sandbox's rules: the fake refuses what Meta refuses.
        message = list_message(to, body=body, button=button, rows=rows, section_title=section_title)
        try:
            sandbox_validate.parse(message)
        except SandboxRefusal as refusal:
            raise _rejected(
                refusal.code, refusal.message.removeprefix(f"(#{refusal.code}) "), refusal.details
            ) from None
        self._require_window(phone_number_id, to)
        wamid = self._wamid()
        section = message["interactive"]["action"]["sections"][0]
        self.lists.append(
            {
                "wamid": wamid,
                "phone_number_id": phone_number_id,
                "to": to,
                "body": body,
                "button": button,
                "rows": [dict(row) for row in section["rows"]],
                "section_title": section_title,
            }
        )
        return wamid

    def bodies(self) -> list[str]:
        return [m["body"] for m in self.sent]

    def _require_window(self, phone_number_id: str, to: Recipient) -> None:
        """Like Meta (with `enforce_window`): free-form only within 24 h of the customer's last word."""
        if self.enforce_window and not self._window_open(phone_number_id, to):
            raise WindowClosed(
                "Graph HTTP 400 (#131047) Re-engagement message",
                code=131047,
                title="Re-engagement message",
                status=400,
            )

    def _window_open(self, phone_number_id: str, to: Recipient) -> bool:
        last = self._windows.get((phone_number_id, to.address))
        return last is not None and self.clock() - last < CUSTOMER_WINDOW_SECONDS


@dataclass(frozen=True)
class _Medium:
    data: bytes
    mime_type: str
    sha256: str
    file_size: int | None


def _rejected(code: int, title: str, details: str | None = None) -> GraphRejected:
    return GraphRejected(
        f"Graph HTTP 400 (#{code}) {title}", code=code, title=title, status=400, details=details or ""
    )
