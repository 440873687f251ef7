"""ALL_KINDS: one realistic example of every message kind the renderer must handle."""

from __future__ import annotations

from typing import Any

from .ids import DEFAULT_WA_ID, DISPLAY_PHONE, wamid_for
from .messages import (
    Msg,
    audio,
    button_reply,
    contacts_msg,
    document,
    edit,
    image,
    list_reply,
    location,
    nfm_reply,
    order,
    reaction,
    revoke,
    sticker,
    system,
    template_button,
    text,
    unknown_type,
    unsupported,
    video,
)


def _fixed_wamid(n: int) -> str:
    # Deterministic ids keep ALL_KINDS identical across test workers.
    return wamid_for(DEFAULT_WA_ID, f"{n:020X}")


ORIGINAL = _fixed_wamid(0)
"""The earlier message that reactions, edits, revokes and button replies in ALL_KINDS refer to."""
_W = DEFAULT_WA_ID
_REPLY = {"from": DISPLAY_PHONE, "id": ORIGINAL}


def _at(n: int) -> dict[str, Any]:
    return {"wamid": _fixed_wamid(n), "timestamp": 1749416383}


# (case label, message): every kind the renderer must handle, one realistic example each.
# The label is unique; the message's `type` is Meta's kind (three cases are `interactive`).
ALL_KINDS: list[tuple[str, Msg]] = [
    ("text", text(_W, "Does it come in another color?", **_at(1))),
    ("image", image(_W, caption="Taj Mahal", media_id="1003383421387256", **_at(2))),
    ("video", video(_W, caption="My vacation video", media_id="1003383421387257", **_at(3))),
    ("audio", audio(_W, media_id="1003383421387258", **_at(4))),
    ("voice", audio(_W, voice=True, media_id="1003383421387259", **_at(5))),
    ("document", document(_W, caption="My receipt", media_id="1003383421387260", **_at(6))),
    ("sticker", sticker(_W, animated=True, media_id="1003383421387261", **_at(7))),
    ("location", location(_W, name="Philz Coffee", address="101 Forest Ave, Palo Alto, CA 94301", **_at(8))),
    ("contacts", contacts_msg(_W, **_at(9))),
    ("button_reply", button_reply(_W, "Cancel", context=_REPLY, **_at(10))),
    ("list_reply", list_reply(_W, "Priority Mail Express", "Next Day to 2 Days", context=_REPLY, **_at(11))),
    ("nfm_reply", nfm_reply(_W, {"name": "Ana", "size": "M"}, context=_REPLY, **_at(12))),
    ("template_button", template_button(_W, "Unsubscribe", context=_REPLY, **_at(13))),
    ("reaction", reaction(_W, ORIGINAL, "👍", **_at(14))),
    ("reaction_removed", reaction(_W, ORIGINAL, "", **_at(15))),
    ("order", order(_W, **_at(16))),
    ("system", system(_W, "12195555358", **_at(17))),
    ("edit", edit(_W, ORIGINAL, "Actually, blue please", **_at(18))),
    ("revoke", revoke(_W, ORIGINAL, **_at(19))),
    ("unsupported", unsupported(_W, **_at(20))),
    ("unknown_type", unknown_type(_W, "hologram", **_at(21))),
]
