"""Constants of the sandbox's business number and ids shaped like Meta's (wamids, timestamps)."""

from __future__ import annotations

import base64
import itertools
import os
import time

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE = "15550783881"
WABA_ID = "102290129340398"
DEFAULT_WA_ID = "16505551234"

_counter = itertools.count(1)


def serial() -> int:
    """The next number of a process-wide counter: ids made from it never repeat in a run."""
    return next(_counter)


def wamid_for(wa_id: str, key: str) -> str:
    # Meta's ids are base64 of a small protobuf-like frame: the peer's number, then a
    # 20-character hex message key.
    phone = wa_id.encode()
    frame = b"\x1c\x18" + bytes([len(phone)]) + phone + b"\x15\x02\x00\x12\x18\x14"
    return "wamid." + base64.b64encode(frame + key.encode() + b"\x00").decode()


def new_wamid(wa_id: str = DEFAULT_WA_ID) -> str:
    """A unique id shaped like Meta's (`wamid.HBgL…` for an 11-digit number).

    A process counter in the key guarantees uniqueness; random bytes make ids from different
    runs differ.
    """
    return wamid_for(wa_id, f"{serial():06X}{os.urandom(7).hex().upper()}")


def timestamp_text(timestamp: int | str | None) -> str:
    """Meta sends epoch seconds as a string; None means now."""
    return str(int(time.time()) if timestamp is None else timestamp)
