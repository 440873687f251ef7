"""The text behind JQL's ``~``: Jira's Lucene-style query over words, as ``text ~ "…"`` reads it.

Pure. A value such as ``refund OR "lost parcel" -invoice`` is parsed into a small tree and
matched against one field's text at a time (the summary, the description, one comment…),
the way Jira runs a text clause per indexed field:

- words, not substrings, case-insensitive; English stop words are dropped from the query and
  the text alike, and plurals fold to their singular (``refunds`` finds ``refund``, ``boxes``
  finds ``box``);
- words side by side must all be there (Jira joins them with AND); ``OR``, ``AND``, ``NOT``
  (upper case only: lower-case ``or`` is a stop word), ``&&``, ``||``, ``!``, ``+word``,
  ``-word`` and parentheses combine them; a query of nothing but negations matches nothing;
- ``"exact words"`` is a phrase: the words in that order, stop words aside;
- ``\\`` escapes the next character (``\\-word`` is the word, not its negation); an unescaped
  ``*`` or ``?`` inside a word is a wildcard; ``~2`` and ``^3`` after a word change nothing;
- a query whose words are all stop words matches nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Lucene's English stop words, which Jira's text index drops.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
INVALID_FIRST = ("*", "?")
_WORD = re.compile(r"[^\W_]+")
_POSSESSIVE = re.compile(r"['’]s\b", re.IGNORECASE)
_MODIFIER = re.compile(r"[~^][\d.]*$")  # fuzziness and boost: Jira ignores them
_SPECIAL_END = set('()"')


class TextQueryError(ValueError):
    """The value cannot be parsed as a text query."""


@dataclass(frozen=True)
class Term:
    word: str  # analysed: lower case, singular


@dataclass(frozen=True)
class Phrase:
    words: tuple[str, ...]


@dataclass(frozen=True)
class Wildcard:
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Without:
    item: Node


Node = Term | Phrase | Wildcard | All | Any_ | Without


# -- analysis: the same for the query and the text -----------------------------------------------


def singular(word: str) -> str:
    """Fold a plain English plural to its singular; other words are kept as they are."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and word[-4] not in "aeiou":
        return word[:-3] + "y"  # parties -> party
    if word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return word[:-2]  # boxes -> box, watches -> watch
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]  # refunds -> refund (address, status, analysis stay)
    return word


def analyse(text: str) -> list[str]:
    """The words of ``text`` as the index holds them: lower case, singular, no stop words."""
    words = _WORD.findall(_POSSESSIVE.sub("", text).lower())
    return [singular(w) for w in words if w not in STOP_WORDS]


@functools.lru_cache(maxsize=4096)
def _document(text: str) -> tuple[tuple[str, ...], frozenset[str]]:
    words = tuple(analyse(text))
    raw = frozenset(w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS)
    return words, raw | frozenset(words)


# -- parsing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # "word", "phrase", "(", ")", "and", "or", "not", "must", "end"
    text: str = ""
    wild: bool = False  # holds an unescaped * or ?


