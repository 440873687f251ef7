"""The offline AI evaluation (`python -m tests.benchmarks.ai_eval`): its data is well-formed and
it still runs. Its figures are not asserted here: they are the benchmark's output, not a test."""

from __future__ import annotations

import math

import pytest

from bot.rules.knowledge import split_sections
from tests.benchmarks import ai_eval
from tests.benchmarks.ai_eval import TICKET, knowledge_files, load_questions, load_tickets, section_id

MAX_SECTION_CHARS = 2000  # KnowledgeBase's default: a longer section would be cut in parts


@pytest.fixture(scope="module")
def sections() -> list[str]:
    found = []
    for name, path in knowledge_files():
        found += [section_id(s) for s in split_sections(path.read_text(encoding="utf-8"), name)]
    return found


def test_there_are_enough_questions_with_unique_ids() -> None:
    questions = load_questions()
    assert len(questions) >= 30
    assert len({q.id for q in questions}) == len(questions)
    assert all(q.text.strip() and q.expect for q in questions)


def test_every_expected_source_exists(sections) -> None:
    _, tickets = load_tickets()
    resolved = {TICKET + t.id for t in tickets if t.resolved}
    missing = [
        (q.id, source)
        for q in load_questions()
        for source in q.expect
        if source not in (resolved if source.startswith(TICKET) else sections)
    ]
    assert missing == []


def test_both_kinds_of_source_and_hard_questions_are_asked() -> None:
    questions = load_questions()
    kinds = {ai_eval.kind(q) for q in questions}
    tags = {tag for q in questions for tag in q.tags}
    assert kinds == {"section", "ticket"}
    assert {"typo", "es", "pt", "de"} <= tags


def test_sections_are_whole_and_titled_uniquely(sections) -> None:
    assert len(sections) >= 30
    assert len(set(sections)) == len(sections)
    for name, path in knowledge_files():
        for s in split_sections(path.read_text(encoding="utf-8"), name):
            assert len(s.text) <= MAX_SECTION_CHARS, s.title


def test_tickets_are_well_formed() -> None:
    project, tickets = load_tickets()
    assert project.isupper()
    assert len({t.id for t in tickets}) == len(tickets)
    resolved = [t for t in tickets if t.resolved]
    assert len(resolved) >= 25
    assert all(t.answer and t.category == "done" for t in resolved)
    # The leak checks look for these markers: every note and unresolved ticket must carry one.
    notes = [t.internal for t in tickets if t.internal]
    assert len(notes) >= 5 and all(ai_eval.INTERNAL_MARK in n for n in notes)
    unresolved = [t for t in tickets if not t.resolved]
    assert unresolved and all(
        t.category != "done" and ai_eval.UNRESOLVED_MARK in t.question for t in unresolved
    )


def test_the_eval_runs_on_a_few_questions_and_gives_sane_figures() -> None:
    questions = load_questions()
    subset = [next(q for q in questions if ai_eval.kind(q) == k) for k in ("section", "ticket")]
    outcomes = ai_eval.evaluate(subset)

    figures = ai_eval.summarise(outcomes)
    assert figures["questions"] == 2
    for name in ("recall@3", "recall@3 sections", "recall@3 tickets", "recall@3 ranked", "MRR"):
        assert 0.0 <= figures[name] <= 1.0, name
    assert all(o.calls >= o.searches >= 1 for o in outcomes)  # the sandbox counted the real calls
    assert figures["searches on repeat"] == 0  # the same turn again is served from the cache
    assert figures["leaks"] == 0
    assert not math.isnan(figures["ms/turn p50"])
    assert "recall@3 overall" in ai_eval.table(outcomes)


def test_the_leak_check_finds_notes_unresolved_tickets_and_the_own_ticket() -> None:
    _, tickets = load_tickets()
    note = next(t.internal for t in tickets if t.internal)
    unresolved = next(TICKET + t.id for t in tickets if not t.resolved)
    assert ai_eval.leaks(tickets, "A clean answer.", ["ticket:T01"], "SHOP-99") == []
    assert ai_eval.leaks(tickets, f"Answer: {note}", [], "SHOP-99") == ["internal note in the text"]
    assert ai_eval.leaks(tickets, "internal-only-1 shouted", [], "SHOP-99") == ["internal note in the text"]
    assert ai_eval.leaks(tickets, "", [unresolved], "SHOP-99") == ["unresolved ticket"]
    assert ai_eval.leaks(tickets, "", ["SHOP-99"], "SHOP-99") == ["the customer's own ticket"]
