import time

import pytest

from bot.rules.knowledge import Section, split_sections

SOURCE = "kb/returns.md"


def titles_and_texts(markdown, **kw):
    return [(s.title, s.text) for s in split_sections(markdown, SOURCE, **kw)]


def test_nested_headings_give_heading_paths():
    md = "# Returns\nWithin 30 days.\n## Refunds\nIn 14 days.\n### Cards\nTo the card.\n## Exchanges\nFree.\n# Shipping\nDHL."
    assert titles_and_texts(md) == [
        ("Returns", "Within 30 days."),
        ("Returns › Refunds", "In 14 days."),
        ("Returns › Refunds › Cards", "To the card."),
        ("Returns › Exchanges", "Free."),
        ("Shipping", "DHL."),
    ]


def test_every_section_keeps_its_source():
    assert {s.source for s in split_sections("a\n# b\nc", SOURCE)} == {SOURCE}


def test_text_before_the_first_heading_is_titled_with_the_stem():
    assert titles_and_texts("Opening hours: 9 to 5.\n\n# Returns\nx") == [
        ("returns", "Opening hours: 9 to 5."),
        ("Returns", "x"),
    ]


@pytest.mark.parametrize(
    ("source", "stem"),
    [
        ("kb/faq.md", "faq"),
        ("faq", "faq"),
        ("a\\b\\faq.en.md", "faq.en"),
        (".hidden", ".hidden"),
        ("", "knowledge"),
    ],
)
def test_stem(source, stem):
    assert split_sections("text", source) == [Section(source, stem, "text")]


def test_empty_sections_are_dropped():
    # "Returns" holds only a sub-heading; "Empty" holds only blanks.
    assert titles_and_texts("# Returns\n## Refunds\nx\n# Empty\n\n   \n") == [("Returns › Refunds", "x")]


@pytest.mark.parametrize(
    ("line", "title"),
    [
        ("# Title", "Title"),
        ("   # Three spaces", "Three spaces"),
        ("###### Six", "Six"),
        ("# Closed ##", "Closed"),
        ("#\tTab", "Tab"),
        ("# C#", "C#"),
        ("#   spaced    words   ", "spaced words"),
        ("# Closed #   ", "Closed"),
    ],
)
def test_atx_headings(line, title):
    assert titles_and_texts(f"{line}\nbody") == [(title, "body")]


@pytest.mark.parametrize("line", ["#hashtag", "####### seven", "    # four spaces is code", "\\# escaped"])
def test_not_headings(line):
    assert titles_and_texts(f"{line}\nbody") == [("returns", f"{line.strip()}\nbody")]


def test_empty_heading_takes_the_parents_path():
    assert titles_and_texts("# Returns\n## ##\nx") == [("Returns", "x")]


def test_setext_headings():
    md = "Returns\n=======\nWithin 30 days.\n\nRefunds\n---\nIn 14 days."
    assert titles_and_texts(md) == [("Returns", "Within 30 days."), ("Returns › Refunds", "In 14 days.")]


def test_setext_title_of_two_lines():
    assert titles_and_texts("Return\npolicy\n===\nx") == [("Return policy", "x")]


def test_setext_only_after_a_paragraph():
    # After a blank line `---` is a rule; under a list item it is no heading either.
    md = "# A\nx\n\n---\ny\n\n- item\n---\nz"
    assert titles_and_texts(md) == [("A", "x\n\n---\n\ny\n\n- item\n---\nz")]


@pytest.mark.parametrize("fence", ["```", "~~~", "````", "  ```"])
def test_lines_in_fences_are_never_headings(fence):
    md = f"# Setup\n{fence}python\n# a comment\nTitle\n===\n{fence.strip()}\n# Next\nx"
    assert titles_and_texts(md) == [
        ("Setup", f"{fence.strip()}python\n# a comment\nTitle\n===\n{fence.strip()}"),
        ("Next", "x"),
    ]


def test_fence_closes_only_with_its_own_kind_and_length():
    md = "# A\n````\n```\n# still code\n~~~\n````\n# B\nx"
    assert titles_and_texts(md) == [("A", "````\n```\n# still code\n~~~\n````"), ("B", "x")]


def test_unclosed_fence_runs_to_the_end():
    assert titles_and_texts("# A\n```\n# B\nx") == [("A", "```\n# B\nx")]


def test_inline_backticks_are_no_fence():
    assert titles_and_texts("# A\n```a` b\n# B\nx") == [("A", "```a` b"), ("B", "x")]


def test_long_section_is_cut_at_paragraphs():
    paragraphs = [f"Paragraph {i} " + "w" * 80 for i in range(10)]  # 92 or 93 characters each
    md = "# Policy\n" + "\n\n".join(paragraphs)
    sections = split_sections(md, SOURCE, max_chars=200)
    assert [s.title for s in sections] == ["Policy"] + [f"Policy ({n})" for n in range(2, 6)]
    assert all(len(s.text) <= 200 for s in sections)
    # Nothing lost, nothing cut inside a paragraph.
    assert [p for s in sections for p in s.text.split("\n\n")] == paragraphs


def test_paragraph_longer_than_the_limit_is_cut_at_lines_then_blanks():
    md = "# A\n" + "line one is here\nline two is here\n" + "word " * 40
    sections = split_sections(md, SOURCE, max_chars=40)
    assert all(len(s.text) <= 40 for s in sections)
    assert sections[0].text == "line one is here\nline two is here"
    assert " ".join(s.text for s in sections[1:]).split() == ["word"] * 40


def test_unbroken_text_is_cut_anywhere():
    sections = split_sections("x" * 95, SOURCE, max_chars=40)
    assert [len(s.text) for s in sections] == [40, 40, 15]
    assert [s.title for s in sections] == ["returns", "returns (2)", "returns (3)"]


def test_crlf_and_bom():
    assert titles_and_texts("\ufeff# A\r\nx\r\n# B\r\ny") == [("A", "x"), ("B", "y")]


@pytest.mark.parametrize("odd", ["", "\n\n", "#", "===", "```", "\x00# a\x00", "\ud800", "# " + "x" * 5000])
def test_odd_input_never_raises(odd):
    for s in split_sections(odd, SOURCE, max_chars=0):
        assert s.text


def test_very_long_heading_is_bounded():
    [section] = split_sections("# " + "h" * 1000 + "\nbody", SOURCE)
    assert section.title == "h" * 200


@pytest.mark.timeout(30)
def test_a_megabyte_file_is_split_quickly():
    unit = "# Heading\nSome text here.\n\n```\n# code\n```\nTitle\n---\n" + "word " * 100 + "\n"
    md = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
    started = time.perf_counter()
    sections = split_sections(md, SOURCE)
    assert time.perf_counter() - started < 2.0
    assert len(sections) > 1000
