"""Play Meta's side of the Flows data exchange: encrypt a request for the business's public key,
sign it with the app secret, POST it, and open the encrypted answer.

Written from Meta's description, apart from `bot.flows` (only the signature helper is shared),
so a test that passes through both checks one reading of the spec against the other. Used by
tests and available to demos.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.rules.signature import sign

_TIMEOUT = 10.0


def new_key_pair(passphrase: str = "", bits: int = 2048) -> tuple[bytes, rsa.RSAPublicKey]:
    """A fresh RSA key as PEM (PKCS#8, encrypted when a passphrase is given), and its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return pem, key.public_key()


@dataclass(frozen=True)
class Sealed:
    """One encrypted request: the JSON body Meta POSTs, and what opens the answer."""

    body: dict[str, str]
    aes_key: bytes
    iv: bytes


@dataclass(frozen=True)
class FlowAnswer:
    status: int
    text: str
    data: dict[str, Any] | None
    """The decrypted answer when status is 200."""


def seal(
    public_key: rsa.RSAPublicKey,
    request: dict[str, Any],
    *,
    aes_key: bytes | None = None,
    iv: bytes | None = None,
) -> Sealed:
    """Encrypt `request` as Meta does: AES-128-GCM with a fresh key and 16-byte IV, the key RSA-OAEP-SHA256 wrapped."""
    aes_key = aes_key or os.urandom(16)
    iv = iv or os.urandom(16)
    sealed = AESGCM(aes_key).encrypt(iv, json.dumps(request).encode(), None)
    wrapped = public_key.encrypt(
        aes_key, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    )
    return Sealed(
        body={
            "encrypted_flow_data": _b64(sealed),
            "encrypted_aes_key": _b64(wrapped),
            "initial_vector": _b64(iv),
        },
        aes_key=aes_key,
        iv=iv,
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def open_answer(text: str, aes_key: bytes, iv: bytes) -> dict[str, Any]:
    """Decrypt an endpoint's answer: same key, the IV with all bits flipped."""
    flipped = bytes(~b & 0xFF for b in iv)
    return json.loads(AESGCM(aes_key).decrypt(flipped, base64.b64decode(text), None))


class FlowsClient:
    """Meta calling one business's Flow endpoint.

    Args:
        url: the endpoint URL (`…/api/whatsapp/flows`).
        app_secret: the Meta app secret shared with the daemon.
        public_key: the business public key registered with Meta.
    """

    def __init__(
        self, url: str, app_secret: str, public_key: rsa.RSAPublicKey, session: requests.Session | None = None
    ) -> None:
        self.url = url
        self.app_secret = app_secret
        self.public_key = public_key
        self.session = session or requests.Session()

    def send(self, request: dict[str, Any]) -> FlowAnswer:
        """Encrypt, sign and POST one request; decrypt a 200 answer."""
        sealed = seal(self.public_key, request)
        status, text = self.post_raw(json.dumps(sealed.body).encode())
        data = open_answer(text, sealed.aes_key, sealed.iv) if status == 200 else None
        return FlowAnswer(status, text, data)

    def post_raw(self, body: bytes, *, signature: str | None = "sign") -> tuple[int, str]:
        """POST bytes as they are; `signature="sign"` signs them, None sends no header, else that value."""
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            headers["X-Hub-Signature-256"] = sign(self.app_secret, body)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        response = self.session.post(self.url, data=body, headers=headers, timeout=_TIMEOUT)
        return response.status_code, response.text

    def ping(self) -> FlowAnswer:
        return self.send({"version": "3.0", "action": "ping"})

    def init(self, flow_token: str) -> FlowAnswer:
        return self.send({"version": "3.0", "action": "INIT", "flow_token": flow_token})

    def data_exchange(self, screen: str, data: dict[str, Any], flow_token: str) -> FlowAnswer:
        return self.send(
            {
                "version": "3.0",
                "action": "data_exchange",
                "screen": screen,
                "data": data,
                "flow_token": flow_token,
            }
        )

    def back(self, screen: str, flow_token: str) -> FlowAnswer:
        return self.send(
            {"version": "3.0", "action": "BACK", "screen": screen, "data": {}, "flow_token": flow_token}
        )
