"""The Flow data-exchange endpoint: `POST {[flows] endpoint_path}`.

Meta signs the raw body like a webhook (`X-Hub-Signature-256`, the app secret) and encrypts it
for our key (`bot.flows.crypto`). Answers, in the order they are checked:
- 432: missing or wrong signature (Meta's code for "signature verification failed");
- 400: the body is not JSON;
- 421: it is JSON but does not decrypt with our key; Meta then fetches our public key again;
- 200: the encrypted answer (`bot.flows.screens`), as base64 text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from bot.config.model import FlowScreen
from bot.flows.crypto import DecryptError, decrypt_request, encrypt_response
from bot.flows.screens import UNAVAILABLE, answer_request
from bot.logs import get_logger
from bot.rules.signature import SignatureCheck, check_signature
from bot.whatsapp.webhook import Reply

log = get_logger(__name__)

SIGNATURE_FAILED = 432
DECRYPTION_FAILED = 421


@dataclass
class FlowEndpoint:
    """Answers Meta's data-exchange requests from the configured screens.

    Args:
        app_secret: the Meta app secret (HMAC key of the signature).
        private_key: the RSA key whose public half is registered with Meta.
        screens: `[flows] screens`.
        observe: told each outcome ("ping", "data_exchange", "bad_signature", …), for metrics.
    """

    app_secret: str
    private_key: rsa.RSAPrivateKey
    screens: Sequence[FlowScreen] = ()
    unavailable: str = UNAVAILABLE
    """What the flow shows for a request no screen answers (`[flows] unavailable_message`)."""
    observe: Callable[[str], None] = lambda outcome: None

    def __post_init__(self) -> None:
        if not self.app_secret:
            raise ValueError("whatsapp.app_secret is empty: refusing to accept unsigned flow requests")

    def handle(self, signature: str | None, raw_body: bytes) -> Reply:
        """One POST: the `X-Hub-Signature-256` header (None when absent) and the exact body bytes."""
        if check_signature(self.app_secret, raw_body, signature) is not SignatureCheck.OK:
            reason = "missing" if not signature else "does not match the body"
            return self._refuse(SIGNATURE_FAILED, f"X-Hub-Signature-256 {reason}", "bad_signature")
        try:
            body = json.loads(raw_body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return self._refuse(400, "body is not JSON", "not_json")
        try:
            request, aes_key, iv = decrypt_request(self.private_key, body if isinstance(body, dict) else {})
        except DecryptError as exc:
            return self._refuse(DECRYPTION_FAILED, str(exc), "undecryptable")
        answer, outcome = answer_request(request, self.screens, self.unavailable)
        self.observe(outcome)
        # Screen names and the action only: the data is the customer's.
        log.info(
            "flow_request_answered",
            outcome=outcome,
            action=str(request.get("action"))[:40],
            screen=str(request.get("screen") or "")[:80],
            next_screen=str(answer.get("screen") or ""),
        )
        if outcome == "unanswered":
            log.warning(
                "flow_screen_not_configured",
                action=str(request.get("action"))[:40],
                screen=str(request.get("screen") or "")[:80],
            )
        return Reply(200, encrypt_response(answer, aes_key, iv).encode("ascii"), "text/plain")

    def _refuse(self, status: int, reason: str, outcome: str) -> Reply:
        self.observe(outcome)
        log.warning("flow_request_refused", status=status, reason=reason)
        return Reply.json(status, error=reason)
