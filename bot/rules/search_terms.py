"""Search terms from what the customer wrote, and the JQL that finds resolved tickets with them.

The terms feed two searches: the knowledge base (in memory) and Jira's `text ~`. On Cloud,
`text ~ "a b"` wants every word and `text ~ "a OR b"` any of them; we want any, because a
customer's sentence never matches a past ticket word for word. With OR, one filler word
("hello", "gracias") would match half the project, so greetings and the function words of the
languages our customers write in are dropped here, before Jira sees them.

What the customer wrote must never change the query: the terms are letters and digits only,
and `text_search_value` escapes them again anyway, for Lucene (inside the `text ~` value) and
for JQL (inside the string literal), in that order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MIN_TERM_CHARS = 2
MAX_TERM_CHARS = 40
"""Longer "words" are URLs, ids, or unspaced scripts (Chinese, Japanese): no use as a term."""
MIN_NUMBER_CHARS = 3
"""Order and invoice numbers are good terms; "10" or "24" (quantities, hours) are noise."""

# Letters and digits, no underscore: a Unicode word without punctuation.
_WORD = re.compile(r"[^\W_]+")

# Lucene's operators. Inside a JQL string JQL's own reserved words ("order", "empty", "null")
# are plain text, so only these, which Lucene reads as operators, are dropped.
LUCENE_OPERATORS = frozenset({"AND", "OR", "NOT", "TO"})
_LUCENE_SPECIAL = frozenset('+-&|!(){}[]^~*?:\\/"')

_ENGLISH = """
a an the and or not no nor but if then else so than too very of to in on at by for from with
without about into onto over under up down out off again i me my mine we us our you your he him
his she her it its they them their this that these those who whom whose which what when where
why how is am are was were be been being have has had do does did done can could will would
shall should may might must just also only there here all any some each both few more most
other such own same as per via get got im dont cant
"""
_SPANISH = """
el la los las un una unos unas lo al del de en y e o u ni que quien quienes cual cuales como
cuando donde porque por para con sin sobre entre hasta desde ya muy mas pero sino si no yo tu
usted ustedes el ella ellos ellas nosotros nosotras me te se nos le les mi mis su sus tus este
esta estos estas ese esa esos esas aquel es son era eran fue ser estar estoy estas esta estan
he ha han hay tengo tiene tienen hace tambien aqui alli algo todo todos nada
"""
_PORTUGUESE = """
o a os as um uma uns umas de do da dos das em no na nos nas ao aos e ou nem que quem qual quais
como quando onde porque por para pra com sem sobre entre ate desde ja muito mais mas se nao eu
tu voce voces ele ela eles elas nos me te lhe lhes meu minha meus minhas seu sua seus suas este
esta estes estas esse essa isso isto aquilo e sao era foi ser estar estou esta estao tenho tem
ha tambem aqui ali algo tudo nada
"""
_GERMAN = """
der die das den dem des ein eine einen einem einer eines und oder aber doch nicht kein keine
ich du er sie es wir ihr mich mir dich dir uns euch sich mein meine dein deine sein seine ihre
unser ist sind war waren bin bist sein habe hat haben hatte wird werden kann koennen muss soll
mit von zu zum zur bei aus nach vor fur fuer auf an am im in um ueber uber unter durch als wie
wenn dass da hier dort auch noch schon nur sehr was wer wo wie warum welche dieser diese dieses
"""
_FRENCH = """
le la les un une des du de d l au aux et ou ni mais donc car que qui quoi dont ou ne pas plus
je tu il elle on nous vous ils elles me te se moi toi lui leur leurs mon ma mes ton ta tes son
sa ses notre votre nos vos ce cet cette ces est sont etait ete etre suis es avoir ai as avons
avez ont en dans sur sous pour par avec sans chez entre vers tres aussi ici la y c j n s qu
"""
# Greetings, thanks, yes/no and "I want" of a chat: in every conversation, so they say nothing
# about one.
# Not "sim" (Portuguese yes, and a SIM card) nor "tag" (German day, and a price tag).
_CHAT = """
hi hello hey hola buenas buenos dias tardes noches ola oi bom dia boa tarde noite hallo guten
servus bonjour bonsoir salut coucou thanks thank thx please pls plz gracias
favor obrigado obrigada danke bitte merci svp ok okay yes yeah yep si ja nein oui non
want need like know quiero necesito quero preciso mochte brauche veux voudrais
"""


def _unaccented(word: str) -> str:
    # Customers type "esta" for "está" and "fur" for "für": stop words are matched without accents.
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


STOP_WORDS = frozenset(
    _unaccented(word.casefold())
    for words in (_ENGLISH, _SPANISH, _PORTUGUESE, _GERMAN, _FRENCH, _CHAT)
    for word in words.split()
) | frozenset(op.casefold() for op in LUCENE_OPERATORS)


def query_terms(texts: Sequence[str], *, max_terms: int = 12) -> list[str]:
    """The words worth searching for in what the customer wrote.

    Args:
        texts: the customer's recent messages, newest first.
        max_terms: at most this many terms.

    Returns:
        Lower-case (casefolded) words of 2 to 40 letters or digits, numbers of at least three
        digits, no stop words, each once; the newest message's words first, in their order.
    """
    terms: list[str] = []
    seen: set[str] = set()
    if max_terms <= 0:
        return terms
    for text in texts:
        if not isinstance(text, str):
            continue
        # NFC first: a decomposed "mü" would otherwise be cut at its combining mark.
        for match in _WORD.finditer(unicodedata.normalize("NFC", text)):
            term = match.group().casefold()
            if term in seen or not _worth_searching(term):
                continue
            seen.add(term)
            terms.append(term)
            if len(terms) >= max_terms:
                return terms
    return terms


def _worth_searching(term: str) -> bool:
    if not MIN_TERM_CHARS <= len(term) <= MAX_TERM_CHARS:
        return False
    if term.isdigit():
        return len(term) >= MIN_NUMBER_CHARS
    return _unaccented(term) not in STOP_WORDS


def text_search_value(terms: Sequence[str]) -> str:
    """The JQL string literal, quotes included, for `text ~` matching any of `terms`.

    Each term is escaped twice: Lucene's special characters get a backslash (the value is a
    Lucene query), then the JQL string escapes backslash and double quote (the value is a JQL
    string), so a `\\` in a term is `\\\\` in the JQL text, as Atlassian documents it. Whitespace
    separates terms, control characters are dropped, Lucene's operator words and pieces without
    a letter or digit are left out.

    Returns:
        e.g. `"refund OR 1042"`; "" when no term is left.
    """
    pieces: list[str] = []
    seen: set[str] = set()
    for term in terms:
        for piece in str(term).split():
            kept = "".join(ch for ch in piece if unicodedata.category(ch)[0] != "C")
            if kept.upper() in LUCENE_OPERATORS or not any(ch.isalnum() for ch in kept):
                continue
            if kept not in seen:
                seen.add(kept)
                pieces.append(_jql_string_escape(_lucene_escape(kept)))
    return f'"{" OR ".join(pieces)}"' if pieces else ""


def _lucene_escape(term: str) -> str:
    return "".join(f"\\{ch}" if ch in _LUCENE_SPECIAL else ch for ch in term)


def _jql_string_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]*", re.ASCII)
_ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]*-[0-9]+", re.ASCII)


def resolved_jql(project_key: str, terms: Sequence[str], *, exclude_key: str | None) -> str | None:
    """The JQL for the project's resolved tickets mentioning any of `terms`, newest first.

    Args:
        project_key: the service's Jira project, e.g. "SUP".
        terms: from `query_terms`.
        exclude_key: the ticket being answered, which must not be its own example.

    Returns:
        The query, or None when no term is left to search for.

    Raises:
        ValueError: `project_key` or `exclude_key` is not a Jira key (config or caller error).
    """
    if not isinstance(project_key, str) or not _PROJECT_KEY.fullmatch(project_key):
        raise ValueError(f"not a Jira project key: {project_key!r}")
    if exclude_key is not None and (
        not isinstance(exclude_key, str) or not _ISSUE_KEY.fullmatch(exclude_key)
    ):
        raise ValueError(f"not a Jira issue key: {exclude_key!r}")
    value = text_search_value(terms)
    if not value:
        return None
    clauses = [f'project = "{project_key}"', "statusCategory = Done", f"text ~ {value}"]
    if exclude_key is not None:
        clauses.append(f'key != "{exclude_key}"')
    return " AND ".join(clauses) + " ORDER BY updated DESC"
