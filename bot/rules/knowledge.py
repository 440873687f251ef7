"""Knowledge files: a Markdown file cut into sections by heading, the unit the AI's search ranks.

A section is what sits under one heading, titled with the path of headings above it
("Returns › Refunds"), so a short section still says what it is about. Sub-headings start
sections of their own. Text before the first heading is titled with the file's stem.

Only what a knowledge file needs of CommonMark is read: ATX headings (`# Title`, up to three
spaces before, closing hashes dropped), Setext headings (a paragraph underlined with `===` or
`---`), and fenced code blocks (``` or ~~~), whose lines are never headings. One pass over the
lines, no regex that can backtrack: an operator's 1 MB file is split in linear time, and odd
input gives odd sections, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

TITLE_SEPARATOR = " › "
MAX_HEADING_CHARS = 200
"""One heading's share of a title; a longer heading is a paragraph someone forgot to unmark."""


@dataclass(frozen=True)
class Section:
    """One heading's text in one knowledge file."""

    source: str
    """The file as configured, e.g. "kb/returns.md"."""
    title: str
    """The heading path, e.g. "Returns › Refunds"; the file's stem for text before any heading."""
    text: str
    """The body under the heading, stripped; sub-headings' bodies are sections of their own."""


def split_sections(markdown: str, source: str, *, max_chars: int = 2000) -> list[Section]:
    """The non-empty sections of one Markdown file, in file order.

    Args:
        markdown: the file's text.
        source: the file as configured; kept on every section, its stem titles the preamble.
        max_chars: a longer section is cut at paragraph boundaries (lines, then blanks, as a
            last resort) into parts titled "Title", "Title (2)", "Title (3)"…

    Returns:
        The sections; empty ones (a heading directly followed by a sub-heading) are left out.
    """
    if not isinstance(markdown, str) or not markdown:
        return []
    limit = max(1, max_chars)
    sections: list[Section] = []
    for title, blocks in _raw_sections(markdown.removeprefix("\ufeff"), _stem(source)):
        for n, text in enumerate(_parts(blocks, limit), start=1):
            sections.append(Section(source, title if n == 1 else f"{title} ({n})", text))
    return sections


def _stem(source: str) -> str:
    name = source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    stem, dot, _ = name.rpartition(".")
    return (stem if dot and stem else name) or "knowledge"


# -- reading the lines -----------------------------------------------------------------------------


class _Reader:
    """Walks the lines once, keeping the heading path and the current section's paragraphs."""

    def __init__(self, stem: str) -> None:
        self.stem = stem
        self.path: list[tuple[int, str]] = []  # (level, heading text), outermost first
        self.title = stem
        self.blocks: list[list[str]] = []  # paragraphs (and code blocks) of the current section
        self.paragraph: list[str] | None = None  # the open paragraph, a Setext heading's candidate
        self.fence: tuple[str, int] | None = None  # (character, length) of the open fence
        self.done: list[tuple[str, list[str]]] = []

    def line(self, line: str) -> None:
        if self.fence is not None:
            self._in_fence(line)
        elif not line.strip():
            self.paragraph = None
        elif (fence := _fence_opening(line)) is not None:
            self.fence = fence
            self._start_block(line)
            self.paragraph = None  # a code block is no paragraph: `---` after it is a rule
        elif (heading := _atx_heading(line)) is not None:
            self._heading(*heading)
        elif level := _setext_level(line):
            self._underline(line, level)
        elif self.paragraph is not None:
            self.paragraph.append(line)
        else:
            self._start_block(line)

    def finish(self) -> list[tuple[str, list[str]]]:
        self._close_section()
        return self.done

    def _in_fence(self, line: str) -> None:
        char, length = self.fence or ("`", 3)
        self.blocks[-1].append(line)
        if _closes_fence(line, char, length):
            self.fence = None

    def _underline(self, line: str, level: int) -> None:
        if self.paragraph is not None and _may_be_title(self.paragraph):
            text = " ".join(part.strip() for part in self.paragraph)
            self.blocks.pop()  # the paragraph was the heading's text, not body
            self._heading(level, text)
        elif self.paragraph is not None:
            self.paragraph.append(line)
        else:
            self._start_block(line)
            self.paragraph = None  # a rule (`---`) on its own: the next line starts afresh

    def _start_block(self, line: str) -> None:
        self.paragraph = [line]
        self.blocks.append(self.paragraph)

    def _heading(self, level: int, text: str) -> None:
        self._close_section()
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, _clean_heading(text)))
        named = [text for _, text in self.path if text]
        self.title = TITLE_SEPARATOR.join(named) if named else self.stem

    def _close_section(self) -> None:
        if self.blocks:
            self.done.append((self.title, ["\n".join(block) for block in self.blocks]))
        self.blocks = []
        self.paragraph = None


