import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rules.adf import clean_text, doc_from_text, text_from_doc
from bot.rules.wiki import ESCAPABLE, ZWSP, escape_wiki, unescape_wiki

HOSTILE = [
    "[~admin] please look",
    "[~accountid:5b10a2844c20165700ede21g]",
    "[click me|http://evil.example/login]",
    "[http://evil.example]",
    "{code}rm -rf /{code}",
    "{noformat}x{noformat}",
    "{color:red}alarm{color}",
    "{panel:title=Hi}x{panel}",
    "*bold* _it_ -strike- +ins+ ^sup^ ~sub~",
    "??cite?? {{mono}}",
    "!image.png! !http://evil.example/pixel.gif|width=1!",
    "|cell|cell|\n||head||head||",
    "h1. Heading\n  h6. small\nbq. quoted",
    "# one\n* two\n- three\n** nested",
    "----\n---\n--",
    "line\\\\break and \\\\ and \\ alone and \\* and \\\\\\",
    "smileys :) :( :P :D ;) (y) (n) (i) (/) (x) (!) (+) (-) (?) (on) (off) (*) (*r) (flag)",
    "@here @channel @admin",
    "%percent% and 50% off",
    "\r\nwindows\rold mac\n",
    "\u200bh1. sneaky zero width and :\u200bP and \\\u200b",
    "ABC-123 mentions an issue key",
]


# --- ADF -----------------------------------------------------------------------------------------


def _walk(node):
    yield node
    for child in node.get("content", []):
        yield from _walk(child)


def _assert_plain_doc(doc):
    assert doc["type"] == "doc" and doc["version"] == 1 and doc["content"]
    for node in _walk(doc):
        assert node["type"] in {"doc", "paragraph", "text", "hardBreak"}
        assert "marks" not in node and "attrs" not in node
        if node["type"] == "text":
            assert node["text"] and not re.search("[\x00-\x08\x0b-\x1f\x7f]", node["text"])
    for block in doc["content"]:
        assert block["type"] == "paragraph"


def test_doc_from_text_shapes():
    assert doc_from_text("hello") == {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "hello"}]}],
    }
    assert doc_from_text("a\nb\n\n\n  \nc") == {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "a"},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "b"},
                ],
            },
            {"type": "paragraph", "content": [{"type": "text", "text": "c"}]},
        ],
    }


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "\x00\x01", "\r\n\r\n"])
def test_empty_text_is_one_empty_paragraph(text):
    assert doc_from_text(text) == {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": []}],
    }


def test_rejected_characters_are_stripped():
    doc = doc_from_text("a\x00b\x07c\td\x7fe\r\nf\ud800g")
    assert doc["content"][0]["content"] == [
        {"type": "text", "text": "abc\tde"},
        {"type": "hardBreak"},
        {"type": "text", "text": "fg"},
    ]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_stays_plain_text_in_adf(text):
    doc = doc_from_text(text)
    _assert_plain_doc(doc)
    assert text_from_doc(doc).split() == clean_text(text).split()


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_makes_a_plain_doc_that_reads_back(text):
    doc = doc_from_text(text)
    _assert_plain_doc(doc)
    assert text_from_doc(doc).split() == clean_text(text).split()


def _para(text):
    return {"type": "paragraph", "content": [{"type": "text", "text": text}]}


def _item(*blocks):
    return {"type": "listItem", "content": list(blocks)}


AGENT_COMMENT = {
    "type": "doc",
    "version": 1,
    "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Update"}]},
        {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": "Hi "},
                {"type": "mention", "attrs": {"id": "5b10", "text": "@Ana"}},
                {"type": "text", "text": ", thanks ", "marks": [{"type": "strong"}]},
                {"type": "emoji", "attrs": {"shortName": ":smile:", "text": "😄"}},
                {"type": "hardBreak"},
                {"type": "text", "text": "see "},
                {"type": "inlineCard", "attrs": {"url": "https://example.com/t/1"}},
                {"type": "mention", "attrs": {"id": "abc"}},
            ],
        },
        {
            "type": "bulletList",
            "content": [
                _item(_para("one")),
                _item(
                    _para("two"),
                    {
                        "type": "orderedList",
                        "attrs": {"order": 3},
                        "content": [_item(_para("a")), _item(_para("b"))],
                    },
                ),
            ],
        },
        {
            "type": "codeBlock",
            "attrs": {"language": "sh"},
            "content": [{"type": "text", "text": "ls -l\npwd"}],
        },
        {"type": "blockquote", "content": [_para("quoted")]},
        {"type": "rule"},
        {"type": "panel", "attrs": {"panelType": "info"}, "content": [_para("in a panel")]},
        {
            "type": "table",
            "content": [
                {
                    "type": "tableRow",
                    "content": [
                        {"type": "tableHeader", "content": [_para("k")]},
                        {"type": "tableHeader", "content": [_para("v")]},
                    ],
                },
            ],
        },
        {"type": "futureNode", "content": [{"type": "text", "text": "still read"}]},
        {
            "type": "paragraph",
            "content": [
                {"type": "status", "attrs": {"text": "DONE"}},
                {"type": "text", "text": " on "},
                {"type": "date", "attrs": {"timestamp": "1700000000000"}},
            ],
        },
    ],
}


