"""Atlassian Document Format: the checks Jira applies to v3 bodies, and plain-text views.

v3 takes rich text only as an ADF document; v2 takes and returns strings (wiki
markup). The sandbox stores a body as sent and converts it for the other API
version, roughly as Jira does, so a v2 reader of a v3 comment still sees text.
"""

from __future__ import annotations

from typing import Any

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
    content = node.get("content")
    if content is not None:
        if not isinstance(content, list):
            return "INVALID_INPUT: ADF 'content' must be a list"
        for child in content:
            problem = _node_problem(child)
            if problem:
                return problem
    return None


def to_text(doc: Any) -> str:
    """Flatten an ADF document to plain text: blocks separated by blank lines."""
    if isinstance(doc, str) or doc is None:
        return doc or ""
    blocks: list[str] = []
    _collect(doc, blocks)
    return "\n\n".join(b for b in blocks if b)


def _collect(node: dict, blocks: list[str]) -> None:
    children = node.get("content") or []
    if node.get("type") in _BLOCKS and not any(c.get("type") in _BLOCKS for c in children):
        blocks.append(_inline(node))
        return
    for child in children:
        if child.get("type") in _BLOCKS or child.get("content"):
            _collect(child, blocks)
        else:
            blocks.append(_inline(child))


def _inline(node: dict) -> str:
    kind = node.get("type")
    if kind == "text":
        return node.get("text", "")
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        return f"[~accountid:{node.get('attrs', {}).get('id', '')}]"
    if kind == "emoji":
        return node.get("attrs", {}).get("text") or node.get("attrs", {}).get("shortName", "")
    return "".join(_inline(c) for c in node.get("content") or [])


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


def view(body: Any, version: int) -> Any:
    """The body as the given API version shows it (v3: ADF, v2: string)."""
    if body is None:
        return None
    if version >= 3:
        return body if isinstance(body, dict) else from_text(str(body))
    return body if isinstance(body, str) else to_text(body)
