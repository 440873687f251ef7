"""Markdown (from agents and from an LLM) rewritten in WhatsApp's formatting syntax.

WhatsApp formatting (what its apps render): `*bold*`, `_italic_`, `~strike~`, ```` ```mono``` ````
(also over several lines), and since the 2023-24 rollout `` `inline code` ``, `- `/`* ` bullets,
`1. ` numbered lists and `> ` quotes. So inline code keeps its single backticks (that is now
WhatsApp's own syntax for it); bullets still become `• `, which reads as a bullet on every client,
old ones included, and cannot be mistaken for the start of `*bold*`.
"""

from __future__ import annotations

import re

# The text comes from agents and from an LLM, and the poll job renders it while webhook threads
# wait for the GIL: every step here is linear in the length of the text. Regexes are anchored or
# possessive (`*+`, `++`) so no quantifier can backtrack over characters another one also takes;
# headings and inline markup are read by plain string code (a lazy `(.*?)` before an optional
# `[ \t]+#+` was quadratic: "# a" + 16,000 spaces + "b" took seconds).
# In `_FENCE` the lazy `.*?` is linear too: with `\Z` as the other way out an opened fence always
# matches, so each character of the code is passed once, trying a closer only at a line start.
_FENCE = re.compile(
    r"^[ \t]{0,3}(?P<fence>`{3,}+|~{3,}+)[^\n]*+\n(?P<code>.*?)(?:^[ \t]{0,3}(?P=fence)[ \t]*+$|\Z)",
    re.MULTILINE | re.DOTALL,
)
_TICKS = re.compile(r"`++")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*+\1){2,}+[ \t]*+$")
_BULLET = re.compile(r"^(?P<indent>[ \t]*+)[*+-][ \t]++")
RULE_TEXT = "\u2014\u2014\u2014"


def markdown_to_whatsapp(md: str) -> str:
    """Markdown (as an LLM writes it) rewritten in WhatsApp's formatting syntax.

    Code is copied untouched: fenced blocks become ```` ``` ```` blocks (language tag dropped, as
    WhatsApp would show it as text), inline code keeps its backticks.
    """
    out: list[str] = []
    pos = 0
    text = (md or "").replace("\r\n", "\n").replace("\r", "\n")
    for m in _FENCE.finditer(text):
        out.append(_prose(text[pos : m.start()]))
        out.append("```\n" + m.group("code").rstrip("\n") + "\n```")
        pos = m.end()
    out.append(_prose(text[pos:]))
    return "".join(out)


def _prose(chunk: str) -> str:
    return "\n".join(_line(line) for line in chunk.split("\n"))


def _line(line: str) -> str:
    if _RULE.match(line):
        return RULE_TEXT
    title = _heading_title(line)
    if title is not None:
        title = _unwrap_strong(title.strip()).strip()
        return f"*{_code_aware(title)}*" if title else ""
    bullet = _BULLET.match(line)
    if bullet:
        return bullet.group("indent") + "\u2022 " + _code_aware(line[bullet.end() :])
    return _code_aware(line)


def _heading_title(line: str) -> str | None:
    """The text of an ATX heading (`## Title ##`), or None when `line` is not one.

    Up to three spaces, one to six `#`, then nothing or a space or tab; a closing run of `#`
    counts only after a space or tab (`# C#` keeps its `#`).
    """
    body = line.lstrip(" ")
    if len(line) - len(body) > 3:
        return None
    rest = body.lstrip("#")
    if not 1 <= len(body) - len(rest) <= 6:
        return None
    if not rest:
        return ""
    if rest[0] not in " \t":
        return None
    title = rest.strip(" \t")
    before_closing = title.rstrip("#")
    if before_closing != title and before_closing[-1:] in (" ", "\t"):
        return before_closing.rstrip(" \t")
    return title


def _unwrap_strong(title: str) -> str:
    # "## **Bold title**" is already bold once it becomes a WhatsApp heading.
    for mark in ("**", "__"):
        if len(title) >= 4 and title.startswith(mark) and title.endswith(mark):
            return title[2:-2]
    return title


