import random

import pytest

from bot.rules.markdown import markdown_to_whatsapp
from bot.rules.outgoing import agent_message, ai_comment_text, split_message

# --- split_message ----------------------------------------------------------------------------


def check(parts, text, limit):
    assert all(0 < len(p) <= limit for p in parts)
    assert all(p.strip() for p in parts)
    # order and content kept: only whitespace at the cuts may go
    assert "".join("".join(p.split()) for p in parts) == "".join(text.split())


@pytest.mark.parametrize(
    ("text", "parts"), [("", []), ("   \n\n \t", []), ("hi", ["hi"]), ("\n\n  hi  \n", ["  hi"])]
)
def test_small_inputs(text, parts):
    assert split_message(text, 10) == parts


def test_paragraphs_first():
    text = "aaaa bbbb.\n\ncccc dddd.\n\neeee"
    assert split_message(text, 22) == ["aaaa bbbb.\n\ncccc dddd.", "eeee"]


def test_lines_before_sentences():
    assert split_message("one. two\nthree", 12) == ["one. two", "three"]


@pytest.mark.parametrize(
    ("text", "limit", "parts"),
    [
        ("First one. Second one. Third.", 23, ["First one. Second one.", "Third."]),
        ('Really?! Yes. "Quoted." Next', 24, ['Really?! Yes. "Quoted."', "Next"]),
        ("第一句。第二句。第三句。", 8, ["第一句。第二句。", "第三句。"]),
        ("No sentence end here at all", 12, ["No sentence", "end here at", "all"]),
        ("x" * 25, 10, ["x" * 10, "x" * 10, "x" * 5]),
    ],
    ids=["sentences", "quotes", "cjk", "words", "hard-cut"],
)
def test_fallback_levels(text, limit, parts):
    assert split_message(text, limit) == parts


def test_hard_cut_keeps_accent_with_letter():
    text = "a" * 9 + "e\u0301" + "b" * 5
    parts = split_message(text, 10)
    assert parts[0] == "a" * 9 and parts[1].startswith("e\u0301")


def test_hard_cut_keeps_zwj_emoji_sequence():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    parts = split_message("a" * 8 + family + "b", 10)
    assert parts[1].startswith(family)
    assert all(len(p) <= 10 for p in parts)


def test_whatsapp_limit_default():
    text = ("Sentence number. " * 600).strip()
    parts = split_message(text)
    check(parts, text, 4096)
    assert len(parts) == 3


@pytest.mark.parametrize("seed", range(25))
def test_random_texts_never_exceed_limit(seed):
    rng = random.Random(seed)
    alphabet = [
        "a",
        "b",
        " ",
        "\n",
        "\n\n",
        ".",
        "!",
        "\t",
        "é",
        "\u0301",
        "\u200d",
        "\U0001f600",
        "。",
        "  ",
    ]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
    limit = rng.randint(1, 40)
    check(split_message(text, limit), text, limit)


@pytest.mark.parametrize("limit", [0, -5, 1.5, True, None])
def test_bad_limit(limit):
    with pytest.raises(ValueError):
        split_message("x", limit)


def test_limit_one():
    assert split_message("ab c", 1) == ["a", "b", "c"]


def test_combining_run_cannot_stall():
    text = "a" + "\u0301" * 50
    check(split_message(text, 5), text, 5)


# --- markdown_to_whatsapp ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("md", "wa"),
    [
        ("**bold**", "*bold*"),
        ("__bold__", "*bold*"),
        ("*it*", "_it_"),
        ("_it_", "_it_"),
        ("~~gone~~", "~gone~"),
        ("***both***", "*_both_*"),
        ("**a *b* c**", "*a _b_ c*"),
        ("**one** and **two**", "*one* and *two*"),
        ("use `x = 1` here", "use `x = 1` here"),
        ("`**not bold**`", "`**not bold**`"),
        ("``a`b``", "```a`b```"),
        ("# Title", "*Title*"),
        ("### Deep **title** ###", "*Deep *title**"),
        ("## **Bold title**", "*Bold title*"),
        ("#hashtag", "#hashtag"),
        ("#", ""),
        ("[docs](https://x.io/a_b_c)", "docs (https://x.io/a_b_c)"),
        ("[https://x.io](https://x.io)", "https://x.io"),
        ('[**Go**](https://x.io "title")', "*Go* (https://x.io)"),
        ("![alt](https://x.io/i.png)", "alt (https://x.io/i.png)"),
        ("<https://x.io/*a*>", "https://x.io/*a*"),
        ("see https://x.io/_a_/*b* now", "see https://x.io/_a_/*b* now"),
        ("* one\n* two", "\u2022 one\n\u2022 two"),
        ("- one\n  - nested **b**", "\u2022 one\n  \u2022 nested *b*"),
        ("+ plus", "\u2022 plus"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("> quoted *it*", "> quoted _it_"),
        ("---", "\u2014\u2014\u2014"),
        ("* * *", "\u2014\u2014\u2014"),
        ("snake_case_name and __init__", "snake_case_name and *init*"),
        ("2 * 3 * 4", "2 * 3 * 4"),
        ("\\*literal\\*", "*literal*"),
        ("a\r\nb", "a\nb"),
        ("", ""),
        ("plain text", "plain text"),
        ("**unclosed bold", "**unclosed bold"),
        ("**bold\nacross**", "**bold\nacross**"),  # emphasis does not span lines
    ],
)
def test_markdown(md, wa):
    assert markdown_to_whatsapp(md) == wa


