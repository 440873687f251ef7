r"""Escape plain text for Jira Server/Data Center wiki markup.

Customer text in a comment must show exactly as typed: `[~admin]` must not notify anyone,
`{code}` must not open a macro, `*x*` must not turn bold.

How: backslash escapes, which Jira's renderer defines for exactly these characters
`- # * _ + ? ^ ~ | % { } [ ] ( ) ! @` (its BackslashEscapeRendererComponent) and removes when
rendering, so the reader sees the original text and the stored markup stays greppable. Every one
of them is escaped wherever it appears, not just where it would form markup today: cheaper to
reason about than a model of Jira's parser, and immune to context we did not anticipate.

A backslash escape cannot help in three places, and there a zero-width space (U+200B) breaks the
pattern instead; it is invisible and, unlike a backslash, never shown to the reader:
* a literal backslash: `\\` is a line break and `\*` would swallow our own escape, so every
  backslash is followed by a zero-width space;
* `h1.`-`h6.` and `bq.` at a line start are letters, not escapable characters;
* the emoticons `:P` and `:D` (and `;`), which are letters too.
(Emoticons written with parentheses, such as `:)` or `(y)`, are covered by escaping `(` `)`.)

`unescape_wiki` reverses exactly this, for reading our own comments back.
"""

from __future__ import annotations

import re

ZWSP = "\u200b"
ESCAPABLE = "-#*_+?^~|%{}[]()!@"

_ESCAPES = {ord(ch): "\\" + ch for ch in ESCAPABLE}
_ESCAPES[ord("\\")] = "\\" + ZWSP

# Leading zero-width spaces are allowed in the pattern so text that already had one still gets
# one more from us, which keeps unescape_wiki exact. Linear: a match starts only at a line start
# or at `:`/`;`, reads just the blanks after it, and `*+` gives none of them back (the lookaheads
# want a letter, never a blank or a zero-width space).
_BLOCK_TOKEN = re.compile(r"(?m)^([^\S\n]*+\u200b*+)(?=(?:h[1-6]|bq)\.)")
_LETTER_EMOTICON = re.compile(r"([:;]\u200b*+)(?=[PpDd](?![A-Za-z0-9]))")

_UNESCAPE_CHARS = re.compile(r"\\(\u200b|[" + re.escape(ESCAPABLE) + "])")
_UNBLOCK_TOKEN = re.compile(r"(?m)^([^\S\n]*+\u200b*)\u200b(?=(?:h[1-6]|bq)\.)")
_UNLETTER_EMOTICON = re.compile(r"([:;]\u200b*)\u200b(?=[PpDd](?![A-Za-z0-9]))")


def escape_wiki(text: str) -> str:
    """Return wiki markup that renders as `text`, character for character."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _BLOCK_TOKEN.sub(lambda m: m.group(1) + ZWSP, text)
    text = _LETTER_EMOTICON.sub(lambda m: m.group(1) + ZWSP, text)
    return text.translate(_ESCAPES)


def unescape_wiki(markup: str) -> str:
    """Inverse of `escape_wiki` (line ends come back as `\\n`)."""
    text = _UNESCAPE_CHARS.sub(lambda m: "\\" if m.group(1) == ZWSP else m.group(1), markup)
    text = _UNBLOCK_TOKEN.sub(lambda m: m.group(1), text)
    return _UNLETTER_EMOTICON.sub(lambda m: m.group(1), text)
