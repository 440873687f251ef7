"""Atlassian Document Format: the checks Jira applies to v3 bodies, and plain-text views.

v3 takes rich text only as an ADF document; v2 takes and returns strings (wiki
markup). The sandbox stores a body as sent and converts it for the other API
version, roughly as Jira does, so a v2 reader of a v3 comment still sees text.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

# Node types of the published ADF schema; anything else is rejected like Jira does.
NODE_TYPES = {
    "doc",
    "paragraph",
    "text",
    "hardBreak",
    "heading",
    "bulletList",
    "orderedList",
    "listItem",
    "codeBlock",
    "blockquote",
    "rule",
    "mention",
    "emoji",
    "inlineCard",
    "blockCard",
    "embedCard",
    "mediaSingle",
    "mediaGroup",
    "media",
    "mediaInline",
    "panel",
    "table",
    "tableRow",
    "tableHeader",
    "tableCell",
    "status",
    "date",
    "expand",
    "nestedExpand",
    "taskList",
    "taskItem",
    "decisionList",
    "decisionItem",
    "extension",
    "bodiedExtension",
    "inlineExtension",
    "placeholder",
    "layoutSection",
    "layoutColumn",
}
_BLOCKS = {
    "paragraph",
    "heading",
    "codeBlock",
    "blockquote",
    "listItem",
    "tableCell",
    "tableHeader",
    "panel",
    "taskItem",
    "decisionItem",
}
NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
MEDIA_TYPES = {"file", "link", "external"}


class MediaName(NamedTuple):
    """What Jira knows of the file behind a media node: v2 names the attachment in wiki markup."""

    filename: str
    mime_type: str


class MediaFile(NamedTuple):
    """One file for ``media_comment``: its Media Services id and what the node shows."""

    media_id: str
    filename: str
    width: int | None = None
    height: int | None = None


def adf_problem(doc: Any) -> str | None:
    """Return why ``doc`` is not an ADF document Jira would accept, or None if it is."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return NOT_ADF
    if not isinstance(doc.get("content"), list):
        return NOT_ADF
    return _node_problem(doc, top=True)


def _node_problem(node: Any, top: bool = False) -> str | None:
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return "INVALID_INPUT: every ADF node needs a string 'type'"
    kind = node["type"]
    if kind not in NODE_TYPES or (kind == "doc" and not top):
        return f"INVALID_INPUT: unknown ADF node type '{kind}'"
    if kind == "text":
        # The ADF schema gives text a minimum length of 1; Jira refuses empty text nodes.
        if not isinstance(node.get("text"), str) or node["text"] == "":
            return "INVALID_INPUT: ADF text nodes need non-empty 'text'"
        if "marks" in node and not isinstance(node["marks"], list):
            return "INVALID_INPUT: ADF 'marks' must be a list"
    if kind in ("media", "mediaSingle", "mediaGroup"):
        problem = _media_problem(node)
        if problem:
            return problem
    content = node.get("content")
    if content is not None:
        if not isinstance(content, list):
            return "INVALID_INPUT: ADF 'content' must be a list"
        for child in content:
            problem = _node_problem(child)
            if problem:
                return problem
    return None


def _media_problem(node: dict) -> str | None:
    """The ADF schema's rules for files: a media node names one (type, id, collection), a
    mediaSingle holds exactly one media node, a mediaGroup one or more."""
    kind = node["type"]
    content = node.get("content")
    if kind != "media":
        media = isinstance(content, list) and all(
            isinstance(c, dict) and c.get("type") == "media" for c in content
        )
        if not media or not content or (kind == "mediaSingle" and len(content) != 1):
            one = "exactly one" if kind == "mediaSingle" else "one or more"
            return f"INVALID_INPUT: '{kind}' must hold {one} 'media' node"
        return None
    attrs = node.get("attrs")
    if not isinstance(attrs, dict) or attrs.get("type") not in MEDIA_TYPES:
        return "INVALID_INPUT: 'media' needs attrs.type 'file', 'link' or 'external'"
    if attrs["type"] == "external":
        return None if isinstance(attrs.get("url"), str) else "INVALID_INPUT: external 'media' needs a url"
    if (
        not isinstance(attrs.get("id"), str)
        or not attrs["id"]
        or not isinstance(attrs.get("collection"), str)
    ):
        return "INVALID_INPUT: 'media' needs a string attrs.id and attrs.collection"
    for size in ("width", "height"):
        if size in attrs and (not isinstance(attrs[size], int | float) or isinstance(attrs[size], bool)):
            return f"INVALID_INPUT: 'media' attrs.{size} must be a number"
    if "alt" in attrs and not isinstance(attrs["alt"], str):
        return "INVALID_INPUT: 'media' attrs.alt must be a string"
    return None


