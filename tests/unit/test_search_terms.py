import pytest

from bot.rules.search_terms import query_terms, resolved_jql, text_search_value
from sandbox.jira.jql import And, Clause, Value, parse
from sandbox.jira.jqltext import All, Any_, Phrase, Term, Wildcard, Without, parse_text_query

LUCENE_SPECIAL = set('+-&|!(){}[]^~*?:\\/"')

# -- terms -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Where is the refund for my order?", ["refund", "order"]),
        ("Hola, ¿dónde está mi reembolso del pedido?", ["reembolso", "pedido"]),
        ("Olá, não recebi o meu reembolso da encomenda", ["recebi", "reembolso", "encomenda"]),
        ("Hallo, ich habe die Rücksendung für meine Bestellung", ["rücksendung", "bestellung"]),
        ("Bonjour, je n'ai pas reçu le remboursement de ma commande", ["reçu", "remboursement", "commande"]),
    ],
    ids=["english", "spanish", "portuguese", "german", "french"],
)
def test_stop_words_are_dropped_per_language(text, terms):
    assert query_terms([text]) == terms


def test_stop_words_match_without_accents_as_customers_type_them():
    assert query_terms(["esta aqui tambien fur nao pedido"]) == ["pedido"]


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("order 1042 arrived", ["order", "1042", "arrived"]),
        ("only 12 or 7 items", ["items"]),  # short numbers are quantities
        ("code a1 b", ["code", "a1"]),  # letters and digits: a term from 2 characters
        ("x" * 40 + " " + "y" * 41, ["x" * 40]),
        ("https://shop.example/track?id=99", ["https", "shop", "example", "track", "id"]),
        ("snake_case word", ["snake", "case", "word"]),
    ],
)
def test_numbers_and_lengths(text, terms):
    assert query_terms([text]) == terms


def test_unicode_words_casefolded_and_composed():
    decomposed = "Mu\u0308ller"  # ü as u + combining diaeresis
    assert query_terms([decomposed + " STRASSE Straße ÉCRAN"]) == ["müller", "strasse", "écran"]


def test_emoji_and_long_unspaced_sentences_give_no_terms():
    sentence = "退货退款需要多久才能到账呢请告诉我们谢谢您的帮助非常感谢你们的服务很好的体验呀我们等待回复"
    assert len(sentence) > 40
    assert query_terms(["😀😀 " + sentence]) == []


def test_deduped_newest_text_first_in_order():
    texts = ["tracking number please", "refund tracking", "parcel damaged refund"]
    assert query_terms(texts) == ["tracking", "number", "refund", "parcel", "damaged"]


def test_capped():
    words = [f"word{i}" for i in range(30)]
    assert query_terms([" ".join(words)]) == words[:12]
    assert query_terms([" ".join(words)], max_terms=3) == words[:3]
    assert query_terms([" ".join(words)], max_terms=0) == []


def test_lucene_operator_words_are_no_terms():
    assert query_terms(["refund AND NOT OR TO invoice"]) == ["refund", "invoice"]


def test_jql_reserved_words_stay_terms_they_are_quoted():
    assert query_terms(["order empty null by"]) == ["order", "empty", "null"]


def test_nothing_to_search():
    assert query_terms([]) == []
    assert query_terms(["hi!", "thanks :)", "ok"]) == []


# -- the JQL value ---------------------------------------------------------------------------------


def test_any_of_the_terms():
    assert text_search_value(["refund", "1042"]) == '"refund OR 1042"'
    assert text_search_value([]) == ""


def test_escaping_as_atlassian_documents_it():
    # Atlassian: to search for "[example]" write text ~ "\\[example\\]".
    assert text_search_value(["[example]"]) == '"\\\\[example\\\\]"'
    assert text_search_value(['say"hi']) == '"say\\\\\\"hi"'
    assert text_search_value(["back\\slash"]) == '"back\\\\\\\\slash"'


