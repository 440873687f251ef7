"""Play Meta's side of the webhook: sign and POST bodies the way Meta's delivery service does.

Used by e2e tests and `wajira demo`. Meta retries a non-200 delivery (for up to 7 days);
`deliver(..., retries_until_200=True)` imitates that on a test-sized clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import requests

from bot.rules.signature import sign

USER_AGENT = "facebookexternalua"
_TIMEOUT = 10.0


class MetaSender:
    """Sign and deliver webhook bodies to one URL.

    Args:
        url: the daemon's webhook URL.
        app_secret: the Meta app secret shared with the daemon.
        session: a requests session to reuse (one is made when omitted).
    """

    def __init__(self, url: str, app_secret: str, session: requests.Session | None = None) -> None:
        self.url = url
        self.app_secret = app_secret
        self.session = session or requests.Session()

    @staticmethod
    def encode(payload: dict | bytes) -> bytes:
        """Bytes as Meta sends them: compact JSON with non-ASCII escaped (`\\ud83d\\udc4d`)."""
        if isinstance(payload, bytes):
            return payload
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    def headers_for(self, body: bytes) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Hub-Signature-256": sign(self.app_secret, body),
        }

    def deliver(
        self,
        payload: dict | bytes,
        *,
        retries_until_200: bool = False,
        max_tries: int = 50,
        delay: float = 0.2,
    ) -> int:
        """POST one signed body and return the final HTTP status.

        With `retries_until_200`, non-200 answers and connection errors are retried every `delay`
        seconds, at most `max_tries` times in all, as Meta would (the same bytes each time).

        Raises:
            requests.RequestException: the daemon could not be reached (on the last try).
        """
        body = self.encode(payload)
        headers = self.headers_for(body)
        tries = max(1, max_tries) if retries_until_200 else 1
        status = 0
        for attempt in range(1, tries + 1):
            try:
                status = self.post_raw(body, headers).status_code
            except requests.RequestException:
                if attempt == tries:
                    raise
            else:
                if status == 200 or attempt == tries:
                    return status
            time.sleep(delay)
        return status

    def post_raw(self, body: bytes, headers: Mapping[str, str]) -> requests.Response:
        """POST `body` with exactly `headers` (no signing): for negative tests."""
        return self.session.post(self.url, data=body, headers=dict(headers), timeout=_TIMEOUT)