def to_text(doc: Any, media: Mapping[str, MediaName] | None = None) -> str:
    """Flatten an ADF document to plain text: blocks separated by blank lines.

    A file (``media`` node) becomes Jira's wiki reference to it, ``!name!`` for an image and
    ``[^name]`` otherwise, named from ``media`` (Media Services id -> the issue's attachment),
    else from the node's ``alt``.
    """
    if isinstance(doc, str) or doc is None:
        return doc or ""
    blocks: list[str] = []
    _collect(doc, blocks, media or {})
    return "\n\n".join(b for b in blocks if b)


def _collect(node: dict, blocks: list[str], media: Mapping[str, MediaName]) -> None:
    children = node.get("content") or []
    if node.get("type") in _BLOCKS and not any(c.get("type") in _BLOCKS for c in children):
        blocks.append(_inline(node, media))
        return
    for child in children:
        if child.get("type") in _BLOCKS or child.get("content"):
            _collect(child, blocks, media)
        else:
            blocks.append(_inline(child, media))


def _wiki_file(attrs: dict, media: Mapping[str, MediaName]) -> str:
    known = media.get(str(attrs.get("id")))
    name = known.filename if known else str(attrs.get("alt") or attrs.get("id") or "")
    mime = known.mime_type if known else (mimetypes.guess_type(name)[0] or "")
    return f"!{name}!" if mime.startswith("image/") else f"[^{name}]"


def _inline(node: dict, media: Mapping[str, MediaName]) -> str:
    kind = node.get("type")
    if kind == "media":
        return _wiki_file(node.get("attrs") or {}, media)
    if kind == "text":
        return node.get("text", "")
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        return f"[~accountid:{node.get('attrs', {}).get('id', '')}]"
    if kind == "emoji":
        return node.get("attrs", {}).get("text") or node.get("attrs", {}).get("shortName", "")
    return "".join(_inline(c, media) for c in node.get("content") or [])


def from_text(text: str | None) -> dict | None:
    """Wrap plain text in an ADF document: blank lines split paragraphs, newlines become hard breaks."""
    if text is None:
        return None
    content = []
    for para in text.split("\n\n"):
        if not para:
            continue
        nodes: list[dict] = []
        for i, line in enumerate(para.split("\n")):
            if i:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


def media_comment(text: str, files: Sequence[MediaFile], collection: str) -> dict:
    """A comment as Jira's editor saves it when an agent adds files: the text, then one
    ``mediaSingle`` (one file) or a ``mediaGroup`` (several) naming each file's media id."""
    doc = from_text(text) or {"type": "doc", "version": 1, "content": []}
    nodes = []
    for f in files:
        attrs: dict[str, Any] = {
            "type": "file",
            "id": f.media_id,
            "collection": collection,
            "alt": f.filename,
        }
        if f.width and f.height:
            attrs.update(width=f.width, height=f.height)
        nodes.append({"type": "media", "attrs": attrs})
    if len(nodes) == 1:
        doc["content"].append({"type": "mediaSingle", "attrs": {"layout": "center"}, "content": nodes})
    elif nodes:
        doc["content"].append({"type": "mediaGroup", "content": nodes})
    return doc


def view(body: Any, version: int, media: Mapping[str, MediaName] | None = None) -> Any:
    """The body as the given API version shows it (v3: ADF, v2: string; ``media`` as for ``to_text``)."""
    if body is None:
        return None
    if version >= 3:
        return body if isinstance(body, dict) else from_text(str(body))
    return body if isinstance(body, str) else to_text(body, media)
