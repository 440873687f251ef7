"""Which Jira comments the poller acts on, and how.

`comment_view` flattens the comment JSON Jira hands back (API v3 with an ADF body, API v2 with a
wiki string; inline in search results or from `/issue/{key}/comment?expand=properties`) into one
small record. `route_comment` then decides what the poll job does with it.

The `wajira` comment property (`comment_property.py`), never the text, says which comments the bot
wrote: anyone can type `[AI] ...` into a comment, but only the bot sets the property.

Safety order: a person's command (`/ai off`, …; `commands.py`) is recognised first, public or
internal, and never leaves Jira; then a comment Jira marks as internal is IGNOREd before anything
else is looked at. Internal comments never reach WhatsApp, and whatever they say, they never
start an AI turn.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bot.rules.adf import text_from_doc
from bot.rules.agent_files import FileRef, file_refs, strip_wiki_files
from bot.rules.commands import is_command_text
from bot.rules.comment_property import (
    JSM_PUBLIC_KEY,
    KIND_AI,
    KIND_CUSTOMER,
    KIND_ECHO,
    properties_map,
    read_comment,
)
from bot.rules.wiki import unescape_wiki

# Below this, a number is epoch seconds; above it, epoch milliseconds (year 5138 in seconds).
_MS_THRESHOLD = 10**11


@dataclass(frozen=True)
class CommentView:
    """One Jira comment, as the poller needs it."""

    id: str
    issue_key: str
    author_id: str | None
    """Cloud `accountId`; Server/DC `key` or `name`."""
    author_name: str
    created: float
    """Epoch seconds; 0.0 when Jira sent no readable time."""
    text: str
    kind: str | None
    """Our `wajira` property's kind (`comment_property.KINDS`, or unknown); None when not ours."""
    wamid: str | None
    internal: bool
    history: bool = False
    """Our property says `"history": true`: imported chat history, long past."""
    files: tuple[FileRef, ...] = ()
    """The files a person's comment shows (ADF media nodes, or wiki `!name!` / `[^name]`)."""
    author_zone: str | None = None
    """The author's time zone as Jira gives it (`author.timeZone`), e.g. "Europe/Berlin"."""
    handover: bool = False
    """Our AI reply that handed the conversation over to people."""


class Route(enum.Enum):
    AI_TURN = "ai_turn"
    """A customer message we relayed: the AI may answer it."""
    TO_CUSTOMER = "to_customer"
    """An agent's public comment: send it to the customer on WhatsApp."""
    ECHO = "echo"
    """What the team sent from the WhatsApp Business App, mirrored by us: already with the
    customer, never sent again, but a human reply (the AI hands the ticket over)."""
    COMMAND = "command"
    """A person's `/…` command to the bot (public or internal): answered by an internal note,
    never sent to WhatsApp, never part of the AI's context."""
    HANDOVER = "handover"
    """Our AI reply that handed the conversation to people: the AI stays silent on the ticket
    as after an agent's reply (already sent; never sent again)."""
    IGNORE = "ignore"


def comment_view(issue_key: str, raw: dict[str, Any]) -> CommentView:
    """Flatten one comment of any shape Jira sends; never raises on odd or missing fields."""
    raw = raw if isinstance(raw, dict) else {}
    props = properties_map(raw.get("properties"))
    mark = read_comment(props)
    author = _dict(raw.get("author"))
    body = raw.get("body")
    return CommentView(
        id=_str(raw.get("id")),
        issue_key=issue_key,
        author_id=_author_id(author),
        author_name=_str(author.get("displayName")) or _str(author.get("name")),
        created=parse_jira_time(raw.get("created")),
        text=_body_text(body, ours=mark is not None),
        kind=mark.kind if mark else None,
        wamid=mark.wamid if mark else None,
        internal=_is_internal(raw, props),
        history=mark.history if mark else False,
        # Our own comments never show files: the customer's media become attachments, not nodes.
        files=() if mark is not None else tuple(file_refs(body)),
        author_zone=_str(author.get("timeZone")) or None,
        handover=mark.handover if mark else False,
    )


def route_comment(c: CommentView, *, bot_account_id: str | None) -> Route:
    """What the poll job does with a comment it has not handled before."""
    if is_command(c, bot_account_id=bot_account_id):
        return Route.COMMAND
    if c.internal:
        return Route.IGNORE
    if c.history:
        return Route.IGNORE  # imported history: neither a turn to answer nor anyone's reply now
    if c.kind == KIND_CUSTOMER:
        return Route.AI_TURN
    if c.kind == KIND_ECHO:
        return Route.ECHO
    if c.kind == KIND_AI and c.handover:
        return Route.HANDOVER
    if c.kind is not None:
        return Route.IGNORE  # our AI reply or note: already where it belongs
    if bot_account_id and c.author_id == bot_account_id:
        # Written with the bot's token but without our property (by hand, or a foreign script):
        # we cannot tell what it is, and relaying the bot's own words back would loop.
        return Route.IGNORE
    if not c.text.strip() and not c.files:
        # An emptied comment: WhatsApp rejects an empty text message.
        return Route.IGNORE
    return Route.TO_CUSTOMER


def is_command(c: CommentView, *, bot_account_id: str | None) -> bool:
    """A person's comment (not ours, not the bot account's) whose first line starts with `/`.
    A customer's `/ai off` arrives as our `[WhatsApp] …` comment, so it is only text."""
    if c.kind is not None or c.history:
        return False
    if bot_account_id and c.author_id == bot_account_id:
        return False
    return is_command_text(c.text)


def parse_jira_time(value: object) -> float:
    """Epoch seconds from Jira's `2026-11-21T12:03:49.123+0000` (or `Z`, `+00:00`); 0.0 if unreadable."""
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, (int, float)):
        return float(value) / 1000 if value > _MS_THRESHOLD else float(value)
    if not isinstance(value, str) or not value.strip():
        return 0.0
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return 0.0
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)  # Jira always sends a zone; UTC is the sane guess
    return stamp.timestamp()


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _author_id(author: dict[str, Any]) -> str | None:
    for key in ("accountId", "key", "name"):
        value = author.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _body_text(body: object, *, ours: bool) -> str:
    if isinstance(body, dict):
        return text_from_doc(body)
    if isinstance(body, str):
        # On Server/DC the adapter escapes our own text as wiki markup; undo exactly that, so
        # `[WhatsApp] Ana: ...` reads back as written. Agents' wiki markup stays as they typed it,
        # less the file references (`!name!`, `[^name]`): the files themselves go as files.
        return (unescape_wiki(body) if ours else strip_wiki_files(body)).strip()
    return ""


def _is_internal(raw: dict[str, Any], props: dict[str, Any]) -> bool:
    visibility = raw.get("visibility")
    if visibility:
        return True  # restricted to a group or role: not for the customer's eyes
    if _is_false(raw.get("jsdPublic")) or _is_false(raw.get("public")):
        return True
    jsm = props.get(JSM_PUBLIC_KEY)
    if isinstance(jsm, dict) and "internal" in jsm:
        # Anything but an explicit "not internal" counts as internal: leaking an agents-only
        # remark to a customer is worse than holding back a public one.
        return not _is_false(jsm["internal"])
    return False


def _is_false(value: object) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def _str(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""
