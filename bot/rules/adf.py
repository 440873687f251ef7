"""Plain text <-> Atlassian Document Format (Jira Cloud, REST API v3).

Customer text goes into ADF only as `text` nodes without marks, separated by `hardBreak`s and
paragraphs. Nothing is parsed out of it, so `@name`, `[link|url]`, `:smile:` or `{code}` stay
literal characters: user text can never become a mention, link, emoji or macro.

Reading back (`text_from_doc`) is for the poller: agents' comments may contain any node, and a
comment we cannot fully understand must still yield its words rather than an exception.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

# ADF (and the JSON behind it) rejects C0 controls other than tab/newline, and lone surrogates
# cannot be encoded as UTF-8 at all; DEL and C1 controls are invisible junk in a comment.
_REJECTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# A blank line (possibly holding stray spaces) separates paragraphs; runs of them count once.
# Linear: only a newline starts a match, and `*+` never gives back the blanks it took.
_BLANK_LINES = re.compile(r"\n(?:[ \t]*+\n)+")
_MAX_DEPTH = 64


def clean_text(text: str) -> str:
    """Normalise line ends and drop characters ADF rejects."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _REJECTED.sub("", text)


def _paragraph(lines: list[str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if i:
            content.append({"type": "hardBreak"})
        # ADF forbids empty text nodes; an empty line inside a block is just the break.
        if line:
            content.append({"type": "text", "text": line})
    return {"type": "paragraph", "content": content}


def doc_from_text(text: str) -> dict[str, Any]:
    """An ADF document holding `text` verbatim: one paragraph per blank-line-separated block.

    Empty text gives one empty paragraph (ADF allows a paragraph without content, but not an
    empty text node).
    """
    cleaned = clean_text(text if isinstance(text, str) else "")
    paragraphs = []
    for block in _BLANK_LINES.split(cleaned):
        lines = block.split("\n")
        # Whitespace-only lines at a block's edges are leftovers of the blank-line separator.
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            paragraphs.append(_paragraph(lines))
    if not paragraphs:
        paragraphs = [{"type": "paragraph", "content": []}]
    return {"type": "doc", "version": 1, "content": paragraphs}


# --- reading ADF back -------------------------------------------------------------------------

_BLOCK_JOIN = "\n\n"


def _attrs(node: dict[str, Any]) -> dict[str, Any]:
    attrs = node.get("attrs")
    return attrs if isinstance(attrs, dict) else {}


def _attr_str(node: dict[str, Any], key: str) -> str:
    value = _attrs(node).get(key)
    return value if isinstance(value, str) else ""


def _children(node: dict[str, Any]) -> list[Any]:
    content = node.get("content")
    return content if isinstance(content, list) else []


def _inline(node: dict[str, Any], depth: int) -> str:
    return "".join(_node(child, depth + 1) for child in _children(node))


def _blocks(node: dict[str, Any], depth: int) -> str:
    parts = (_node(child, depth + 1) for child in _children(node))
    return _BLOCK_JOIN.join(p for p in parts if p)


def _mention(node: dict[str, Any]) -> str:
    label = _attr_str(node, "text") or _attr_str(node, "id")
    if not label:
        return "@"
    return label if label.startswith("@") else "@" + label


def _date(node: dict[str, Any]) -> str:
    stamp = _attrs(node).get("timestamp")
    if stamp is None:
        return ""
    try:
        millis = int(stamp)  # ADF stores epoch milliseconds as a string
        return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(stamp) if isinstance(stamp, str) else ""


def _list(node: dict[str, Any], depth: int, ordered: bool) -> str:
    lines = []
    start = _attrs(node).get("order")
    number = start if isinstance(start, int) and not isinstance(start, bool) else 1
    for item in _children(node):
        marker = f"{number}. " if ordered else "- "
        number += 1
        parts = [_node(c, depth + 2) for c in _children(item)] if isinstance(item, dict) else []
        body = "\n".join(p for p in parts if p)
        # Continuation lines (nested lists, second paragraphs) indent under the marker.
        lines.append(marker + body.replace("\n", "\n  "))
    return "\n".join(lines)


def _table(node: dict[str, Any], depth: int) -> str:
    rows = []
    for row in _children(node):
        if isinstance(row, dict):
            cells = [_blocks(c, depth + 2).replace("\n", " ") for c in _children(row)]
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _node(node: object, depth: int) -> str:
    if depth > _MAX_DEPTH or not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        text = node.get("text")
        return text if isinstance(text, str) else ""
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        return _mention(node)
    if kind == "emoji":
        return _attr_str(node, "text") or _attr_str(node, "shortName")
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return _attr_str(node, "url")
    if kind == "status":
        return _attr_str(node, "text")
    if kind == "date":
        return _date(node)
    if kind in ("paragraph", "heading"):
        return _inline(node, depth)
    if kind == "codeBlock":
        return "```\n" + _inline(node, depth) + "\n```"
    if kind == "blockquote":
        return "\n".join("> " + line for line in _blocks(node, depth).split("\n"))
    if kind == "rule":
        return "---"
    if kind == "bulletList":
        return _list(node, depth, ordered=False)
    if kind == "orderedList":
        return _list(node, depth, ordered=True)
    if kind == "table":
        return _table(node, depth)
    if kind in ("media", "mediaInline"):
        # Files go to the customer as files (bot.rules.agent_files); listing their names in the
        # text would send each one twice, once as a bare filename.
        return ""
    # doc, listItem, panel, expand, layouts, and whatever Atlassian adds next: their children.
    children = _children(node)
    if children:
        inline = all(
            isinstance(c, dict) and isinstance(c.get("type"), str) and c["type"] in _INLINE_TYPES
            for c in children
        )
        return _inline(node, depth) if inline else _blocks(node, depth)
    text = node.get("text")
    return text if isinstance(text, str) else ""


_INLINE_TYPES = frozenset(
    {"text", "hardBreak", "mention", "emoji", "inlineCard", "status", "date", "mediaInline"}
)


def text_from_doc(doc: object) -> str:
    """Plain text of an ADF document (or any node); tolerant of any shape, never raises."""
    if isinstance(doc, str):
        return doc.strip()  # API v2 and Server/DC hand back strings
    text = _node(doc, 0)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