def test_text_from_doc_reads_an_agent_comment():
    assert text_from_doc(AGENT_COMMENT) == (
        "Update\n\n"
        "Hi @Ana, thanks 😄\nsee https://example.com/t/1@abc\n\n"
        "- one\n- two\n  3. a\n  4. b\n\n"
        "```\nls -l\npwd\n```\n\n"
        "> quoted\n\n"
        "---\n\n"
        "in a panel\n\n"
        "k | v\n\n"
        "still read\n\n"
        "DONE on 2023-11-14"
    )


def test_text_from_doc_leaves_files_out():
    # The files go to the customer as files; their names must not also arrive as text.
    media = {
        "type": "media",
        "attrs": {"id": "6e7c-uuid", "type": "file", "collection": "", "alt": "invoice.pdf"},
    }
    doc = {
        "type": "doc",
        "version": 1,
        "content": [
            _para("Here is your invoice"),
            {"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [media]},
            {"type": "mediaGroup", "content": [media, media]},
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "and "},
                    {"type": "mediaInline", "attrs": {"id": "77aa", "type": "file", "alt": "photo.png"}},
                    {"type": "text", "text": "a photo"},
                ],
            },
        ],
    }
    text = text_from_doc(doc)
    assert text == "Here is your invoice\n\nand a photo"
    assert "invoice.pdf" not in text and "photo.png" not in text


@pytest.mark.parametrize(
    "doc",
    [
        None,
        5,
        [],
        {},
        {"type": "doc"},
        {"type": "doc", "content": "x"},
        {"content": [None, 1, "s", []]},
        {"type": "mention"},
        {"type": "date", "attrs": {"timestamp": "soon"}},
        {"type": "text", "text": 5},
        {"type": "bulletList", "content": [1, {"type": "listItem"}]},
        {"type": "orderedList", "attrs": {"order": True}},
    ],
)
def test_text_from_doc_tolerates_any_shape(doc):
    assert isinstance(text_from_doc(doc), str)


def test_text_from_doc_of_a_string_is_the_string():
    assert text_from_doc("  wiki body ") == "wiki body"


def test_text_from_doc_survives_deep_nesting():
    node = {"type": "text", "text": "deep"}
    for _ in range(5000):
        node = {"type": "paragraph", "content": [node]}
    assert isinstance(text_from_doc({"type": "doc", "content": [node]}), str)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: (
        st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(["type", "content", "attrs", "text"]), c)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_text_from_doc_never_raises(doc):
    assert isinstance(text_from_doc(doc), str)


# --- wiki markup ---------------------------------------------------------------------------------


def find_markup(wiki: str) -> list[str]:
    """A deliberately paranoid model of Jira's wiki renderer: any markup character that is not
    backslash-escaped counts as markup, as do line-start block tokens, `\\\\` and letter emoticons."""
    found = [m.group() for m in re.finditer(r"(?m)^\s*(?:h[1-6]|bq)\.", wiki)]
    found += [m.group() for m in re.finditer(r"[:;][PpDd](?![A-Za-z0-9])", wiki)]
    i = 0
    while i < len(wiki):
        ch, nxt = wiki[i], wiki[i + 1 : i + 2]
        if ch == "\\":
            if nxt and nxt in ESCAPABLE:
                i += 2  # an escape: the character is shown literally
                continue
            if nxt == "\\":
                found.append("\\\\")
        elif ch in ESCAPABLE:
            found.append(ch)
        i += 1
    return found


@pytest.mark.parametrize("text", [t for t in HOSTILE if not t.startswith(("\r", "ABC", "\u200b"))])
def test_detector_sees_markup_in_raw_hostile_text(text):
    assert find_markup(text)


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_hostile_text_has_no_markup_and_round_trips(text):
    escaped = escape_wiki(text)
    assert find_markup(escaped) == []
    assert unescape_wiki(escaped) == text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("[~admin]", "\\[\\~admin\\]"),
        ("*bold*", "\\*bold\\*"),
        ("{{mono}}", "\\{\\{mono\\}\\}"),
        ("h1. Title", ZWSP + "h1. Title"),
        ("x\n bq. q", "x\n " + ZWSP + "bq. q"),
        ("ah1. mid-line", "ah1. mid\\-line"),
        ("a\\\\b", "a\\" + ZWSP + "\\" + ZWSP + "b"),
        ("so :P", "so :" + ZWSP + "P"),
        (":Party", ":Party"),
        ("plain words, 100 ok.", "plain words, 100 ok."),
    ],
)
def test_escape_wiki_examples(text, escaped):
    assert escape_wiki(text) == escaped


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list(ESCAPABLE + "\\:;PDhb1.q \n\t\r" + ZWSP + "ax")) | st.characters())
)
def test_escape_wiki_round_trips_and_leaves_no_markup(text):
    escaped = escape_wiki(text)
    assert find_markup(escaped) == []
    assert unescape_wiki(escaped) == text.replace("\r\n", "\n").replace("\r", "\n")
