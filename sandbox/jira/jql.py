"""Parse the subset of JQL a poller uses into a small syntax tree.

Pure: no I/O, no clock. ``jqleval`` gives the tree its meaning. The grammar is
Jira's (AND/OR/NOT with parentheses, clauses ``field operator operand``,
``ORDER BY``); what the sandbox cannot answer is rejected with a 400-style
``JqlError`` rather than silently matching everything, because a poller tested
against a lenient stand-in would break on the real thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "EMPTY", "NULL", "ORDER", "BY", "ASC", "DESC"}
OPERATORS = ("!=", ">=", "<=", "!~", "=", ">", "<", "~")
_VALID_OPERATORS = "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'"
# Characters that end an unquoted word: whitespace, punctuation and operator starts.
_WORD = re.compile(r"""[^\s()=,!<>~"'&|]+""")


class JqlError(ValueError):
    """The query is not valid JQL (or not JQL the sandbox understands)."""


@dataclass(frozen=True)
class Value:
    kind: str  # "word" (unquoted), "string" (quoted), "function", "empty"
    text: str
    args: tuple[str, ...] = ()

    def show(self) -> str:
        return f"{self.text}()" if self.kind == "function" else self.text


@dataclass(frozen=True)
class Clause:
    field: str  # as written; jqleval resolves aliases case-insensitively
    op: str  # "=", "!=", ">", ">=", "<", "<=", "~", "!~", "in", "not in", "is", "is not"
    values: tuple[Value, ...]


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Not:
    item: object


@dataclass(frozen=True)
class Query:
    where: object | None  # Clause | And | Or | Not | None
    order_by: tuple[tuple[str, bool], ...]  # (field, ascending)


@dataclass(frozen=True)
class _Tok:
    kind: str  # "word", "string", "op", "(", ")", ",", "end"
    text: str
    pos: int  # 1-based character position, as Jira reports it

    @property
    def keyword(self) -> str | None:
        up = self.text.upper()
        return up if self.kind == "word" and up in KEYWORDS else None


