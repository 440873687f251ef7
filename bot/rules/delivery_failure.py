"""Why a message did not reach the customer, in words an agent understands. Pure.

Meta answers a failed send (or reports a failed status) with a numeric code and a short English
title meant for developers. The internal note leads with what the code means for the agent, and
keeps Meta's code and title at the end for whoever has to dig further.
"""

from __future__ import annotations

import re

_TITLE_CHARS = 200
_TEXT_CHARS = 500
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")

# Meta's error codes (WhatsApp Cloud API "Error codes"), said the way an agent needs to hear them.
_MEANINGS: dict[int, str] = {
    100: "Meta refused a value in the request (an invalid parameter), so nothing was sent",
    190: "the WhatsApp access token has expired or was revoked: the operator must set a new one "
    "(nothing reaches customers until then)",
    368: "the WhatsApp business account is temporarily blocked for violating Meta's policies",
    130429: "too many messages were being sent at once (Meta's throughput limit for this number)",
    130472: "Meta did not deliver it because the customer's number is part of an experiment Meta runs",
    131000: "something went wrong at Meta",
    131005: "Meta denied permission to send it: the app or its token lacks the WhatsApp permissions",
    131008: "a required parameter was missing from the message",
    131009: "a value in the message was not accepted by Meta (an invalid parameter value)",
    131021: "the recipient is the business's own WhatsApp number",
    131026: "WhatsApp could not deliver it to this number (the number may not use WhatsApp, or its app "
    "is too old or has not accepted Meta's latest terms)",
    131031: "the WhatsApp business account is locked by Meta",
    131042: "there is a payment problem with the WhatsApp business account",
    131045: "the business phone number is not registered with WhatsApp",
    131047: "the customer's 24-hour window has closed: only an approved template can reach them now "
    "(/template NAME)",
    131048: "Meta limited this number for sending too many messages that were marked as spam",
    131049: "Meta chose not to deliver it, to keep the ecosystem healthy (it limits how many marketing "
    "messages one person receives); try again later or with another message",
    131050: "the customer has stopped marketing messages from this business",
    131051: "WhatsApp does not support this type of message",
    131052: "WhatsApp could not download the file (it may be too large or no longer available)",
    131053: "WhatsApp did not accept the file: its type or size is not supported",
    131056: "too many messages were sent to this customer in a short time (Meta's pair rate limit)",
    132000: "the template was given a different number of parameters than it has",
    132001: "the template does not exist in that language (or is not approved yet)",
    132005: "the template's text is too long once its parameters are filled in",
    132007: "the template's content breaks WhatsApp's format policy",
    132012: "a template parameter is not in the format the template expects",
    132015: "the template is paused by Meta because of its low quality",
    132016: "the template is disabled by Meta because of its low quality",
}
_UNKNOWN = "WhatsApp refused to deliver it"


def explain_meta_error(code: int | None, title: str | None = None) -> str:
    """What Meta's error `code` means for the agent, ending with `(Meta error {code}: {title})`."""
    number = code if isinstance(code, int) and not isinstance(code, bool) else None
    meaning = _MEANINGS.get(number, _UNKNOWN) if number is not None else _UNKNOWN
    shown_title = _clean(title, _TITLE_CHARS)
    if number is not None and shown_title:
        return f"{meaning} (Meta error {number}: {shown_title})"
    if number is not None:
        return f"{meaning} (Meta error {number})"
    if shown_title:
        return f"{meaning} (Meta error: {shown_title})"
    return meaning


def failure_note(*, what: str, reason: str, text: str | None) -> str:
    """The internal note: `{what} did not reach the customer on WhatsApp: {reason}.`, then what it said."""
    sentence = f"{what} did not reach the customer on WhatsApp: {reason}"
    if not sentence.endswith((".", "!", "?")):
        sentence += "."
    if text:
        clipped = text if len(text) <= _TEXT_CHARS else text[: _TEXT_CHARS - 1] + "…"
        sentence += "\nIt said:\n" + clipped
    return sentence


def _clean(value: str | None, limit: int) -> str:
    """`value` on one line, control characters as spaces, at most `limit` characters."""
    if not isinstance(value, str):
        return ""
    flat = " ".join(_CONTROLS.sub(" ", value[: 4 * limit]).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