def test_operator_words_whitespace_controls_and_punctuation_only():
    assert (
        text_search_value(["OR", "and", "a b", "x\ny", "\x00z\x7f", "()", "\\"]) == '"a OR b OR x OR y OR z"'
    )


def _lucene_words(value: str) -> list[str]:
    """The value as Lucene reads it, split at unescaped blanks; fails on an unescaped special."""
    words, current, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            assert i + 1 < len(value), "dangling escape"
            current.append(value[i + 1])
            i += 2
            continue
        assert ch not in LUCENE_SPECIAL, f"unescaped {ch!r} in {value!r}"
        if ch.isspace():
            if current:
                words.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if current:
        words.append("".join(current))
    return words


def _only_any_of_words(node):
    if node is None or isinstance(node, Term | Phrase):
        return True
    if isinstance(node, All | Without | Wildcard):
        return False
    return isinstance(node, Any_) and all(_only_any_of_words(item) for item in node.items)


HOSTILE = [
    'a"b',
    'refund" OR project = X OR text ~ "',
    '") OR project = X',
    "\\",
    '\\"',
    '\\\\" OR 1=1 --',
    "OR 1=1",
    "order by empty null is not in and or",
    "ORDER BY created ASC",
    "line one\nproject = OTHER\r\n\x00",
    "refund* ?x ~2 ^3 +must -not !bang && || (group) {range TO x} [a TO b] path/to:file",
    "'single' quotes",
    "\u202eoverride \u2066isolate \u200bzero",
    "x" * 100_000,
    "word " * 20_000,
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("through_terms", [True, False], ids=["query_terms", "raw_terms"])
def test_no_input_changes_the_query(hostile, through_terms):
    terms = query_terms([hostile]) if through_terms else [hostile, "refund"]
    jql = resolved_jql("SUP", terms, exclude_key="SUP-7")
    if jql is None:
        assert through_terms and not terms
        return
    query = parse(jql)
    assert query.order_by == (("updated", False),)
    assert isinstance(query.where, And)
    project, category, text, key = query.where.items
    assert project == Clause("project", "=", (Value("string", "SUP"),))
    assert category == Clause("statusCategory", "=", (Value("word", "Done"),))
    assert key == Clause("key", "!=", (Value("string", "SUP-7"),))
    assert (text.field, text.op, text.values[0].kind) == ("text", "~", "string")
    # Inside the value: words joined by OR, every Lucene special escaped, nothing else.
    words = _lucene_words(text.values[0].text)
    assert words[1::2] == ["OR"] * (len(words) // 2)
    assert all(w.upper() not in ("AND", "OR", "NOT", "TO") for w in words[0::2])
    assert _only_any_of_words(parse_text_query(text.values[0].text))


def test_whole_query():
    assert resolved_jql("SUP", ["refund", "1042"], exclude_key="SUP-12") == (
        'project = "SUP" AND statusCategory = Done AND text ~ "refund OR 1042" '
        'AND key != "SUP-12" ORDER BY updated DESC'
    )
    assert resolved_jql("A_1", ["x1"], exclude_key=None) == (
        'project = "A_1" AND statusCategory = Done AND text ~ "x1" ORDER BY updated DESC'
    )


def test_no_terms_no_query():
    assert resolved_jql("SUP", [], exclude_key="SUP-1") is None
    assert resolved_jql("SUP", ["OR", "()"], exclude_key="SUP-1") is None


@pytest.mark.parametrize(
    "project", ["sup", "1SUP", "SUP-1", 'SUP" OR project = X', "SUP\n", "", "ŜUP", "SUP ", None]
)
def test_project_key_validated(project):
    with pytest.raises(ValueError, match="project key"):
        resolved_jql(project, ["refund"], exclude_key=None)


@pytest.mark.parametrize("key", ["SUP", "sup-1", "SUP-1 OR x", 'SUP-1"', "SUP-١", "SUP-1\n", "-1", ""])
def test_issue_key_validated(key):
    with pytest.raises(ValueError, match="issue key"):
        resolved_jql("SUP", ["refund"], exclude_key=key)