def _raw_sections(markdown: str, stem: str) -> list[tuple[str, list[str]]]:
    reader = _Reader(stem)
    for line in markdown.splitlines():
        reader.line(line)
    return reader.finish()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _fence_opening(line: str) -> tuple[str, int] | None:
    if _indent(line) > 3:
        return None
    rest = line.lstrip(" ")
    char = rest[:1]
    if char not in ("`", "~"):
        return None
    length = len(rest) - len(rest.lstrip(char))
    if length < 3:
        return None
    if char == "`" and "`" in rest[length:]:
        return None  # CommonMark: a backtick fence's info string holds no backtick (inline code)
    return char, length


def _closes_fence(line: str, char: str, length: int) -> bool:
    if _indent(line) > 3:
        return False
    rest = line.strip(" \t")
    return len(rest) >= length and not rest.strip(char)


def _atx_heading(line: str) -> tuple[int, str] | None:
    if _indent(line) > 3:
        return None
    rest = line.lstrip(" ")
    level = len(rest) - len(rest.lstrip("#"))
    if not 1 <= level <= 6:
        return None
    content = rest[level:]
    if content and content[0] not in " \t":
        return None  # `#hashtag` is text
    content = content.strip(" \t")
    unclosed = content.rstrip("#")
    if not unclosed:
        return level, ""  # `## ##`: an empty heading
    if len(unclosed) < len(content) and unclosed[-1] not in " \t":
        return level, content  # `# C#`: the hashes belong to the text
    return level, unclosed.rstrip(" \t")


def _setext_level(line: str) -> int:
    if _indent(line) > 3:
        return 0
    rest = line.strip(" \t")
    if not rest or rest.strip(rest[0]):
        return 0
    return {"=": 1, "-": 2}.get(rest[0], 0)


def _may_be_title(paragraph: list[str]) -> bool:
    # `- item` over `---` is a list and a rule, `> quote` a quote: not headings.
    first = paragraph[0].lstrip(" ")
    if first.startswith((">", "- ", "* ", "+ ")) or first in ("-", "*", "+"):
        return False
    digits = len(first) - len(first.lstrip("0123456789"))
    return not (0 < digits <= 9 and first[digits : digits + 2] in (". ", ") "))


def _clean_heading(text: str) -> str:
    return " ".join(text.split())[:MAX_HEADING_CHARS].strip()


# -- cutting long sections -------------------------------------------------------------------------


def _parts(blocks: list[str], limit: int) -> list[str]:
    """Pack the paragraphs into parts of at most `limit` characters each."""
    parts: list[str] = []
    current = ""
    for raw in blocks:
        block = raw.strip()
        if not block:
            continue
        if current and len(current) + 2 + len(block) <= limit:
            current = f"{current}\n\n{block}"
            continue
        if current:
            parts.append(current)
        pieces = _cut(block, limit) if len(block) > limit else [block]
        parts.extend(pieces[:-1])
        current = pieces[-1]
    if current:
        parts.append(current)
    return parts


def _cut(text: str, limit: int) -> list[str]:
    """A paragraph longer than `limit`, cut at line ends, else blanks, else anywhere.

    Each cut is at the last break inside the window, so the next window starts past any break
    of this one: every character is looked at a bounded number of times.
    """
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        end = start + limit
        cut = text.rfind("\n", start + 1, end + 1)
        if cut <= start:
            cut = max(text.rfind(" ", start + 1, end + 1), text.rfind("\t", start + 1, end + 1))
        if cut <= start:
            cut = end
        piece = text[start:cut].strip()
        if piece:
            pieces.append(piece)
        start = cut
    rest = text[start:].strip()
    if rest:
        pieces.append(rest)
    return pieces or [text[:limit]]
