"""The Jira sandbox's `~` (text search) semantics, on its pure JQL parser and evaluator."""

from __future__ import annotations

import dataclasses

import pytest

from sandbox.jira.jql import Clause, JqlError, parse
from sandbox.jira.jqleval import Context, IssueView, compile_query
from sandbox.jira.jqltext import analyse, matches, parse_text_query, singular

BASE = IssueView(
    id="10000",
    key="SUP-1",
    project_key="SUP",
    project_id="10000",
    project_name="Support",
    labels=(),
    created_ms=1_000,
    updated_ms=1_000,
    status_name="Done",
    status_category="done",
    issuetype="Task",
    reporter="bot",
)


def issue(n: int, **facts) -> IssueView:
    return dataclasses.replace(BASE, id=str(10000 + n), key=f"SUP-{n}", **facts)


ISSUES = [
    issue(1, summary="Refund for a lost parcel", updated_ms=3_000),
    issue(2, description="The boxes arrived crushed", updated_ms=1_000),
    issue(3, comments=("Customer asked about order 1042",), updated_ms=2_000),
    issue(4, comments=("Internal: refunds need approval",), status_category="indeterminate"),
    issue(5, summary="Invoice copy", description="Send the invoice again"),
    issue(6, summary="Parcel tracking", comments=("see the e-mail from the courier",)),
]


def keys(jql: str, issues: list[IssueView] = ISSUES) -> list[str]:
    known = {i.key for i in issues}
    predicate, order = compile_query(parse(jql), Context("UTC", 10_000, "bot", lambda k: k.upper() in known))
    return [i.key for i in order([i for i in issues if predicate(i)])]


def test_words_side_by_side_must_all_be_there():
    assert keys('text ~ "refund parcel"') == ["SUP-1"]
    assert keys('text ~ "parcel"') == ["SUP-6", "SUP-1"]  # newest first by default


def test_or_finds_any_of_the_words_across_summary_description_and_comments():
    assert keys('text ~ "refund OR boxes OR 1042" ORDER BY key ASC') == ["SUP-1", "SUP-2", "SUP-3", "SUP-4"]


def test_the_words_of_an_and_must_be_in_one_field():
    # SUP-6 has "parcel" in its summary and "courier" in a comment: Jira runs the query per field.
    assert keys('text ~ "parcel courier"') == []
    assert keys('text ~ "courier e-mail"') == ["SUP-6"]


def test_lower_case_or_is_a_stop_word_not_an_operator():
    assert keys('text ~ "refund or boxes"') == []
    assert keys('text ~ "refund OR boxes" ORDER BY key') == ["SUP-1", "SUP-2", "SUP-4"]


def test_plurals_fold_both_ways():
    assert keys('text ~ "refunds" ORDER BY key') == ["SUP-1", "SUP-4"]
    assert keys('text ~ "box"') == ["SUP-2"]
    assert keys('text ~ "parcels lost"') == ["SUP-1"]


@pytest.mark.parametrize(
    ("word", "folded"),
    [
        ("refunds", "refund"),
        ("parcels", "parcel"),
        ("boxes", "box"),
        ("watches", "watch"),
        ("parties", "party"),
        ("address", "address"),
        ("status", "status"),
        ("days", "day"),
        ("gas", "gas"),
        ("1042", "1042"),
    ],
)
def test_singular(word, folded):
    assert singular(word) == folded


def test_internal_comments_are_searched_like_any_other():
    assert keys('text ~ "approval"') == ["SUP-4"]
    assert keys('comment ~ "approval"') == ["SUP-4"]


def test_stop_words_are_dropped_and_a_query_of_stop_words_matches_nothing():
    assert keys('text ~ "the refund for a parcel"') == ["SUP-1"]
    assert keys('text ~ "the a of"') == []
    assert analyse("The customer's boxes are in the van") == ["customer", "box", "van"]


def test_not_minus_and_parentheses():
    assert keys('summary ~ "invoice -copy"') == []
    assert keys('summary ~ "invoice NOT copy"') == []
    assert keys('summary ~ "invoice !copy"') == []
    # Per field: SUP-5's description has "invoice" without "copy".
    assert keys('text ~ "invoice -copy"') == ["SUP-5"]
    assert keys('text ~ "(refund OR invoice) AND parcel"') == ["SUP-1"]
    assert keys('text ~ "-refund"') == []  # negations alone match nothing, as in Lucene


def test_a_quoted_phrase_wants_the_words_in_order():
    assert keys(r'text ~ "\"lost parcel\""') == ["SUP-1"]
    assert keys(r'text ~ "\"parcel lost\""') == []


def test_an_escaped_special_character_is_literal():
    # JQL's `\\-` reaches the text query as `\-`: a literal minus, so the word is searched, not excluded.
    assert keys(r'text ~ "\\-refund"') == keys('text ~ "refund"') != []
    assert keys(r'text ~ "refund\\!"') == keys('text ~ "refund"')
    assert keys('text ~ "ord*"') == ["SUP-3"]
    assert keys(r'text ~ "ord\\*"') == []  # an escaped star is no wildcard


def test_a_trailing_wildcard_matches_word_prefixes():
    assert keys('text ~ "refun*" ORDER BY key') == ["SUP-1", "SUP-4"]
    assert keys('text ~ "b?xes"') == ["SUP-2"]


def test_matching_is_case_insensitive():
    assert keys('summary ~ "REFUND"') == ["SUP-1"]


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ('text ~ "*refund"', "The text query '*refund' for field 'text' is not allowed to start with '*'."),
        ('text ~ "?efund"', "The text query '?efund' for field 'text' is not allowed to start with '?'."),
        ('text ~ ""', "The field 'text' does not support searching for an empty string."),
        ('text ~ "   "', "The field 'text' does not support searching for an empty string."),
        ('text ~ "(refund"', "Unable to parse the text '(refund' for field 'text'."),
        ('text ~ "refund OR"', "Unable to parse the text 'refund OR' for field 'text'."),
        (r'text ~ "refund\\"', "Unable to parse the text 'refund\\' for field 'text'."),
        ('text !~ "refund"', "The operator '!~' is not supported by the 'text' field."),
        ('text = "refund"', "The operator '=' is not supported by the 'text' field."),
    ],
)
def test_bad_text_queries_are_refused_in_jiras_words(jql, message):
    with pytest.raises(JqlError) as err:
        keys(jql)
    assert str(err.value) == message


def test_an_unknown_jql_escape_is_a_syntax_error():
    with pytest.raises(JqlError, match=r"'\\-' is an illegal JQL escape sequence"):
        parse(r'text ~ "\-refund"')
    clause = parse(r'summary ~ "tab\there \u00e9"').where
    assert isinstance(clause, Clause) and clause.values[0].text == "tab\there é"


def test_not_contains_on_a_single_field():
    assert "SUP-1" not in keys('summary !~ "refund"')
    assert "SUP-2" in keys('summary !~ "refund"')


def test_the_ai_search_combines_text_status_category_key_and_order():
    jql = (
        'project = "SUP" AND statusCategory = Done AND text ~ "refund OR parcel OR 1042" '
        'AND key != "SUP-6" ORDER BY updated DESC'
    )
    # SUP-4 matches the words but is not Done; SUP-6 is excluded by key.
    assert keys(jql) == ["SUP-1", "SUP-3"]


def test_matches_never_matches_an_empty_text_or_an_empty_query():
    assert matches(parse_text_query("refund"), "") is False
    assert matches(None, "refund") is False