def _code_aware(line: str) -> str:
    # Inline code is cut out first so nothing inside backticks is ever reformatted. As in
    # CommonMark, a run of n backticks opens a span that the next run of exactly n closes; runs
    # left unpaired are plain text. Pairing through a precomputed "next run of the same length"
    # keeps this linear where a backreferencing regex was not.
    if "`" not in line:
        return _inline(line)
    runs = [(m.start(), m.end()) for m in _TICKS.finditer(line)]
    next_same: list[int | None] = [None] * len(runs)
    latest: dict[int, int] = {}
    for i in range(len(runs) - 1, -1, -1):
        width = runs[i][1] - runs[i][0]
        next_same[i] = latest.get(width)
        latest[width] = i
    out: list[str] = []
    pos = i = 0
    while i < len(runs):
        j = next_same[i]
        if j is None:
            i += 1
            continue
        out.append(_inline(line[pos : runs[i][0]]))
        code = line[runs[i][1] : runs[j][0]]
        # WhatsApp's inline code cannot hold a backtick; its ``` monospace can.
        out.append(f"```{code}```" if "`" in code else f"`{code}`")
        pos, i = runs[j][1], j + 1
    out.append(_inline(line[pos:]))
    return "".join(out)


# Inline markup is read by a scanner, not by one alternation regex: that regex looked up to a
# thousand characters ahead for the closer of every `**`, `__`, `~~` or `[`, so a line of
# unclosed openers cost a thousand steps per character. Here each "where is the next closer"
# question is one search whose answer is remembered (`_Next`), so every stretch of text is read
# once per kind of closer. The rules (the former regex's, kept exactly), first match wins:
#   \x            x in _ESCAPABLE: the character itself
#   [label](url)  also `![label](url)` and `[label](url "title")`: a label of at most 1000
#                 characters without `]`, a url of 1-2048 characters without `)` or whitespace
#   <https://…>   a url of 1-2048 characters without `>` or whitespace
#   https://…     up to whitespace, `<` or `>`, copied as is (`_` and `*` belong to the address)
#   ***x*** **x** __x__ ~~x~~   x begins and ends with a non-space and stays on one line; the
#                 nearest closer wins; `__` not inside a word
#   *x* _x_       x begins and ends with neither a space nor the marker; `_` not inside a word
_ESCAPABLE = frozenset("\\`*_{}[]()#+-.!~>|")
_LABEL_MAX = 1000
_URL_MAX = 2048
_SPAN_MAX = 1002  # longer emphasis is not emphasis, it is a runaway marker
_START = re.compile(r"[\\\[<*~]|!\[|(?<!\w)_|https?://")
_SPANS = {  # marker → (its closer, WhatsApp's opening and closing marks)
    "***": (re.compile(r"(?<=\S)\*\*\*"), "*_", "_*"),
    "**": (re.compile(r"(?<=\S)\*\*"), "*", "*"),
    "__": (re.compile(r"(?<=\S)__(?!\w)"), "*", "*"),
    "~~": (re.compile(r"(?<=\S)~~"), "~", "~"),
}
_SINGLES = {"*": re.compile(r"\*"), "_": re.compile(r"_")}
_NEWLINE = re.compile(r"\n")
_LABEL_END = re.compile(r"[\]\n]")
_URL_END = re.compile(r"[)\s]")
_AUTOLINK_END = re.compile(r"[>\s]")
_BARE_URL_END = re.compile(r"[\s<>]")
_NOT_BLANK = re.compile(r"[^ \t]")
_TITLE_END = re.compile(r"[\"\n]")


def _inline(text: str) -> str:
    return _InlineScanner(text).render() if _START.search(text) else text


class _Next:
    """The start of `text`'s first match of `pattern` at or after a position; len(text) if none.

    Every position between the last question and its answer has that same answer, so questions
    asked in increasing order read each character once.
    """

    def __init__(self, pattern: re.Pattern[str], text: str) -> None:
        self._pattern, self._text = pattern, text
        self._asked = self._found = -1

    def __call__(self, pos: int) -> int:
        if not self._asked <= pos <= self._found:
            m = self._pattern.search(self._text, pos)
            self._asked, self._found = pos, m.start() if m else len(self._text)
        return self._found


