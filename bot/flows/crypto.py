"""Meta's encryption for the Flows data exchange. Pure: bytes and keys in, bytes out.

A request body is JSON with three base64 strings:
- `encrypted_aes_key`: a fresh 128-bit AES key, RSA-OAEP encrypted (SHA-256, MGF1-SHA-256, no
  label) with the public key the business uploaded to Meta;
- `initial_vector`: the AES-GCM IV (Meta uses 16 bytes);
- `encrypted_flow_data`: the JSON request, AES-128-GCM, ciphertext then the 16-byte tag.
The answer is the JSON response encrypted with the SAME key and the IV with every bit inverted
(so one key never encrypts two messages under one IV), ciphertext + tag, base64, as the body.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AES_KEY_BYTES = 16  # AES-128, as Meta sends
TAG_BYTES = 16
_FIELDS = ("encrypted_aes_key", "encrypted_flow_data", "initial_vector")


class DecryptError(Exception):
    """The body is not a request encrypted for our key. The endpoint answers 421, which makes
    Meta download the business's public key again (it may have been rotated)."""


def oaep() -> padding.OAEP:
    """The RSA padding Meta uses to wrap the AES key."""
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def invert_iv(iv: bytes) -> bytes:
    """The response IV: every bit of the request's IV flipped."""
    return bytes(b ^ 0xFF for b in iv)


def decrypt_request(
    private_key: rsa.RSAPrivateKey, body: Mapping[str, Any]
) -> tuple[dict[str, Any], bytes, bytes]:
    """Open one data-exchange request.

    Args:
        private_key: the RSA key whose public half Meta encrypts for.
        body: the parsed JSON body of the POST.

    Returns:
        (the decrypted request as a dict, the AES key, the IV): the last two encrypt the answer.

    Raises:
        DecryptError: a field is missing or not base64, the key does not unwrap with ours, the
            GCM tag does not verify, or the plaintext is not a JSON object. The message says
            which, never anything secret.
    """
    wrapped, sealed, iv = (_b64_field(body, name) for name in _FIELDS)
    try:
        aes_key = private_key.decrypt(wrapped, oaep())
    except ValueError:
        raise DecryptError("encrypted_aes_key does not decrypt with our private key") from None
    if len(aes_key) != AES_KEY_BYTES:
        raise DecryptError(f"the AES key is {len(aes_key) * 8} bits, expected {AES_KEY_BYTES * 8}")
    if not iv or len(sealed) < TAG_BYTES:
        raise DecryptError("initial_vector is empty or encrypted_flow_data is shorter than a GCM tag")
    try:
        plaintext = AESGCM(aes_key).decrypt(iv, sealed, None)
    except (InvalidTag, ValueError):
        raise DecryptError("encrypted_flow_data fails AES-GCM authentication") from None
    try:
        request = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DecryptError("the decrypted flow data is not JSON") from None
    if not isinstance(request, dict):
        raise DecryptError("the decrypted flow data is not a JSON object")
    return request, aes_key, iv


def encrypt_response(payload: Mapping[str, Any], aes_key: bytes, iv: bytes) -> str:
    """The response body: `payload` as JSON, AES-GCM with the request's key and inverted IV, base64."""
    # ASCII with \u escapes: any string the customer sent (a lone surrogate too) survives.
    plaintext = json.dumps(payload, separators=(",", ":")).encode("ascii")
    return base64.b64encode(AESGCM(aes_key).encrypt(invert_iv(iv), plaintext, None)).decode("ascii")


def private_key_from_pem(pem: bytes, passphrase: str = "") -> rsa.RSAPrivateKey:
    """Parse a PEM RSA private key (PKCS#1 or PKCS#8, encrypted or not).

    Raises:
        ValueError: not a PEM key, wrong passphrase, or not RSA.
        TypeError: the key is encrypted and no passphrase was given, or the reverse.
    """
    password = passphrase.encode("utf-8") if passphrase else None
    key = serialization.load_pem_private_key(pem, password=password)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"expected an RSA key, got {type(key).__name__}")
    return key


def _b64_field(body: Mapping[str, Any], name: str) -> bytes:
    value = body.get(name) if isinstance(body, Mapping) else None
    if not isinstance(value, str) or not value:
        raise DecryptError(f"{name} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptError(f"{name} is not base64") from None
