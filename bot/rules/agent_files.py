"""The files an agent's comment shows, and which of the issue's attachments they are. Pure.

Jira Cloud (ADF): a file is a `media` node (in `mediaSingle` or `mediaGroup`; `mediaInline` inline)
whose `id` is the Media Services file id, not the attachment id. The attachment's content URL
redirects to `…/file/{media id}/binary`: the caller resolves those redirects into `media_ids`, and
`match_files` pairs them up. The node's `alt` (usually the filename) is the fallback.

Server/Data Center (wiki markup): `!name.png!`, `!name.png|thumbnail!` and `[^name.pdf]` name an
attachment by its filename.

Only files a comment shows are ever sent: an attachment added without a comment is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

_MAX_DEPTH = 64
_MEDIA_NODES = frozenset({"media", "mediaInline"})
_ATTACHMENT_TYPES = frozenset({"file", None})  # "link" and "external" name no attachment of this issue

# `!name!` or `!name|options!` (an image or other embedded attachment), and `[^name]` (a link to
# one). Each match is bounded (filenames are at most 255 characters) and possessive, so a comment
# of any shape is scanned in linear time: no start position can make the engine walk the rest of
# the text, and nothing is given back to retry. A `\!` is an escaped, literal exclamation mark.
_WIKI_FILE = re.compile(
    r"(?<!\\)!(?P<image>[^!\s|][^!\n|]{0,254}+)(?:\|[^!\n]{0,500}+)?!"
    r"|(?<!\\)\[\^(?P<link>[^\]\n|]{1,255}+)\]"
)


@dataclass(frozen=True)
class FileRef:
    """One file a comment shows."""

    media_id: str | None
    """The ADF media node's Media Services id; None for wiki markup."""
    name: str | None
    """The node's `alt` (usually the filename), or the wiki filename."""


def file_refs(body: object) -> list[FileRef]:
    """The files in a comment body (ADF dict or wiki string), in document order, each once.

    Tolerates any shape and never raises; nesting deeper than 64 levels is not read.
    """
    refs: list[FileRef] = []
    if isinstance(body, str):
        for match in _WIKI_FILE.finditer(body):
            name = _wiki_name(match)
            if name is not None:
                refs.append(FileRef(None, name))
    else:
        _collect(body, 0, refs)
    return list(dict.fromkeys(refs))


def strip_wiki_files(text: str) -> str:
    """`text` without the wiki file references `file_refs` finds (the files go as files)."""
    if not isinstance(text, str):
        return ""
    return _WIKI_FILE.sub(lambda m: "" if _wiki_name(m) is not None else m.group(0), text)


def _wiki_name(match: re.Match[str]) -> str | None:
    """The attachment's filename, or None for an external image or text that only looks like one."""
    name = match.group("image")
    if name is None:
        name = match.group("link").strip()
    elif name != name.rstrip():
        return None  # "Great !news !" is punctuation, not a file
    if not name or "://" in name:
        return None  # !https://host/x.png! embeds a web image, not an attachment
    return name


def _collect(node: object, depth: int, refs: list[FileRef]) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, list):
        for item in node:
            _collect(item, depth + 1, refs)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") in _MEDIA_NODES:
        ref = _media_ref(node)
        if ref is not None:
            refs.append(ref)
    content = node.get("content")
    if isinstance(content, list):
        for child in content:
            _collect(child, depth + 1, refs)


def _media_ref(node: dict[str, Any]) -> FileRef | None:
    attrs = node.get("attrs")
    if not isinstance(attrs, dict) or attrs.get("type") not in _ATTACHMENT_TYPES:
        return None
    media_id = _text(attrs.get("id"))
    name = _text(attrs.get("alt"))
    if media_id is None and name is None:
        return None
    return FileRef(media_id, name)


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


# --- matching refs to attachments ---------------------------------------------------------------


@dataclass(frozen=True)
class MatchedFiles:
    attachments: list[dict[str, Any]]
    """Jira attachment objects (`id`, `filename`, `mimeType`, `size`, …) in ref order, each once."""
    unmatched: list[FileRef]
    """Refs no attachment of the issue answers to."""


def needs_media_ids(refs: list[FileRef]) -> bool:
    """Whether any ref names its file by media id, so the caller must resolve the redirects."""
    return any(ref.media_id for ref in refs)


def match_files(
    refs: list[FileRef], attachments: list[dict[str, Any]], media_ids: Mapping[str, str]
) -> MatchedFiles:
    """Pair each ref with the issue's attachment it shows.

    A ref with a media id takes the attachment whose resolved media id (`media_ids`: attachment id
    → Media Services id) is the same. Failing that, the filename decides, among attachments whose
    media id is unknown (one with a known, different media id is another file): the newest by
    `created`, then the highest id, when several share the name. An attachment two refs show
    is sent once.
    """
    usable = [a for a in attachments if isinstance(a, dict) and _attachment_id(a) is not None]
    by_media_id: dict[str, dict[str, Any]] = {}
    unresolved: list[dict[str, Any]] = []
    for attachment in usable:
        media_id = media_ids.get(_attachment_id(attachment) or "")
        if isinstance(media_id, str) and media_id:
            by_media_id.setdefault(media_id, attachment)
        else:
            unresolved.append(attachment)

    matched: list[dict[str, Any]] = []
    taken: set[str] = set()
    unmatched: list[FileRef] = []
    for ref in refs:
        found = by_media_id.get(ref.media_id or "") or _newest_named(ref.name, unresolved)
        if found is None:
            unmatched.append(ref)
            continue
        found_id = _attachment_id(found) or ""
        if found_id not in taken:
            taken.add(found_id)
            matched.append(found)
    return MatchedFiles(attachments=matched, unmatched=unmatched)


def _newest_named(name: str | None, attachments: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not name:
        return None
    named = [a for a in attachments if a.get("filename") == name]
    return max(named, key=_age_order, default=None)


def _age_order(attachment: dict[str, Any]) -> tuple[float, int, str]:
    attachment_id = _attachment_id(attachment) or ""
    number = int(attachment_id) if attachment_id.isdecimal() and len(attachment_id) < 20 else -1
    return (_created(attachment.get("created")), number, attachment_id)


def _created(value: object) -> float:
    """Epoch seconds from Jira's `2026-11-21T12:03:49.123+0000`; unreadable counts as oldest."""
    if not isinstance(value, str):
        return float("-inf")
    try:
        stamp = datetime.fromisoformat(value.strip())
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp.timestamp()
    except (ValueError, OverflowError):  # not a time, or one before year 1 in UTC
        return float("-inf")


def _attachment_id(attachment: dict[str, Any]) -> str | None:
    value = attachment.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None
