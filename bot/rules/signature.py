"""Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.

Pure functions: the webhook passes the header and the exact bytes it read, and maps the answer to
401 (missing) or 403 (invalid). The HMAC must be computed over the raw body, never over re-encoded
JSON, because any re-serialisation changes the bytes Meta signed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac

_PREFIX = "sha256="
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_DIGEST_HEX_LEN = hashlib.sha256().digest_size * 2


class SignatureCheck(enum.Enum):
    """Outcome of checking one delivery's signature header."""

    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"


def _key(app_secret: str) -> bytes:
    # An empty secret would make every forged body verifiable by anyone who guesses it;
    # the daemon refuses to start instead (config validation relies on this raising).
    if not app_secret:
        raise ValueError("app_secret must not be empty")
    return app_secret.encode("utf-8")


def sign(app_secret: str, body: bytes) -> str:
    """Return the `X-Hub-Signature-256` header value Meta would send for `body`.

    Raises:
        ValueError: `app_secret` is empty.
    """
    digest = hmac.new(_key(app_secret), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def check_signature(app_secret: str, body: bytes, header: str | None) -> SignatureCheck:
    """Check the `X-Hub-Signature-256` header against the raw request body.

    Args:
        app_secret: the Meta app secret (the HMAC key).
        body: the request body exactly as received.
        header: the header value, or None when the request had none.

    Returns:
        MISSING when there is no (or an empty) header, INVALID when it is malformed or does
        not match, OK otherwise.

    Raises:
        ValueError: `app_secret` is empty.
    """
    key = _key(app_secret)
    if header is None or not header.strip():
        return SignatureCheck.MISSING
    value = header.strip()
    if not value.startswith(_PREFIX):
        return SignatureCheck.INVALID
    given = value[len(_PREFIX) :]
    # Shape checks first so a malformed header never reaches the comparison; they only look at
    # attacker-supplied input, so they leak nothing about the expected digest.
    if len(given) != _DIGEST_HEX_LEN or not set(given) <= _HEX_DIGITS:
        return SignatureCheck.INVALID
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    # Hex case carries no information; compare lower-case so `ABCD…` from a proxy still matches.
    if hmac.compare_digest(expected, given.lower()):
        return SignatureCheck.OK
    return SignatureCheck.INVALID
