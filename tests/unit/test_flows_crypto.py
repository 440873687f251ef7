"""bot.flows.crypto and keys: Meta's envelope, with keys made here and Meta's side played by
sandbox.flows_client (written separately from the code under test)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.flows.crypto import DecryptError, decrypt_request, encrypt_response, invert_iv, private_key_from_pem
from bot.flows.keys import KeyFileError, load_private_key_file
from sandbox.flows_client import new_key_pair, open_answer, seal

REQUEST = {
    "version": "3.0",
    "action": "data_exchange",
    "screen": "DETAILS",
    "data": {"order_id": "A-17", "note": "ünïcødé ✓"},
    "flow_token": "order-issue:1",
}


@pytest.fixture(scope="module")
def keys():
    pem, public = new_key_pair()
    return private_key_from_pem(pem), public


@pytest.fixture(scope="module")
def other_public():
    return new_key_pair()[1]


def test_round_trip(keys) -> None:
    private, public = keys
    sealed = seal(public, REQUEST)
    request, aes_key, iv = decrypt_request(private, sealed.body)
    assert (request, aes_key, iv) == (REQUEST, sealed.aes_key, sealed.iv)
    answer = {"screen": "SUMMARY", "data": {"order_id": "A-17"}}
    assert open_answer(encrypt_response(answer, aes_key, iv), aes_key, iv) == answer


def test_response_uses_the_inverted_iv_and_not_the_request_iv(keys) -> None:
    aes_key, iv = bytes(range(16)), bytes([0x00, 0xFF, 0x0F, 0xF0] * 4)
    sealed = base64.b64decode(encrypt_response({"data": {"status": "active"}}, aes_key, iv))
    flipped = bytes([0xFF, 0x00, 0xF0, 0x0F] * 4)  # written out, not computed with invert_iv
    assert json.loads(AESGCM(aes_key).decrypt(flipped, sealed, None)) == {"data": {"status": "active"}}
    with pytest.raises(InvalidTag):
        AESGCM(aes_key).decrypt(iv, sealed, None)
    assert invert_iv(b"\x00\xff\x5a") == b"\xff\x00\xa5"


def _tamper(body: dict, name: str, index: int) -> dict:
    raw = bytearray(base64.b64decode(body[name]))
    raw[index] ^= 0x01
    return {**body, name: base64.b64encode(bytes(raw)).decode()}


@pytest.mark.parametrize(
    "name, index, reason",
    [
        ("encrypted_flow_data", -1, "authentication"),  # the tag is the last 16 bytes
        ("encrypted_flow_data", 0, "authentication"),  # the ciphertext
        ("initial_vector", 0, "authentication"),
        ("encrypted_aes_key", 5, "private key"),
    ],
)
def test_tampering_is_a_decrypt_error(keys, name, index, reason) -> None:
    private, public = keys
    body = _tamper(seal(public, REQUEST).body, name, index)
    with pytest.raises(DecryptError, match=reason):
        decrypt_request(private, body)


def test_a_request_for_another_key_is_a_decrypt_error(keys, other_public) -> None:
    with pytest.raises(DecryptError, match="private key"):
        decrypt_request(keys[0], seal(other_public, REQUEST).body)


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda b: {k: v for k, v in b.items() if k != "initial_vector"}, "initial_vector is missing"),
        (lambda b: {**b, "encrypted_aes_key": 12}, "encrypted_aes_key is missing or not a string"),
        (lambda b: {**b, "encrypted_flow_data": "not base64!"}, "encrypted_flow_data is not base64"),
        (lambda b: {**b, "encrypted_flow_data": "AAAA"}, "shorter than a GCM tag"),
        (lambda b: {**b, "initial_vector": ""}, "initial_vector is missing"),
    ],
)
def test_malformed_bodies_are_decrypt_errors(keys, change, reason) -> None:
    with pytest.raises(DecryptError, match=reason):
        decrypt_request(keys[0], change(seal(keys[1], REQUEST).body))


def test_a_256_bit_key_is_refused(keys) -> None:
    with pytest.raises(DecryptError, match="256 bits"):
        decrypt_request(keys[0], seal(keys[1], REQUEST, aes_key=bytes(32)).body)


@pytest.mark.parametrize("plaintext", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_plaintext_must_be_a_json_object(keys, plaintext) -> None:
    private, public = keys
    body = seal(public, {}).body
    aes_key, iv = decrypt_request(private, body)[1:]
    body["encrypted_flow_data"] = base64.b64encode(AESGCM(aes_key).encrypt(iv, plaintext, None)).decode()
    with pytest.raises(DecryptError, match="JSON"):
        decrypt_request(private, body)


# -- the key file ---------------------------------------------------------------------------


def test_encrypted_key_file_loads_with_its_passphrase(tmp_path, keys) -> None:
    pem, public = new_key_pair("s3cret pass")
    path = tmp_path / "flows.pem"
    path.write_bytes(pem)
    private = load_private_key_file(path, "s3cret pass")
    assert decrypt_request(private, seal(public, REQUEST).body)[0] == REQUEST


def _key_error(path, passphrase: str = "") -> KeyFileError:
    with pytest.raises(KeyFileError) as info:
        load_private_key_file(path, passphrase)
    assert "s3cret" not in info.value.reason and "PRIVATE KEY" not in info.value.reason
    return info.value


def test_key_file_errors_say_what_is_wrong(tmp_path) -> None:
    encrypted = tmp_path / "enc.pem"
    encrypted.write_bytes(new_key_pair("s3cret")[0])
    plain = tmp_path / "plain.pem"
    plain.write_bytes(new_key_pair()[0])
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    missing = _key_error(tmp_path / "absent.pem")
    assert "cannot read" in missing.reason and not missing.passphrase
    no_pass = _key_error(encrypted)
    assert "is encrypted" in no_pass.reason and no_pass.passphrase
    wrong_pass = _key_error(encrypted, "s3cret-not")
    assert "passphrase is wrong" in wrong_pass.reason and not wrong_pass.passphrase
    needless = _key_error(plain, "s3cret")
    assert "not encrypted" in needless.reason and needless.passphrase
    assert "not a PEM private key" in _key_error(junk).reason
    assert "expected an RSA key" in _key_error(ec_key).reason
