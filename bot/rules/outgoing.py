"""Text the bot sends: WhatsApp messages cut to size, an agent's reply framed, and the `[AI]` Jira comment.

The Markdown-to-WhatsApp formatting lives in `markdown.py`.
"""

from __future__ import annotations

import re
import unicodedata

WHATSAPP_TEXT_LIMIT = 4096
AGENT_FALLBACK_NAME = "Agent"

# --- splitting --------------------------------------------------------------------------------

# Best to worst place to cut: between paragraphs, between lines, after a sentence, between words.
# Each is linear: `*+` never gives back blanks it took, and a run of blanks is only tried from
# its start (the lookbehinds), not again from each of its characters.
_CUTS = (
    re.compile(r"\n(?:[ \t]*+\n)+"),
    re.compile(r"(?<![ \t])[ \t]*+\n"),
    re.compile(r"(?:(?<=[.!?\u2026])|(?<=[.!?\u2026][\"'\u201d\u2019)\]]))\s++|(?<=[\u3002\uff01\uff1f])"),
    re.compile(r"\s++"),
)
_LEADING_BLANK_LINES = re.compile(r"^(?:[ \t]*+\n)+")
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
            # The window may have cut a long separator short: the whole of it is dropped (read
            # once, and only up to where it ends, so still linear).
            separator = pattern.match(rest, best.start()) or best
            return best.start(), separator.end()
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
