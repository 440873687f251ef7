"""GraphSandbox: a loopback stand-in for Meta's WhatsApp Cloud API (Graph v23).

Serves the calls the daemon makes (send, mark as read / typing, media URL and download, phone
number lookup) with the spec's shapes and Meta's error dialect, enforces the 24-hour customer
service window, and plays Meta's status webhooks back to the daemon, signed with the app secret.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sandbox import whatsapp_payloads
from sandbox.faults import FaultPlan
from sandbox.httpserver import SandboxServer
from sandbox.meta import MetaSender

from . import errors
from .app import GraphApp
from .media import MediaStore
from .state import GraphState
from .statuses import StatusNotifier

DEFAULT_PHONE_NUMBERS = {whatsapp_payloads.PHONE_NUMBER_ID: whatsapp_payloads.DISPLAY_PHONE}


class GraphSandbox(SandboxServer):
    """Meta's Graph API on a free loopback port.

    Args:
        access_token: the only bearer token accepted.
        phone_numbers: phone_number_id → display number (digits) of the business numbers.
        api_version: the version the daemon is expected to call (others of the form vNN.N work too).
        webhook_url, app_secret: where and how to sign status callbacks; both needed to send any.
        status_delay: seconds before each status callback (and between them).
        status_sequence: statuses played for every accepted send.
        media_url_ttl: seconds a media download URL stays valid (Meta: 300).
        enforce_window: refuse free-form sends outside 24 h of the customer's last message.
        window_error_via: "response" (HTTP 400, code 131047) or "webhook" (accepted, then a
            `failed` status with 131047, which Meta also does).
        verified_name: the business name `GET /{phone-number-id}` reports.
    """

    app: GraphApp

    def __init__(
        self,
        *,
        access_token: str = "sandbox-graph-token",
        phone_numbers: dict[str, str] | None = None,
        api_version: str = "v23.0",
        webhook_url: str | None = None,
        app_secret: str | None = None,
        status_delay: float = 0.05,
        status_sequence: tuple[str, ...] = ("sent", "delivered", "read"),
        media_url_ttl: float = 300.0,
        enforce_window: bool = True,
        window_error_via: str = "response",
        verified_name: str = "Wajira Sandbox",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if window_error_via not in ("response", "webhook"):
            raise ValueError("window_error_via must be 'response' or 'webhook'")
        super().__init__(host, port)
        self.access_token = access_token
        self.api_version = api_version
        self.state = GraphState(phone_numbers or DEFAULT_PHONE_NUMBERS)
        self.media = MediaStore(media_url_ttl)
        self.faults = FaultPlan(default_body=errors.for_http_status)
        self.notifier: StatusNotifier | None = None
        if webhook_url and app_secret:
            sender = MetaSender(webhook_url, app_secret)
            self.notifier = StatusNotifier(sender, lambda pnid: self.state.phone_numbers.get(pnid, ""))
        self.app = GraphApp(
            state=self.state,
            media=self.media,
            faults=self.faults,
            access_token=access_token,
            notifier=self.notifier,
            status_sequence=tuple(status_sequence),
            status_delay=status_delay,
            enforce_window=enforce_window,
            window_error_via=window_error_via,
            verified_name=verified_name,
        )

    # --- lifecycle (start, stop, url and `with` come from SandboxServer) ----------------------

    def _starting(self) -> None:
        if self.notifier is not None:
            self.notifier.start()

    def _stopped(self) -> None:
        if self.notifier is not None:
            self.notifier.stop()

    @property
    def phone_number_id(self) -> str:
        """The first configured business number (the usual one in tests)."""
        return self.state.default_phone_number_id

    def messages_url(self, phone_number_id: str | None = None) -> str:
        return f"{self.url}/{self.api_version}/{phone_number_id or self.phone_number_id}/messages"

    # --- steering -----------------------------------------------------------------------------

    def customer_wrote(self, wa_id: str, at: float | None = None, phone_number_id: str | None = None) -> None:
        """Open (or move) the 24-hour window: `wa_id` last wrote at epoch `at` (default now)."""
        self.state.customer_wrote(wa_id, at, phone_number_id)

    def observe_webhook(self, payload: dict[str, Any]) -> None:
        """Open windows for every customer message in a webhook body the test is about to deliver.

        Lets e2e tests and the demo keep the sandbox's window in step with what "Meta" sent,
        using the messages' own `timestamp` as Meta does.
        """
        for entry in payload.get("entry", []):
            for change in entry.get("changes", []):
                value = change.get("value", {})
                pnid = value.get("metadata", {}).get("phone_number_id")
                for msg in value.get("messages", []):
                    if msg.get("from"):
                        self.customer_wrote(msg["from"], float(msg.get("timestamp") or 0) or None, pnid)

    def fail_next_send(self, code: int, count: int = 1, http_status: int | None = None) -> None:
        """Answer the next `count` sends with WhatsApp error `code` (429 for throughput codes)."""
        self.state.fail_next_send(code, count, http_status)

    def fail_delivery(self, wamid_or_next: str | bool = True, code: int = 131026) -> None:
        """Make a message's callbacks end in `failed` with `code`.

        `True`: the next accepted send gets `sent` then `failed`. A wamid: that (already
        accepted) message's next pending non-`sent` status becomes `failed`.
        """
        if wamid_or_next is True:
            self.state.fail_next_delivery(code)
        elif isinstance(wamid_or_next, str) and self.notifier is not None:
            self.notifier.fail(wamid_or_next, code)

    def add_media(
        self, media_id: str, data: bytes, mime_type: str, phone_number_id: str | None = None
    ) -> None:
        """Seed a medium the daemon can fetch via `GET /{version}/{media_id}`."""
        self.media.add(media_id, data, mime_type, phone_number_id)

    @property
    def media_url_ttl(self) -> float:
        return self.media.url_ttl

    @media_url_ttl.setter
    def media_url_ttl(self, seconds: float) -> None:
        self.media.url_ttl = float(seconds)

    # --- inspection ---------------------------------------------------------------------------

    @property
    def calls(self) -> Counter[str]:
        """Requests per route template, e.g. `calls["POST /{version}/{phone_number_id}/messages"]`."""
        return self.state.calls.snapshot()

    def reset_calls(self) -> None:
        self.state.reset_calls()

    def sent(self) -> list[dict[str, Any]]:
        """Copies of accepted sends: to, wa_id, type, body, template, wamid, phone_number_id, time, …"""
        return self.state.sent()

    def lists(self) -> list[dict[str, Any]]:
        """Accepted interactive lists, in order: body, button, section_titles, rows, wamid, to."""
        return self.state.lists()

    def reads(self) -> list[dict[str, Any]]:
        """Copies of mark-as-read calls: message_id, typing, phone_number_id, time."""
        return self.state.reads()

    def status_deliveries(self) -> list[dict[str, Any]]:
        """Status callbacks attempted so far (wamid, status, http_status, body)."""
        return self.notifier.deliveries() if self.notifier is not None else []

    def wait_statuses(self, timeout: float = 5.0) -> bool:
        """Wait until no status callback is pending; False on timeout."""
        return self.notifier.wait_idle(timeout) if self.notifier is not None else True

    def reset(self) -> None:
        """Forget sends, reads, windows, injected failures, media and call counts."""
        self.state.reset()
        self.faults.clear()
        self.media.clear()
        if self.notifier is not None:
            self.notifier.clear()
