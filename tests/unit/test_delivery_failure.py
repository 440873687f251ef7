import pytest

from bot.rules.delivery_failure import explain_meta_error, failure_note

# Every code the notes must explain, with a word the explanation has to contain.
CODES = [
    (100, "invalid parameter"),
    (190, "operator"),
    (368, "blocked"),
    (130429, "throughput"),
    (130472, "experiment"),
    (131000, "went wrong at Meta"),
    (131005, "permission"),
    (131008, "missing"),
    (131009, "invalid parameter value"),
    (131021, "own WhatsApp number"),
    (131026, "could not deliver it to this number"),
    (131031, "locked"),
    (131042, "payment"),
    (131045, "not registered"),
    (131047, "24-hour window has closed"),
    (131048, "spam"),
    (131049, "ecosystem"),
    (131050, "stopped marketing messages"),
    (131051, "does not support this type of message"),
    (131052, "could not download the file"),
    (131053, "type or size"),
    (131056, "pair rate limit"),
    (132000, "number of parameters"),
    (132001, "does not exist in that language"),
    (132005, "too long"),
    (132007, "format policy"),
    (132012, "format the template expects"),
    (132015, "paused"),
    (132016, "disabled"),
]


@pytest.mark.parametrize(("code", "words"), CODES)
def test_each_code_is_explained_in_its_own_words(code, words):
    explained = explain_meta_error(code, "Title")
    assert words in explained
    assert explained.endswith(f" (Meta error {code}: Title)")
    assert not explained.startswith("WhatsApp refused to deliver it (")


def test_the_explanations_are_all_different():
    texts = {explain_meta_error(code) for code, _ in CODES}
    assert len(texts) == len(CODES)


def test_131026_reads_as_documented():
    assert explain_meta_error(131026, "Message undeliverable") == (
        "WhatsApp could not deliver it to this number (the number may not use WhatsApp, or its app is too old "
        "or has not accepted Meta's latest terms) (Meta error 131026: Message undeliverable)"
    )


@pytest.mark.parametrize(
    ("code", "title", "expected"),
    [
        (999999, "Something new", "WhatsApp refused to deliver it (Meta error 999999: Something new)"),
        (999999, None, "WhatsApp refused to deliver it (Meta error 999999)"),
        (None, "Odd failure", "WhatsApp refused to deliver it (Meta error: Odd failure)"),
        (None, None, "WhatsApp refused to deliver it"),
        (None, "   ", "WhatsApp refused to deliver it"),
        (True, None, "WhatsApp refused to deliver it"),
        ("131026", None, "WhatsApp refused to deliver it"),
    ],
)
def test_unknown_or_missing_codes_get_a_generic_sentence(code, title, expected):
    assert explain_meta_error(code, title) == expected


def test_titles_are_flattened_and_clipped():
    explained = explain_meta_error(131000, "line one\nline\x00two\r\n\x1b[31m" + "x" * 1000)
    title = explained.split("(Meta error 131000: ", 1)[1][:-1]
    assert len(title) == 200 and title.endswith("…")
    assert title.startswith("line one line two [31mxxx")
    assert not any(ord(c) < 32 for c in title)


def test_jira_markup_in_titles_is_left_as_plain_text():
    explained = explain_meta_error(131009, "[~admin] {code}*bold*")
    assert explained.endswith("(Meta error 131009: [~admin] {code}*bold*)")


def test_failure_note_names_what_why_and_what_it_said():
    note = failure_note(
        what="Your comment 10042 by Ana Agent",
        reason=explain_meta_error(131026, "Message undeliverable"),
        text="Your order has shipped.",
    )
    first, said, text = note.split("\n")
    assert first.startswith(
        "Your comment 10042 by Ana Agent did not reach the customer on WhatsApp: WhatsApp could not"
    )
    assert first.endswith("(Meta error 131026: Message undeliverable).")
    assert said == "It said:"
    assert text == "Your order has shipped."


@pytest.mark.parametrize(
    ("reason", "first_line"),
    [
        ("it was too big", "The AI reply did not reach the customer on WhatsApp: it was too big."),
        ("it was too big.", "The AI reply did not reach the customer on WhatsApp: it was too big."),
        ("really?", "The AI reply did not reach the customer on WhatsApp: really?"),
    ],
)
def test_failure_note_ends_its_sentence_once(reason, first_line):
    assert failure_note(what="The AI reply", reason=reason, text=None) == first_line


@pytest.mark.parametrize("text", [None, ""])
def test_failure_note_without_text_is_one_line(text):
    note = failure_note(what="The file invoice.pdf from comment 10042", reason="too big", text=text)
    assert "\n" not in note and "It said" not in note


def test_failure_note_clips_long_text_to_500_characters():
    note = failure_note(what="The AI reply", reason="x", text="y" * 2000)
    said = note.split("\nIt said:\n", 1)[1]
    assert len(said) == 500 and said.endswith("…")
    short = failure_note(what="The AI reply", reason="x", text="z" * 500)
    assert short.endswith("\n" + "z" * 500)
