"""Meta's webhook: verification handshake and signed deliveries.

Thin on purpose: check, parse, store in one transaction, answer. Everything slow (Jira, media,
AI) happens later in jobs, so Meta gets its 200 in milliseconds and a crash after the 200 loses
nothing because the rows are already committed.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.logs import get_logger
from bot.rules.events import ParsedBatch, PayloadError
from bot.rules.payload import parse_webhook
from bot.rules.signature import SignatureCheck, check_signature
from storage.db import StorageUnavailable
from storage.ingest import StoreResult

log = get_logger(__name__)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def json(cls, code: int, **payload: object) -> Reply:
        return cls(code, json.dumps(payload).encode())


@dataclass
class WebhookHandler:
    """Answers Meta. `store` commits a batch; `on_stored` is told afterwards (nudges the inbox)."""

    verify_token: str
    app_secret: str
    max_body_bytes: int
    store: Callable[[ParsedBatch], StoreResult]
    on_stored: Callable[[StoreResult], None] = lambda result: None
    observe: Callable[[str], None] = lambda outcome: None

    def __post_init__(self) -> None:
        if not self.app_secret:
            raise ValueError("whatsapp.app_secret is empty: refusing to accept unsigned webhooks")

    def verify(self, query: Mapping[str, str]) -> Reply:
        """GET: Meta's subscription handshake."""
        mode, token = query.get("hub.mode"), query.get("hub.verify_token")
        challenge = query.get("hub.challenge", "")
        if mode == "subscribe" and token is not None and _same(token, self.verify_token):
            self.observe("verified")
            return Reply(200, challenge.encode(), "text/plain")
        self.observe("verify_refused")
        log.warning("webhook_verify_refused", mode=mode)
        return Reply.json(403, error="verification refused: wrong hub.mode or hub.verify_token")

    def too_large(self, declared_length: int | None) -> bool:
        return declared_length is not None and declared_length > self.max_body_bytes

    def deliver(self, signature: str | None, body: bytes) -> Reply:
        """POST: one signed delivery, stored whole or not at all."""
        if not signature or not signature.strip():
            return self._refuse(401, "missing X-Hub-Signature-256 header", "unsigned")
        if len(body) > self.max_body_bytes:
            return self.refuse_oversized()
        if check_signature(self.app_secret, body, signature) is not SignatureCheck.OK:
            return self._refuse(403, "X-Hub-Signature-256 does not match the body", "bad_signature")
        try:
            doc = json.loads(body)
            batch = parse_webhook(doc)
        except (UnicodeDecodeError, ValueError) as exc:
            if isinstance(exc, PayloadError):
                return self._refuse(400, f"not a WhatsApp webhook we can store: {exc}", "malformed")
            return self._refuse(400, "body is not JSON", "not_json")
        except RecursionError:  # the stdlib decoder recurses per nesting level
            return self._refuse(400, "JSON nested too deeply", "malformed")
        try:
            result = self.store(batch)
        except StorageUnavailable as exc:
            # 503 makes Meta redeliver later (for up to 7 days): nothing is lost.
            log.error("webhook_storage_unavailable", error=str(exc))
            self.observe("storage_unavailable")
            return Reply.json(503, error="storage unavailable, retry later")
        self.observe("stored")
        log.info(
            "webhook_stored",
            messages=result.messages_new,
            duplicates=result.messages_duplicate,
            statuses=result.statuses_new,
            others=result.others_new,
        )
        if result.messages_new or result.statuses_new:
            self.on_stored(result)
        return Reply.json(200, status="ok")

    def refuse_oversized(self) -> Reply:
        # Refused on the declared length, before reading: a 3 MB limit must not cost 3 GB of RAM.
        return self._refuse(413, f"body over {self.max_body_bytes} bytes", "too_large")

    def _refuse(self, status: int, reason: str, outcome: str) -> Reply:
        self.observe(outcome)
        log.warning("webhook_refused", status=status, reason=reason)
        return Reply.json(status, error=reason)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
