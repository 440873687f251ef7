"""What the AI is shown besides the conversation: the knowledge sections and the resolved tickets
of the project that match what the customer asked, as one block of reference material.

Per AI turn: the terms come from the customer's last few messages; the service's knowledge base
is searched in memory; Jira is searched once (`text ~`, Done, this project, not this ticket) for
at most `_CANDIDATES` tickets, which are ranked here with BM25 over their own text, because Jira
returns them newest first, not best first. The comments come inline with the search, so a turn
costs one Jira call, and none when the same question was searched within `cache_seconds` (a
burst of messages, or a retried turn).

Finding nothing is never a failure: the reply goes out without reference material. A Jira that
is down or refuses the query costs the grounding of this one answer, not the answer.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.config import ServiceSettings
from bot.jira_api.directory import jira_for_project
from bot.jira_api.errors import JiraError
from bot.logs import get_logger
from bot.ports import JiraPort
from bot.rules.adf import text_from_doc
from bot.rules.ai_context import AI_PREFIX, CUSTOMER_PREFIX
from bot.rules.classify import CommentView, comment_view
from bot.rules.comment_property import KIND_AI, KIND_CUSTOMER
from bot.rules.knowledge import Section
from bot.rules.lexicon import expand_terms
from bot.rules.reference import (
    Reference,
    ResolvedExample,
    build_reference,
    resolved_example,
    without_sender,
)
from bot.rules.search_terms import query_terms, resolved_jql

log = get_logger(__name__)

_RECENT_TURNS = 3
"""The customer's last messages the terms come from: the question, and what they added to it."""
_SECTIONS = 4
_CANDIDATES = 20
"""Resolved tickets asked of Jira (one page), ranked here; the best `resolved_examples` are used."""
_CACHE_ENTRIES = 256
_SEARCH_FIELDS = ["summary", "description", "comment", "updated"]

NOTHING = Reference(text="", sections=(), tickets=())


class KnowledgeSearch(Protocol):
    """A service's knowledge files, indexed (`bot.ai.knowledge.KnowledgeBase`)."""

    def search(self, terms: Sequence[str], *, limit: int = ...) -> list[Section]: ...


Rank = Callable[[Sequence[str], Sequence[str]], list[int]]
"""(terms, documents) → indexes of the matching documents, best first."""


@dataclass
class ReferenceFinder:
    jira: JiraPort
    knowledge: Mapping[str, KnowledgeSearch]
    """Service id → its knowledge base; a service without knowledge files has none."""
    rank: Rank
    clock: Callable[[], float] = time.monotonic
    cache_seconds: float = 60.0
    _cache: OrderedDict[tuple[str, tuple[str, ...], str], tuple[float, list[ResolvedExample]]] = field(
        default_factory=OrderedDict, init=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def find(
        self,
        service: ServiceSettings,
        issue_key: str,
        conversation: Sequence[CommentView],
        *,
        bot_account_id: str | None,
    ) -> Reference:
        """The reference material for the next reply on `issue_key`; NOTHING when none matches.

        Args:
            conversation: the ticket's comments, as read for the AI's context.
        """
        a = service.assistant
        terms = expand_terms(query_terms(_recent_questions(conversation)))
        if not terms:
            return NOTHING
        base = self.knowledge.get(service.id)
        sections = base.search(terms, limit=_SECTIONS) if base is not None else []
        examples: list[ResolvedExample] = []
        if a.resolved_examples > 0:
            found = self._resolved(service.project_key, issue_key, terms, bot_account_id)
            examples = found[: a.resolved_examples]
        reference = build_reference(sections, examples, budget_chars=a.reference_chars)
        log.info(
            "ai_reference",
            issue_key=issue_key,
            terms=len(terms),
            sections=len(reference.sections),
            tickets=list(reference.tickets),
        )
        return reference

    def _resolved(
        self, project_key: str, issue_key: str, terms: list[str], bot_account_id: str | None
    ) -> list[ResolvedExample]:
        key = (project_key, tuple(terms), issue_key)
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self.cache_seconds:
                self._cache.move_to_end(key)
                return hit[1]
        examples = self._search(project_key, issue_key, terms, bot_account_id)
        if examples is None:
            return []  # not cached: the next turn asks Jira again
        with self._lock:
            self._cache[key] = (now, examples)
            self._cache.move_to_end(key)
            while len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return examples

    def _search(
        self, project_key: str, issue_key: str, terms: list[str], bot_account_id: str | None
    ) -> list[ResolvedExample] | None:
        jql = resolved_jql(project_key, terms, exclude_key=issue_key)
        if jql is None:
            return []
        try:
            jira = jira_for_project(self.jira, project_key)  # the project's own account searches it
            issues = list(jira.search_issues(jql, fields=_SEARCH_FIELDS, max_results=_CANDIDATES))
        except JiraError as exc:
            log.warning("resolved_examples_unavailable", issue_key=issue_key, error=str(exc))
            return None
        documents = [_document(issue) for issue in issues]
        examples: list[ResolvedExample] = []
        for index in self.rank(terms, documents):
            example = _example(issues[index], bot_account_id)
            if example is not None:
                examples.append(example)
        return examples


def _recent_questions(conversation: Sequence[CommentView]) -> list[str]:
    """The customer's last messages, newest first, without our `[WhatsApp] Name: ` prefix: a
    name would find every other customer of that name."""
    mine = [c for c in conversation if c.kind == KIND_CUSTOMER and not c.internal and not c.history]
    mine.sort(key=lambda c: c.created, reverse=True)
    return [without_sender(c.text) for c in mine[:_RECENT_TURNS]]


def _fields(issue: Mapping[str, Any]) -> Mapping[str, Any]:
    value = issue.get("fields")
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    """A field's text: ADF on API v3, a wiki string on v2."""
    if isinstance(value, str):
        return value
    return text_from_doc(value) if isinstance(value, dict) else ""


def _raw_comments(issue: Mapping[str, Any]) -> list[dict[str, Any]]:
    page = _fields(issue).get("comment")
    comments = page.get("comments") if isinstance(page, dict) else None
    return [c for c in comments if isinstance(c, dict)] if isinstance(comments, list) else []


def _document(issue: Mapping[str, Any]) -> str:
    """What a resolved ticket is ranked on: its summary, description and public comments."""
    key = str(issue.get("key") or "")
    f = _fields(issue)
    public = [v.text for v in (comment_view(key, c) for c in _raw_comments(issue)) if not v.internal]
    return "\n".join([_text(f.get("summary")), _text(f.get("description")), *public])


def _example(issue: Mapping[str, Any], bot_account_id: str | None) -> ResolvedExample | None:
    key = str(issue.get("key") or "")
    views = [_inferred(comment_view(key, c), bot_account_id) for c in _raw_comments(issue)]
    return resolved_example(key, _text(_fields(issue).get("summary")), views, bot_account_id=bot_account_id)


def _inferred(view: CommentView, bot_account_id: str | None) -> CommentView:
    """Search results carry no comment properties: a comment the bot's account wrote is told
    apart by the prefix only the bot writes under that account. A person typing `[AI] …` is
    still a person (another author); an internal comment stays internal whatever it says."""
    if view.kind is not None or view.internal or not bot_account_id or view.author_id != bot_account_id:
        return view
    if view.text.startswith(CUSTOMER_PREFIX):
        return dataclasses.replace(view, kind=KIND_CUSTOMER)
    if view.text.startswith(AI_PREFIX):
        return dataclasses.replace(view, kind=KIND_AI)
    return view