def tokenize(jql: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(jql)
    while i < n:
        ch = jql[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            toks.append(_Tok(ch, ch, i + 1))
            i += 1
        elif jql.startswith(("&&", "||"), i):
            toks.append(_Tok("word", "AND" if ch == "&" else "OR", i + 1))
            i += 2
        elif ch in "\"'":
            text, i = _read_string(jql, i)
            toks.append(_Tok("string", text, i + 1))
        elif op := next((o for o in OPERATORS if jql.startswith(o, i)), None):
            toks.append(_Tok("op", op, i + 1))
            i += len(op)
        elif ch == "!":
            toks.append(_Tok("word", "NOT", i + 1))
            i += 1
        else:
            m = _WORD.match(jql, i)
            if not m:
                raise JqlError(
                    f"Error in the JQL Query: The character '{ch}' is a reserved JQL character. "
                    f"You must enclose it in a string or use the escape '\\u{ord(ch):04x}' instead. "
                    f"(line 1, character {i + 1})"
                )
            toks.append(_Tok("word", m.group(), i + 1))
            i = m.end()
    toks.append(_Tok("end", "", n + 1))
    return toks


_ESCAPES = {'"': '"', "'": "'", "\\": "\\", " ": " ", "t": "\t", "n": "\n", "r": "\r"}
_VALID_ESCAPES = "\\', \\\", \\t, \\n, \\r, \\\\, '\\ ' and \\uXXXX"


def _escape(jql: str, i: int) -> tuple[str, int]:
    """The character a backslash at ``i`` stands for, and where the string goes on.

    JQL knows a few escapes only: a text query's own escapes (``\\-`` for a literal minus in
    ``text ~``) reach it as ``\\\\-``, which this turns into ``\\-``.
    """
    nxt = jql[i + 1 : i + 2]
    if nxt in _ESCAPES:
        return _ESCAPES[nxt], i + 2
    code = jql[i + 2 : i + 6]
    if nxt == "u" and len(code) == 4 and all(c in "0123456789abcdefABCDEF" for c in code):
        return chr(int(code, 16)), i + 6
    raise JqlError(
        f"Error in the JQL Query: '\\{nxt}' is an illegal JQL escape sequence. The valid escape "
        f"sequences are {_VALID_ESCAPES}. (line 1, character {i + 1})"
    )


def _read_string(jql: str, start: int) -> tuple[str, int]:
    quote, i, out = jql[start], start + 1, []
    while i < len(jql):
        ch = jql[i]
        if ch == "\\" and i + 1 < len(jql):
            char, i = _escape(jql, i)
            out.append(char)
        elif ch == quote:
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise JqlError(
        f"Error in the JQL Query: The quoted string '{''.join(out)}' has not been completed. "
        f"(line 1, character {start + 1})"
    )


class _Parser:
    def __init__(self, jql: str) -> None:
        self.toks = tokenize(jql)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, expected: str, hint: str = "") -> JqlError:
        tok = self.tok
        if tok.kind == "end":
            return JqlError(
                f"Error in the JQL Query: Expecting {expected} but reached the end of the query.{hint}"
            )
        return JqlError(
            f"Error in the JQL Query: Expecting {expected} but got '{tok.text}'.{hint} "
            f"(line 1, character {tok.pos})"
        )

    def query(self) -> Query:
        where = None
        if self.tok.kind != "end" and self.tok.keyword != "ORDER":
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.tok.keyword == "ORDER":
            self.take()
            if self.tok.keyword != "BY":
                raise self.fail("'by'")
            self.take()
            order.append(self.sort_item())
            while self.tok.kind == ",":
                self.take()
                order.append(self.sort_item())
        if self.tok.kind != "end":
            raise self.fail("either 'OR' or 'AND'" if where is not None else "a field name")
        return Query(where, tuple(order))

    def sort_item(self) -> tuple[str, bool]:
        field = self.field_name()
        ascending = True
        if self.tok.keyword in ("ASC", "DESC"):
            ascending = self.take().keyword == "ASC"
        return field, ascending

    def or_expr(self):
        items = [self.and_expr()]
        while self.tok.keyword == "OR":
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self):
        items = [self.not_expr()]
        while self.tok.keyword == "AND":
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self):
        if self.tok.keyword == "NOT":
            self.take()
            return Not(self.not_expr())
        if self.tok.kind == "(":
            self.take()
            inner = self.or_expr()
            if self.tok.kind != ")":
                raise self.fail("')'")
            self.take()
            return inner
        return self.clause()

    def field_name(self) -> str:
        tok = self.tok
        if tok.kind == "string" or (tok.kind == "word" and tok.keyword is None):
            self.take()
            return tok.text
        raise self.fail("a field name")

    def clause(self) -> Clause:
        field = self.field_name()
        tok = self.tok
        if tok.kind == "op":
            self.take()
            return Clause(field, tok.text, (self.value(),))
        if tok.keyword == "IN":
            self.take()
            return Clause(field, "in", self.value_list())
        if tok.keyword == "NOT":
            self.take()
            if self.tok.keyword != "IN":
                raise self.fail("'IN'")
            self.take()
            return Clause(field, "not in", self.value_list())
        if tok.keyword == "IS":
            self.take()
            op = "is"
            if self.tok.keyword == "NOT":
                self.take()
                op = "is not"
            if self.tok.keyword not in ("EMPTY", "NULL"):
                raise self.fail("'EMPTY' or 'NULL'")
            return Clause(field, op, (Value("empty", self.take().text.upper()),))
        raise self.fail("operator", f" The valid operators are {_VALID_OPERATORS}.")

    def value_list(self) -> tuple[Value, ...]:
        if self.tok.kind != "(":
            raise self.fail("'('")
        self.take()
        values = [self.value()]
        while self.tok.kind == ",":
            self.take()
            values.append(self.value())
        if self.tok.kind != ")":
            raise self.fail("')' or ','")
        self.take()
        return tuple(values)

    def value(self) -> Value:
        tok = self.tok
        if tok.kind == "string":
            self.take()
            return Value("string", tok.text)
        if tok.kind == "word" and tok.keyword in ("EMPTY", "NULL"):
            self.take()
            return Value("empty", tok.keyword)
        if tok.kind == "word" and tok.keyword is None:
            self.take()
            if self.tok.kind == "(":
                return Value("function", tok.text, self.function_args())
            return Value("word", tok.text)
        if tok.keyword:
            raise JqlError(
                f"Error in the JQL Query: '{tok.text}' is a reserved JQL word. You must surround it "
                f"in quotation marks to use it in a query. (line 1, character {tok.pos})"
            )
        raise self.fail("either a value, list or function")

    def function_args(self) -> tuple[str, ...]:
        self.take()  # "("
        args: list[str] = []
        while self.tok.kind != ")":
            if self.tok.kind not in ("word", "string"):
                raise self.fail("')'")
            args.append(self.take().text)
            if self.tok.kind == ",":
                self.take()
        self.take()
        return tuple(args)


def parse(jql: str) -> Query:
    """Parse ``jql`` into a ``Query``; raise ``JqlError`` with Jira's wording on bad syntax."""
    return _Parser(jql or "").query()