def _tokens(value: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            toks.append(_Tok(ch))
            i += 1
        elif value.startswith(("&&", "||"), i):
            toks.append(_Tok("and" if ch == "&" else "or"))
            i += 2
        elif ch in "!-":
            toks.append(_Tok("not"))
            i += 1
        elif ch == "+":
            toks.append(_Tok("must"))
            i += 1
        elif ch == '"':
            text, i = _phrase(value, i + 1)
            toks.append(_Tok("phrase", text))
        else:
            tok, i = _word(value, i)
            toks.append(tok)
    toks.append(_Tok("end"))
    return toks


def _phrase(value: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value):
                break
            out.append(value[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise TextQueryError("unterminated phrase")


def _word(value: str, i: int) -> tuple[_Tok, int]:
    out: list[str] = []  # regex source, so escaped characters stay literal
    plain: list[str] = []
    wild = False
    while i < len(value):
        ch = value[i]
        if ch.isspace() or ch in _SPECIAL_END:
            break
        if ch == "\\":
            if i + 1 >= len(value):
                raise TextQueryError("a query cannot end with an escape character")
            out.append(re.escape(value[i + 1]))
            plain.append(value[i + 1])
            i += 2
            continue
        if ch in "*?":
            if not out:
                raise TextQueryError(f"a word cannot start with '{ch}'")
            wild = True
            out.append(".*" if ch == "*" else ".")
        else:
            out.append(re.escape(ch))
        plain.append(ch)
        i += 1
    text = "".join(out if wild else plain)
    if text in ("AND", "OR", "NOT"):
        return _Tok(text.lower()), i
    return _Tok("word", text if wild else _MODIFIER.sub("", text), wild), i


class _Parser:
    def __init__(self, value: str) -> None:
        self.toks = _tokens(value)
        self.i = 0

    @property
    def kind(self) -> str:
        return self.toks[self.i].kind

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def query(self) -> Node | None:
        node = self.any_of()
        if self.kind != "end":
            raise TextQueryError(f"unexpected '{self.toks[self.i].text or self.kind}'")
        return node

    def any_of(self) -> Node | None:
        items = [self.all_of()]
        while self.kind == "or":
            self.take()
            items.append(self.all_of())
        return _combine(Any_, items)

    def all_of(self) -> Node | None:
        items = [self.unary()]
        while self.kind not in ("or", ")", "end"):
            if self.kind == "and":
                self.take()
            items.append(self.unary())
        return _combine(All, items)

    def unary(self) -> Node | None:
        kind = self.kind
        if kind == "not":
            self.take()
            inner = self.unary()
            return None if inner is None else Without(inner)
        if kind == "must":
            self.take()
            return self.unary()
        if kind == "(":
            self.take()
            inner = self.any_of()
            if self.kind != ")":
                raise TextQueryError("missing ')'")
            self.take()
            return inner
        if kind in ("word", "phrase"):
            tok = self.take()
            return _leaf(tok)
        raise TextQueryError(f"expected a word, got '{kind}'")


def _leaf(tok: _Tok) -> Node | None:
    if tok.wild:
        return Wildcard(re.compile(tok.text.lower()))
    words = analyse(tok.text)
    if not words:
        return None  # only stop words (or punctuation): Jira drops them
    return Term(words[0]) if len(words) == 1 else Phrase(tuple(words))


def _combine(kind: type[All] | type[Any_], items: Sequence[Node | None]) -> Node | None:
    kept = tuple(i for i in items if i is not None)
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else kind(kept)


def parse_text_query(value: str) -> Node | None:
    """The query tree of a ``~`` value; None when nothing is left to search for.

    Raises:
        TextQueryError: unbalanced parentheses or quotes, a dangling operator or escape.
    """
    return _Parser(value).query()


# -- matching --------------------------------------------------------------------------------------


def matches(node: Node | None, text: str) -> bool:
    """Whether one field's ``text`` satisfies the query (None, an empty query: never)."""
    if node is None or not text:
        return False
    words, vocabulary = _document(text)
    return _eval(node, words, vocabulary)


def _eval(node: Node, words: tuple[str, ...], vocabulary: frozenset[str]) -> bool:
    if isinstance(node, Term):
        return node.word in vocabulary
    if isinstance(node, Phrase):
        size = len(node.words)
        return any(words[i : i + size] == node.words for i in range(len(words) - size + 1))
    if isinstance(node, Wildcard):
        return any(node.pattern.fullmatch(w) for w in vocabulary)
    if isinstance(node, Any_):
        return any(_eval(i, words, vocabulary) for i in node.items)
    if isinstance(node, All):
        wanted = [i for i in node.items if not isinstance(i, Without)]
        unwanted = [i.item for i in node.items if isinstance(i, Without)]
        # Lucene: a group of negations alone matches nothing.
        return (
            bool(wanted)
            and all(_eval(i, words, vocabulary) for i in wanted)
            and not any(_eval(i, words, vocabulary) for i in unwanted)
        )
    return False  # a negation on its own