@pytest.mark.parametrize(
    ("md", "wa"),
    [
        ("```python\nx = **1**\n# not heading\n```", "```\nx = **1**\n# not heading\n```"),
        ("before **b**\n```\n* keep\n```\nafter *i*", "before *b*\n```\n* keep\n```\nafter _i_"),
        ("~~~\ncode\n~~~", "```\ncode\n```"),
        ("```\nnever closed **x**", "```\nnever closed **x**\n```"),
        ("````\n```\ninner\n```\n````", "```\n```\ninner\n```\n```"),
    ],
    ids=["lang-dropped", "between-prose", "tildes", "unclosed", "longer-fence"],
)
def test_fenced_code(md, wa):
    assert markdown_to_whatsapp(md) == wa


# --- framing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "fmt", "out"),
    [
        ("Ana Lima", "Shipped.", "*{name}:* {text}", "*Ana Lima:* Shipped."),
        ("  Ana\nLima  ", "x", "*{name}:* {text}", "*Ana Lima:* x"),
        ("**Ana**", "x", "*{name}:* {text}", "*Ana:* x"),
        ("", "x", "*{name}:* {text}", "*Agent:* x"),
        ("{text}", "T", "*{name}:* {text}", "*{text}:* T"),
        ("Ana", "{name} {0} {text.__class__}", "*{name}:* {text}", "*Ana:* {name} {0} {text.__class__}"),
        ("Ana", "x", "{text}\n— {name} {unknown}", "x\n— Ana {unknown}"),
    ],
    ids=[
        "plain",
        "multiline-name",
        "markup-name",
        "empty-name",
        "name-placeholder",
        "text-placeholders",
        "custom",
    ],
)
def test_agent_message(name, text, fmt, out):
    assert agent_message(name, text, fmt) == out


def test_agent_message_format_needs_text():
    with pytest.raises(ValueError):
        agent_message("Ana", "x", "{name} said something")


@pytest.mark.parametrize(
    ("reply", "out"), [("Hi", "[AI] Hi"), ("  Hi\n", "[AI] Hi"), ("[AI] x", "[AI] [AI] x")]
)
def test_ai_comment_text(reply, out):
    assert ai_comment_text(reply) == out


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "text", ["x" * 1_000_000, ("word " * 200_000), ("a.\n\n" * 250_000)], ids=["no-space", "words", "paras"]
)
def test_long_texts_are_fast(text):
    check(split_message(text), text, 4096)


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "md",
    [
        "`" * 10_000,
        "**a " * 5_000,
        "[a" * 10_000,
        "[a](" * 5_000,
        "<https://" * 5_000,
        "~~a " * 5_000,
        "```" + "`" * 10_000 + "x",
        "# " + " #" * 10_000,
    ],
    ids=[
        "ticks",
        "bold-openers",
        "brackets",
        "link-openers",
        "autolink-openers",
        "strike-openers",
        "fence",
        "heading",
    ],
)
def test_hostile_markdown_stays_fast(md):
    out = markdown_to_whatsapp(md)
    assert isinstance(out, str)


@pytest.mark.parametrize(
    ("md", "wa"),
    [
        ("a ` b ``c`` **d**", "a ` b `c` *d*"),  # the lone tick stays text, the pair is code
        ("a ` b ``c`` d `", "a ``` b ``c`` d ```"),  # CommonMark: ticks pair by run length
    ],
)
def test_backtick_runs_pair_by_length(md, wa):
    assert markdown_to_whatsapp(md) == wa
