"""Text the bot sends: WhatsApp messages cut to size and formatted, and the `[AI]` Jira comment.

WhatsApp formatting (what its apps render): `*bold*`, `_italic_`, `~strike~`, ```` ```mono``` ````
(also over several lines), and since the 2023-24 rollout `` `inline code` ``, `- `/`* ` bullets,
`1. ` numbered lists and `> ` quotes. So inline code keeps its single backticks (that is now
WhatsApp's own syntax for it); bullets still become `• `, which reads as a bullet on every client,
old ones included, and cannot be mistaken for the start of `*bold*`.
"""

from __future__ import annotations

import re
import unicodedata

WHATSAPP_TEXT_LIMIT = 4096
AGENT_FALLBACK_NAME = "Agent"

# --- splitting --------------------------------------------------------------------------------

# Best to worst place to cut: between paragraphs, between lines, after a sentence, between words.
_CUTS = (
    re.compile(r"\n(?:[ \t]*\n)+"),
    re.compile(r"[ \t]*\n"),
    re.compile(r"(?:(?<=[.!?\u2026])|(?<=[.!?\u2026][\"'\u201d\u2019)\]]))\s+|(?<=[\u3002\uff01\uff1f])"),
    re.compile(r"\s+"),
)
_LEADING_BLANK_LINES = re.compile(r"^(?:[ \t]*\n)+")
# Code points a hard cut must not separate from the one before: zero-width joiner, variation
# selectors, emoji skin tones. (Combining marks are caught by unicodedata.combining.)
_GLUE = frozenset("\u200d\ufe0e\ufe0f") | {chr(c) for c in range(0x1F3FB, 0x1F400)}
_MAX_BACKOFF = 16
_LOOKAHEAD = 1024