class _InlineScanner:
    """One pass over one line; candidates come in increasing order, which `_Next` relies on."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._finders: dict[re.Pattern[str], _Next] = {}

    def render(self) -> str:
        text, done = self.text, 0
        out: list[str] = []
        candidate = _START.search(text)
        while candidate:
            at = candidate.start()
            found = self._match(at)
            if found is None:
                candidate = _START.search(text, at + 1)
                continue
            end, replacement = found
            out += (text[done:at], replacement)
            done = end
            candidate = _START.search(text, end)
        out.append(text[done:])
        return "".join(out)

    def _next(self, pattern: re.Pattern[str], pos: int) -> int:
        finder = self._finders.get(pattern)
        if finder is None:
            finder = self._finders[pattern] = _Next(pattern, self.text)
        return finder(pos)

    def _match(self, at: int) -> tuple[int, str] | None:
        """(end, replacement) of the markup starting at `at`, the rules tried in the order above."""
        first = self.text[at]
        if first == "\\":
            char = self.text[at + 1 : at + 2]
            return (at + 2, char) if char and char in _ESCAPABLE else None
        if first in "![":
            return self._link(at)
        if first == "<":
            return self._url(at + 1, _AUTOLINK_END, closing=">")
        if first == "h":
            return self._url(at, _BARE_URL_END)
        if first == "*":
            return self._span(at, "***") or self._span(at, "**") or self._single(at, "*")
        if first == "_":  # `_START` saw no word character before it
            return self._span(at, "__") or self._single(at, "_")
        return self._span(at, "~~")

    def _span(self, at: int, marker: str) -> tuple[int, str] | None:
        text, (closer, opening, closing) = self.text, _SPANS[marker]
        if not text.startswith(marker, at):
            return None
        first = at + len(marker)
        if first >= len(text) or text[first].isspace():
            return None
        end = self._next(closer, first + 2)
        if end == len(text) or end - first > _SPAN_MAX or self._next(_NEWLINE, at) < end:
            end = first + 1  # no longer span: the one-character one, `**x**`
            if not text.startswith(marker, end) or (marker == "__" and _is_word(text, end + 2)):
                return None
        return end + len(marker), opening + _inline(text[first:end]) + closing

    def _single(self, at: int, marker: str) -> tuple[int, str] | None:
        text, first = self.text, at + 1
        if first >= len(text) or text[first].isspace() or text[first] == marker:
            return None
        end = self._next(_SINGLES[marker], first + 1)
        if end == len(text) or text[end - 1].isspace() or (marker == "_" and _is_word(text, end + 1)):
            return None
        return end + 1, "_" + _inline(text[first:end]) + "_"

    def _link(self, at: int) -> tuple[int, str] | None:
        text = self.text
        label_start = at + 2 if text[at] == "!" else at + 1
        label_end = self._next(_LABEL_END, label_start)
        if label_end - label_start > _LABEL_MAX or not text.startswith("](", label_end):
            return None
        url_start = label_end + 2
        url_end = self._next(_URL_END, url_start)
        if not 1 <= url_end - url_start <= _URL_MAX:
            return None
        end = self._link_end(url_end)
        if end is None:
            return None
        label, url = text[label_start:label_end].strip(), text[url_start:url_end]
        return end, url if not label or label == url else f"{_inline(label)} ({url})"

    def _link_end(self, pos: int) -> int | None:
        # `)` right after the url, or after a title: ` "…")`.
        text = self.text
        if text.startswith(")", pos):
            return pos + 1
        if not text.startswith((" ", "\t"), pos):
            return None
        quote = self._next(_NOT_BLANK, pos)
        if not text.startswith('"', quote):
            return None
        end = self._next(_TITLE_END, quote + 1)
        return end + 2 if text.startswith('")', end) else None

    def _url(self, at: int, stop: re.Pattern[str], closing: str = "") -> tuple[int, str] | None:
        """A bare URL, or with `closing` the inside of `<…>` (`at` is past the `<`)."""
        text = self.text
        scheme = 8 if text.startswith("https://", at) else 7 if text.startswith("http://", at) else 0
        if not scheme:
            return None
        end = self._next(stop, at + scheme)
        if end == at + scheme or (
            closing and (end - at - scheme > _URL_MAX or not text.startswith(closing, end))
        ):
            return None
        return end + len(closing), text[at:end]


def _is_word(text: str, pos: int) -> bool:
    return pos < len(text) and (text[pos].isalnum() or text[pos] == "_")
