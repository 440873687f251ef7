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
    _windows: dict[tuple[str, str], float] = field(default_factory=dict)
    _urls: dict[str, str] = field(default_factory=dict)
    _wamids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

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
        if self.enforce_window and not self._window_open(phone_number_id, to):
            raise WindowClosed(
                "Graph HTTP 400 (#131047) Re-engagement message",
                code=131047,
                title="Re-engagement message",
                status=400,
            )
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

    def bodies(self) -> list[str]:
        return [m["body"] for m in self.sent]

    def _window_open(self, phone_number_id: str, to: Recipient) -> bool:
        last = self._windows.get((phone_number_id, to.address))
        return last is not None and self.clock() - last < CUSTOMER_WINDOW_SECONDS


@dataclass(frozen=True)
class _Medium:
    data: bytes
    mime_type: str
    sha256: str
    file_size: int | None