def split_message(text: str, limit: int = WHATSAPP_TEXT_LIMIT) -> list[str]:
    """Cut `text` into WhatsApp messages of at most `limit` characters, in order.

    Length is Python's `len` (code points). Meta documents the 4096 limit in "characters"; if its
    count ever differs (an emoji made of several code points), pass a smaller limit.
    Parts are never empty or blank; whitespace at the cuts is dropped.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    parts: list[str] = []
    rest = _LEADING_BLANK_LINES.sub("", text or "").rstrip()
    while rest:
        if len(rest) <= limit:
            parts.append(rest)
            break
        end, resume = _cut(rest, limit)
        part = rest[:end].rstrip()
        if part.strip():
            parts.append(part)
        rest = _LEADING_BLANK_LINES.sub("", rest[resume:])
    return parts


def _cut(rest: str, limit: int) -> tuple[int, int]:
    """(end of this part, start of the next); end is in 1..limit, so the loop always advances."""
    for pattern in _CUTS:
        best = None
        # A separator starting at `limit` may run past it (only its start decides the part's
        # length), so look a little further; not to the end, or a long text costs n^2.
        for m in pattern.finditer(rest, 0, limit + _LOOKAHEAD):
            if m.start() > limit:
                break
            if m.start() > 0:
                best = m
        if best is not None:
            return best.start(), best.end()
    cut = limit
    for _ in range(_MAX_BACKOFF):  # keep a letter with its accents, an emoji with its modifiers
        if cut > 1 and (_glued(rest[cut]) or rest[cut - 1] == "\u200d"):
            cut -= 1
        else:
            break
    else:
        cut = limit  # a pathological run of marks: cutting inside it beats looping
    return cut, cut


def _glued(ch: str) -> bool:
    return ch in _GLUE or unicodedata.combining(ch) != 0


# --- markdown -> WhatsApp ---------------------------------------------------------------------

# Possessive quantifiers (`++`, `*+`) and bounded spans keep every pattern linear-ish: the text
# comes from an LLM and from agents, and a line of 10,000 backticks must not take minutes.
_FENCE = re.compile(
    r"^[ \t]{0,3}(?P<fence>`{3,}+|~{3,}+)[^\n]*+\n(?P<code>.*?)(?:^[ \t]{0,3}(?P=fence)[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)
_TICKS = re.compile(r"`++")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_BULLET = re.compile(r"^(?P<indent>[ \t]*)[*+-][ \t]+")
_STRONG_WRAPPER = re.compile(r"^(\*\*|__)(.*)\1$")
_SPAN = r"\S(?:.{0,1000}?\S)?"  # longer emphasis is not emphasis, it is a runaway marker
_INLINE = re.compile(
    r"\\(?P<esc>[\\`*_{}\[\]()#+\-.!~>|])"
    r"|!?\[(?P<label>[^\]\n]{0,1000}+)\]\((?P<url>[^)\s]{1,2048}+)(?:[ \t]+\"[^\"\n]*+\")?\)"
    r"|<(?P<auto>https?://[^>\s]{1,2048}+)>"
    r"|(?P<bare>https?://[^\s<>]++)"
    rf"|\*\*\*(?P<bolditalic>{_SPAN})\*\*\*"
    rf"|\*\*(?P<bold>{_SPAN})\*\*"
    rf"|(?<!\w)__(?P<bold_u>{_SPAN})__(?!\w)"
    rf"|~~(?P<strike>{_SPAN})~~"
    r"|\*(?P<italic>[^\s*](?:[^*]*?[^\s*])?)\*"
    r"|(?<!\w)_(?P<italic_u>[^\s_](?:[^_]*?[^\s_])?)_(?!\w)"
)
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
        out.append(_prose(text[pos:m.start()]))
        out.append("```\n" + m.group("code").rstrip("\n") + "\n```")
        pos = m.end()
    out.append(_prose(text[pos:]))
    return "".join(out)


def _prose(chunk: str) -> str:
    return "\n".join(_line(line) for line in chunk.split("\n"))


def _line(line: str) -> str:
    if _RULE.match(line):
        return RULE_TEXT
    heading = _HEADING.match(line)
    if heading:
        title = (heading.group("text") or "").strip()
        title = _STRONG_WRAPPER.sub(r"\2", title).strip()
        return f"*{_code_aware(title)}*" if title else ""
    bullet = _BULLET.match(line)
    if bullet:
        return bullet.group("indent") + "\u2022 " + _code_aware(line[bullet.end():])
    return _code_aware(line)


def _code_aware(line: str) -> str:
    # Inline code is cut out first so nothing inside backticks is ever reformatted. As in
    # CommonMark, a run of n backticks opens a span that the next run of exactly n closes; runs
    # left unpaired are plain text. Pairing through a precomputed "next run of the same length"
    # keeps this linear where a backreferencing regex was not.
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
        out.append(_inline(line[pos:runs[i][0]]))
        code = line[runs[i][1]:runs[j][0]]
        # WhatsApp's inline code cannot hold a backtick; its ``` monospace can.
        out.append(f"```{code}```" if "`" in code else f"`{code}`")
        pos, i = runs[j][1], j + 1
    out.append(_inline(line[pos:]))
    return "".join(out)


def _inline(text: str) -> str:
    return _INLINE.sub(_replace, text)


def _replace(m: re.Match[str]) -> str:
    groups = m.groupdict()
    if groups["esc"] is not None:
        return groups["esc"]
    if groups["url"] is not None:
        label, url = groups["label"].strip(), groups["url"]
        return url if not label or label == url else f"{_inline(label)} ({url})"
    if groups["auto"] is not None:
        return groups["auto"]
    if groups["bare"] is not None:
        return groups["bare"]  # copied as is: a `_` or `*` inside a URL is part of the address
    if groups["bolditalic"] is not None:
        return f"*_{_inline(groups['bolditalic'])}_*"
    for name, mark in (("bold", "*"), ("bold_u", "*"), ("strike", "~"), ("italic", "_"), ("italic_u", "_")):
        if groups[name] is not None:
            return f"{mark}{_inline(groups[name])}{mark}"
    return m.group(0)


# --- framing ----------------------------------------------------------------------------------

_NAME_NOISE = re.compile(r"[\s*_~`]+")
_PLACEHOLDER = re.compile(r"\{(name|text)\}")


def agent_message(display_name: str, text: str, fmt: str = "*{name}:* {text}") -> str:
    """An agent's comment as the customer sees it, e.g. `*Ana Lima:* Your order shipped.`.

    `fmt` (from config) may use `{name}` and `{text}`; other braces are literal. Substitution is one
    pass, so a name or text that itself contains `{text}` is not expanded again.
    """
    if "{text}" not in fmt:
        raise ValueError("agent message format must contain {text}")
    # A name with `*` or a line break would break the bold frame around it.
    name = _NAME_NOISE.sub(" ", display_name or "").strip() or AGENT_FALLBACK_NAME
    values = {"name": name, "text": text}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], fmt)


def ai_comment_text(reply: str) -> str:
    """The Jira comment recording an AI reply; the poller tells it apart by property, not by this."""
    return f"[AI] {reply.strip()}"
