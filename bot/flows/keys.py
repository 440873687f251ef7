"""The Flows private key file: read and parsed at config time (so `wajira check` and `wajira run`
exit 2 on a bad one) and again by the daemon when it builds the endpoint."""

from __future__ import annotations

import os
import pathlib

from cryptography.hazmat.primitives.asymmetric import rsa

from bot.flows.crypto import private_key_from_pem


class KeyFileError(Exception):
    """The key cannot be used. `passphrase` says whether the passphrase, not the file, is at fault."""

    def __init__(self, reason: str, *, passphrase: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.passphrase = passphrase


def load_private_key_file(path: str | os.PathLike[str], passphrase: str = "") -> rsa.RSAPrivateKey:
    """Read a PEM RSA private key.

    Raises:
        KeyFileError: unreadable file, not a PEM RSA private key, or a passphrase problem. The
            reason never contains key material or the passphrase.
    """
    file = pathlib.Path(path).expanduser()
    try:
        pem = file.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        return private_key_from_pem(pem, passphrase)
    except TypeError:
        # cryptography's TypeError means exactly this mismatch.
        if passphrase:
            raise KeyFileError(
                f"{file} is not encrypted: remove private_key_passphrase", passphrase=True
            ) from None
        raise KeyFileError(f"{file} is encrypted: set private_key_passphrase", passphrase=True) from None
    except ValueError as exc:
        hint = " or the passphrase is wrong" if passphrase else ""
        detail = str(exc) if "expected an RSA key" in str(exc) else f"not a PEM private key{hint}"
        raise KeyFileError(f"{file}: {detail}") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for exotic PEMs
        raise KeyFileError(f"{file}: cannot load the key ({type(exc).__name__})") from None
