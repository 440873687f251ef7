"""The WhatsApp Cloud (Graph) API adapter: every call wajira makes to Meta goes through
`GraphAdapter._request`, which times it, reports it to metrics, logs it and turns any failure
into one of the exceptions in `graph_errors`.

Request bodies follow `POST /{Version}/{Phone-Number-ID}/messages` in Meta's published v23
OpenAPI description (specs/whatsapp-business-messaging-v23.openapi.yaml).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from bot.logs import get_logger
from bot.whatsapp.graph_errors import (
    MAX_ERROR_BODY,
    GraphAuthFailed,
    GraphError,
    GraphRateLimited,
    GraphRejected,
    GraphUnavailable,
    WindowClosed,
    error_from_response,
)
from bot.whatsapp.interactive_out import InteractiveSending
from bot.whatsapp.media import CHUNK_BYTES, MediaInfo, check_download_url, read_capped
from bot.whatsapp.media_out import MediaSending
from bot.whatsapp.recipient import Recipient, envelope

# Callers take the adapter and the exceptions it raises from one place.
__all__ = [
    "GraphAdapter",
    "GraphAuthFailed",
    "GraphError",
    "GraphRateLimited",
    "GraphRejected",
    "GraphUnavailable",
    "MediaInfo",
    "Recipient",
    "WindowClosed",
]

log = get_logger(__name__)
T = TypeVar("T")
Observe = Callable[[str, str, float], None]


class GraphAdapter(MediaSending, InteractiveSending):
    """Meta's Graph API for one WhatsApp Business account (`upload_media` and `send_media` come
    from `media_out.MediaSending`, `send_list` from `interactive_out.InteractiveSending`).

    Args:
        session: the `requests.Session` that does the HTTP (pooled connections).
        base_url: e.g. "https://graph.facebook.com" (or a sandbox on loopback).
        api_version: e.g. "v23.0".
        access_token: the system-user token; sent as a bearer header, never logged.
        timeout: seconds for connecting and for each read.
        observe: called as observe(operation, outcome, seconds) after every call (metrics).
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        api_version: str,
        access_token: str,
        timeout: float = 30.0,
        observe: Observe | None = None,
    ) -> None:
        self._session = session
        self._root = f"{base_url.rstrip('/')}/{api_version.strip('/')}"
        self._token = access_token
        self._timeout = timeout
        self._observe = observe or (lambda op, outcome, seconds: None)

    @classmethod
    def connect(
        cls,
        *,
        base_url: str,
        api_version: str,
        access_token: str,
        timeout: float = 30.0,
        observe: Observe | None = None,
    ) -> GraphAdapter:
        """Build the adapter without touching the network.

        The session has no retry adapter: retries are the outbox's, which backs off without
        holding a worker thread asleep and knows whether a send may have gone through.
        """
        session = requests.Session()
        session.headers["User-Agent"] = "wajira"
        return cls(
            session,
            base_url=base_url,
            api_version=api_version,
            access_token=access_token,
            timeout=timeout,
            observe=observe,
        )

    # -- the one place HTTP happens ---------------------------------------------------------

    def _request(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        read: Callable[[requests.Response], T],
        json: dict[str, Any] | None = None,
        stream: bool = False,
        fields: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        data: dict[str, str] | None = None,
    ) -> T:
        """Send one request and hand the 2xx response to `read`, inside the timing and the
        error translation (so a body that breaks off mid-download is reported like any failure).

        Raises:
            GraphError: a subclass for every failure; `requests` exceptions never escape.
        """
        started = time.monotonic()
        outcome, status, code = "ok", None, None
        # `from None` below: a `requests` exception names the URL (media URLs are signed) and may
        # hold the response; ours says what happened, and no traceback chains to theirs.
        try:
            headers = {"Authorization": f"Bearer {self._token}"}
            with self._session.request(
                method,
                url,
                json=json,
                data=data,  # multipart form fields, with `files`
                files=files,
                headers=headers,
                timeout=self._timeout,
                stream=stream,
            ) as response:
                status = response.status_code
                if status >= 400:
                    raise error_from_response(status, response.headers, _head(response, MAX_ERROR_BODY))
                return read(response)
        except GraphError as exc:
            outcome, code = type(exc).__name__, exc.code
            raise
        except requests.Timeout:
            outcome = "GraphUnavailable"
            raise GraphUnavailable(f"{operation}: Graph did not answer in time") from None
        except requests.ConnectionError as exc:
            outcome = "GraphUnavailable"
            raise GraphUnavailable(f"{operation}: cannot reach Graph ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            outcome = "GraphUnavailable"
            raise GraphUnavailable(f"{operation}: {type(exc).__name__}") from None
        finally:
            elapsed = time.monotonic() - started
            self._observe(operation, outcome, elapsed)
            # No URL (media URLs are signed), no body (customer text), no token: ids and outcome.
            log.debug(
                "graph_call",
                operation=operation,
                outcome=outcome,
                status=status,
                code=code,
                ms=round(elapsed * 1000, 1),
                **(fields or {}),
            )

    def _url(self, *segments: str) -> str:
        # Ids come from webhooks and config: quoting keeps "../" or "?" from reshaping the path.
        return "/".join([self._root, *(quote(str(s), safe="") for s in segments)])

    # -- operations -------------------------------------------------------------------------

    def send_text(
        self,
        phone_number_id: str,
        to: Recipient,
        body: str,
        *,
        reply_to: str | None = None,
        preview_url: bool = False,
    ) -> str:
        """Send a free-form text (≤ 4096 characters; splitting is the caller's job).

        Args:
            phone_number_id: the business number sending it.
            to: the customer.
            body: the text, already in WhatsApp formatting.
            reply_to: a wamid to quote (`context.message_id`).
            preview_url: let WhatsApp render a preview of the first URL.

        Returns:
            The new message's wamid.

        Raises:
            WindowClosed: 24 h since the customer last wrote; send a template instead.
            GraphRateLimited: back off (`retry_after` when Meta said how long).
            GraphRejected: permanent (undeliverable 131026, invalid parameter 100, …).
            GraphAuthFailed: the token is bad.
            GraphUnavailable: outcome unknown; the message may have been sent.
        """
        message: dict[str, Any] = {
            **envelope(to),
            "type": "text",
            "text": {"body": body, "preview_url": preview_url},
        }
        if reply_to:
            message["context"] = {"message_id": reply_to}
        return self._send("send_text", phone_number_id, to, message)

    def send_template(
        self, phone_number_id: str, to: Recipient, *, name: str, language: str, body_parameters: list[str]
    ) -> str:
        """Send an approved template; the only kind of message allowed outside the 24 h window.

        Args:
            name: the template's name as approved in WhatsApp Manager.
            language: its language code, e.g. "en_US".
            body_parameters: texts for the body's {{1}}, {{2}}, … in order.

        Returns:
            The new message's wamid.

        Raises:
            The same as `send_text`, except `WindowClosed`.
        """
        # The spec's LanguageObject requires `policy`, whose only value is "deterministic".
        template: dict[str, Any] = {"name": name, "language": {"policy": "deterministic", "code": language}}
        if body_parameters:
            template["components"] = [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": str(p)} for p in body_parameters],
                }
            ]
        message = {**envelope(to), "type": "template", "template": template}
        return self._send("send_template", phone_number_id, to, message)

    def mark_read(self, phone_number_id: str, wamid: str, *, typing: bool = False) -> None:
        """Show the customer's message as read (blue ticks), optionally with "typing…".

        Meta shows the typing indicator for up to 25 seconds or until we answer.

        Raises:
            GraphRejected: unknown or too old message id; GraphUnavailable, GraphAuthFailed.
        """
        body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        answer = self._request(
            "mark_read",
            "POST",
            self._url(phone_number_id, "messages"),
            read=_json,
            json=body,
            fields={"phone_number_id": phone_number_id},
        )
        if not (isinstance(answer, dict) and answer.get("success") is True):
            raise GraphUnavailable("mark_read: Graph did not confirm the read mark")

    def media_info(self, media_id: str) -> MediaInfo:
        """Where to download a customer's medium. The URL expires in 5 minutes: fetch it right
        before `download`, never store it.

        Raises:
            GraphRejected: unknown media id (code 100); GraphUnavailable, GraphAuthFailed.
        """
        data = self._request(
            "media_info", "GET", self._url(media_id), read=_json, fields={"media_id": media_id}
        )
        try:
            size = data.get("file_size")
            return MediaInfo(
                url=str(data["url"]),
                mime_type=str(data["mime_type"]),
                sha256=str(data.get("sha256") or ""),
                # A string in the spec's schema, a number in some of Meta's answers.
                file_size=int(size) if size not in (None, "") else None,
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            raise GraphUnavailable("media_info: Graph's answer has no usable url/mime_type") from None

    def download(self, url: str, *, max_bytes: int) -> bytes:
        """Fetch a medium from the URL `media_info` gave, with the bearer token Meta requires.

        Streamed: a medium larger than `max_bytes` is refused on its Content-Length, or as soon
        as the running total passes the limit, without reading the rest.

        Raises:
            GraphRejected: "too large"; or the URL expired (Meta's CDN answers 404: ask
                `media_info` again); or the URL is not https (the token must not travel in clear).
            GraphUnavailable, GraphAuthFailed.
        """
        check_download_url(url)
        return self._request(
            "download", "GET", url, read=lambda response: read_capped(response, max_bytes), stream=True
        )

    def phone_number(self, phone_number_id: str) -> dict[str, Any]:
        """The business number's node (id, display_phone_number, verified_name, quality_rating);
        `wajira check` uses it to prove the token and the id both work.

        Raises:
            GraphRejected: unknown phone_number_id (code 100, subcode 33); GraphAuthFailed,
                GraphUnavailable.
        """
        data = self._request(
            "phone_number",
            "GET",
            self._url(phone_number_id),
            read=_json,
            fields={"phone_number_id": phone_number_id},
        )
        if not isinstance(data, dict):
            raise GraphUnavailable("phone_number: Graph's answer is not an object")
        return data

    # -- helpers ----------------------------------------------------------------------------

    def _send(self, operation: str, phone_number_id: str, to: Recipient, message: dict[str, Any]) -> str:
        answer = self._request(
            operation,
            "POST",
            self._url(phone_number_id, "messages"),
            read=_json,
            json=message,
            fields={"phone_number_id": phone_number_id, "to": to.masked()},
        )
        try:
            return str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            # Accepted or not, we cannot tell: the caller treats it like any unknown outcome.
            raise GraphUnavailable(f"{operation}: Graph answered 2xx without a message id") from None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # a 2xx proxy page, not Graph
        raise GraphUnavailable("Graph answered with something that is not JSON") from None


def _head(response: requests.Response, limit: int) -> bytes:
    """At most `limit` bytes of a body (an error page must not be read without bound)."""
    data = bytearray()
    for chunk in response.iter_content(CHUNK_BYTES):
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])
