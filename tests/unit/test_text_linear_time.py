"""Text that customers, agents, the AI or a vendor wrote is processed in linear time.

The poll job renders agents' comments while the webhook's threads wait for the GIL, and a regex
holds the GIL for the whole of its search: one quadratic pattern (`"# a" + " " * 16000 + "b"` in
the heading rule took seconds) stalls every thread of the daemon. So every public text function
is fed, for each rule it applies, the shape that rule finds hardest, at 32,000 characters (about
Jira's comment limit) and again at 64,000, and must (1) scale linearly: time(64k) < 3 × time(32k)
+ 20 ms, quadratic is 4×; and (2) stay far below the cost that would matter: < 0.5 s at 64k
(linear code takes a few milliseconds to a few tens of them; the quadratic rules took seconds).

The second half checks that the linear rewrites (the inline-markup scanner, the heading reader,
the line cut in `split_message`) give exactly what the regexes they replaced gave, on many short
random texts where those regexes are still fast.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable

import pytest

from bot.config.model import FlowDefinition
from bot.flows import mapping, templates
from bot.logs import mask_digits
from bot.rules import (
    adf,
    agent_files,
    ai_context,
    classify,
    commands,
    knowledge,
    markdown,
    media,
    outgoing,
    outgoing_files,
    phones,
    reference,
    render,
    search_terms,
    wiki,
)
from bot.rules.payload import parse_webhook
from bot.whatsapp.graph_errors import error_from_response

pytestmark = pytest.mark.timeout(300)

N = 32_000
ABSOLUTE_LIMIT = 0.5  # seconds, at 2 × N
RATIO, SLACK = 3.0, 0.02

Shape = Callable[[int], str]


def run(unit: str, n: int, head: str = "", tail: str = "") -> str:
    """`head` + `unit` repeated + `tail`, exactly `n` characters long."""
    body = n - len(head) - len(tail)
    return head + (unit * (body // len(unit) + 1))[:body] + tail


def shapes(**units: tuple[str, ...] | str) -> dict[str, Shape]:
    """Name → shape; a value is a repeated unit, or (unit, head) or (unit, head, tail)."""
    made: dict[str, Shape] = {}
    for name, spec in units.items():
        unit, head, tail = (spec, "", "") if isinstance(spec, str) else (*spec, "", "")[:3]
        made[name] = lambda n, unit=unit, head=head, tail=tail: run(unit, n, head, tail)
    return made


# --- pathological shapes, by the rule they attack ---------------------------------------------

# ATX headings: `^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$` tried every split of the
# blanks between the lazy text and the optional closing run.
HEADINGS = shapes(
    heading_bomb=(" ", "# a", "b"),
    heading_tabs=("\t", "# a", "b"),
    heading_blank_hash=(" #", "# a", "b"),
    heading_closing_hashes=("#", "# a ", " b"),
    heading_only_hashes=("#", "# "),
    heading_trailing_blanks=(" ", "# a"),
    heading_blank_tab_hash=(" \t#", "## x"),
    heading_strong=("*", "# **", "x"),
    heading_strong_underscore=("_", "# __a", "_"),
)
# Thematic breaks and bullets: `(?:[ \t]*\1){2,}[ \t]*$`, `^[ \t]*[*+-][ \t]+`.
RULES_AND_BULLETS = shapes(
    rule_dashes_then_text=("- ", "", "x"),
    rule_stars_then_text=("* ", "", "x"),
    rule_blanks_then_text=(" ", "-", "x"),
    bullet_blanks_then_text=(" ", "", "x"),
    bullet_tabs=("\t", "", "-x"),
)
# Emphasis: every opener used to look up to 1,000 characters ahead for its closer.
EMPHASIS = shapes(
    stars="*",
    stars_then_text=("*", "", "x"),
    underscores="_",
    tildes="~",
    star_a="*a",
    star_a_blank="*a ",
    bold_openers="**a ",
    bold_italic_openers="***a ",
    bold_opener_then_words=(" b", "**a"),
    bold_italic_opener_then_words=(" b", "***a"),
    underscore_bold_openers="__a ",
    underscore_bold_then_words=(" b", "__a"),
    underscore_bold_closers_in_words=("a__b ", "__a"),
    underscore_openers=" _a",
    underscores_in_words="_a_b",
    strike_openers="~~a ",
    strike_opener_then_words=(" b", "~~a"),
    star_blank="* ",
    nested_openers=("***___~~", "", "x"),
    nested_openers_words="**_~~a ",
    italic_then_blanks=(" ", "*a", "*"),
    bold_then_blanks=(" ", "**a", " **"),
    underscore_then_blanks=(" ", "_a", " _"),
    escapes="\\",
    escaped_stars="\\*",
)
# Links, autolinks and bare URLs.
LINKS = shapes(
    brackets="[",
    brackets_closed=("[", "", "]"),
    brackets_then_paren=("[", "", "](x"),
    link_open_parens=("](", "["),
    link_openers="[a](",
    image_openers="![",
    label_long=("x", "[", "]"),
    title_unclosed='[a](b "',
    title_long=("x", '[a](b "'),
    url_long=("x", "[a](", " y"),
    bare_url_long=("a", "https://"),
    bare_url_schemes="http://",
    bare_url_broken_schemes="https:/",
    autolink_openers="<https://",
    autolink_long=("a", "<https://"),
    url_markers=("_*", "https://x/"),
)
LINKS["many_openers_one_title"] = lambda n: "[" * 1000 + run("x", n - 1000, 'a](b "')
# Inline code and fences.
CODE = shapes(
    backticks="`",
    backticks_then_text=("`", "", "x"),
    backtick_runs="`a``b```c",
    fence_unclosed=("a\n", "```\n"),
    fence_openers="```\n",
    fence_mismatched_closers=("``\n", "````\n"),
    fence_without_newline=("`", "```", "x"),
    fence_blank_closers=("``` \t x\n", "```\n"),
    fence_tildes="~~~\n ~~ \n",
    fence_indented="   ``` ",
    fence_closer_then_blanks=(" ", "```\na\n```", "x"),
)
CODE["backtick_runs_growing"] = lambda n: "".join("`" * k + "a" for k in range(1, 400))[:n].ljust(n, "a")
CODE["fence_long"] = lambda n: "`" * (n // 2) + "\n" + "`" * (n - n // 2 - 3) + "\nx"
# Line ends and blanks: paragraph and line cuts, blank-line runs, whitespace collapsing.
LINES = shapes(
    newlines="\n",
    newlines_between=("\n", "a", "b"),
    newline_blank=("\n ", "a", "b"),
    blanks_after_newline=(" \t", "a\n", "x"),
    blanks_then_text=(" ", "", "x"),
    blanks_then_newline=(" ", "a", "\nx"),
    tabs_then_text=("\t", "", "x"),
    crlf=("\r\n", "a", "b"),
    cr=("\r", "a", "b"),
    words="word ",
    sentences="Yes. ",
    dots_blanks=". ",
    quoted_sentences='No." ',
    cjk_stops="\u3002",
    letters_then_bang=("a", "", "!"),
    wide_blanks=("\u2003", "a", "b"),
    nbsp_then_text=("\xa0", "", "x"),
    accents="e\u0301",
    accent_run=("\u0301", "e"),
    joiner_run=("\u200d", "a"),
    emoji_tones="\U0001f44d\U0001f3fd",
    dashes_newlines="-\n",
    quotes="> ",
)
# Server/DC wiki escaping: block tokens at line starts, letter emoticons after `:`.
WIKI = shapes(
    zero_width_then_text=("\u200b", "", "x"),
    blank_zero_width=(" \u200b", "", "h1"),
    colon_zero_width=("\u200b", ":", "x"),
    colons=(":", "", "\u200bPx"),
    heading_tokens="\n h1",
    backslashes="\\\u200b",
    line_blanks_zero_width="\n" + " " * 10 + "\u200b" * 10,
    escapable="-#*_+?^~|%{}[]()!@",
)
# Phone numbers, digits in log lines, hashes.
DIGITS = shapes(
    digits="1",
    digits_then_letter=("1", "+", "x"),
    digits_dashes="1-",
    digits_dots="1.",
    plus_digits="+1",
    hex_pairs="ab",
    code_prefix_digits=("1", "(#", "x"),
    code_prefix_blanks=(" ", "(#1)", "x"),
)
# A little of everything, for the functions whose only regexes are whitespace and controls.
FILE_REFS = shapes(
    bangs="!",
    open_images="!a|",
    attachment_opens="[^",
    mixed="!!!![^",
    unclosed_names=("a", "!"),
)

GENERAL = {
    **{k: LINES[k] for k in ("newlines", "blanks_then_text", "wide_blanks", "accents", "crlf", "words")},
    **{k: HEADINGS[k] for k in ("heading_bomb",)},
    **{k: EMPHASIS[k] for k in ("bold_openers", "stars")},
    **{k: LINKS[k] for k in ("brackets", "bare_url_long")},
    **{k: WIKI[k] for k in ("colon_zero_width", "escapable")},
    **{k: DIGITS[k] for k in ("digits",)},
    **shapes(controls="\x01\x7f\ud800", braces="{", placeholders="{text}", bidi="\u202e\u2066a"),
}
MARKDOWN = {**HEADINGS, **RULES_AND_BULLETS, **EMPHASIS, **LINKS, **CODE, **LINES, **GENERAL}


# --- the functions, each called as its caller calls it ----------------------------------------


def _adf(text: str) -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def _comment(author: str, body: object, kind: str | None = None) -> classify.CommentView:
    props = [{"key": "wajira", "value": {"kind": kind}}] if kind else []
    raw = {
        "id": "10001",
        "author": {"accountId": "a-1", "displayName": author},
        "body": body,
        "created": "2026-11-21T12:03:49.123+0000",
        "properties": props,
    }
    return classify.comment_view("SUP-1", raw)


def _agent_comment_to_whatsapp(text: str) -> list[str]:
    # What the poll job does with an agent's public comment (jobs/poll.py).
    view = _comment("Agent Smith", _adf(text))
    if classify.route_comment(view, bot_account_id=None) is not classify.Route.TO_CUSTOMER:
        return []  # a blank comment
    return outgoing.split_message(
        outgoing.agent_message(view.author_name, markdown.markdown_to_whatsapp(view.text))
    )


def _webhook(text: str) -> object:
    message = {
        "from": "15551234567",
        "id": "wamid.1",
        "timestamp": "1",
        "type": "text",
        "text": {"body": text},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": "1", "display_phone_number": text},
        "contacts": [{"profile": {"name": text}, "wa_id": "15551234567"}],
        "messages": [message],
    }
    return parse_webhook(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
        }
    )


def _tolerant(fn: Callable[[str], object]) -> Callable[[str], object]:
    def call(text: str) -> object:
        try:
            return fn(text)
        except ValueError:  # refusing the text is fine, as long as it is refused quickly
            return None

    return call


def _flow_answers(text: str) -> object:
    definition = FlowDefinition(
        id="order",
        flow_token_prefix="t",
        summary="Order {a}",
        description_fields=("a",),
        labels=("{a}",),
        custom_fields={"customfield_1": "{a}"},
    )
    return mapping.ticket_fields_from_flow(definition, {"a": text})


FUNCTIONS: dict[str, tuple[Callable[[str], object], dict[str, Shape]]] = {
    "markdown_to_whatsapp": (markdown.markdown_to_whatsapp, MARKDOWN),
    "split_message": (outgoing.split_message, {**LINES, **GENERAL, **HEADINGS}),
    "agent_comment_to_whatsapp": (_agent_comment_to_whatsapp, {**GENERAL, **LINES, **CODE}),
    "agent_message_name": (lambda s: outgoing.agent_message(s, "x"), {**GENERAL, **EMPHASIS}),
    "ai_reply_to_whatsapp": (lambda s: outgoing.split_message(markdown.markdown_to_whatsapp(s)), GENERAL),
    "ai_comment_text": (outgoing.ai_comment_text, GENERAL),
    "render_message_text": (
        lambda s: render.render_message("text", {"text": {"body": s}, "context": {"id": s}}, s),
        {**GENERAL, **LINES},
    ),
    "render_message_document": (
        lambda s: render.render_message(
            "document", {"document": {"id": s, "filename": s, "caption": s, "mime_type": s}}, s
        ),
        GENERAL,
    ),
    "render_message_flow": (
        lambda s: render.render_message(
            "interactive",
            {"interactive": {"type": "nfm_reply", "nfm_reply": {"response_json": json.dumps({"a": s})}}},
            "n",
        ),
        GENERAL,
    ),
    "render_history": (
        lambda s: render.render_history("text", {"text": {"body": s}}, s, sent_at=1, business=s),
        GENERAL,
    ),
    "ticket_summary": (lambda s: render.ticket_summary(s, s), GENERAL),
    "ticket_description": (lambda s: render.ticket_description(s, s, s, s, s), GENERAL),
    "doc_from_text": (adf.doc_from_text, {**GENERAL, **LINES}),
    "text_from_doc": (lambda s: adf.text_from_doc(_adf(s)), {**GENERAL, **LINES}),
    "text_from_doc_breaks": (
        lambda s: adf.text_from_doc(
            {
                "type": "doc",
                "content": [
                    {
                        "type": "paragraph",
                        "content": [
                            {"type": "hardBreak"} if ch == "\n" else {"type": "text", "text": ch}
                            for ch in s[:4000]
                        ],
                    }
                ],
            }
        ),
        LINES,
    ),
    "escape_wiki": (wiki.escape_wiki, {**GENERAL, **WIKI, **LINES}),
    # Agents' comments: the files they show, and the commands they type.
    "wiki_file_refs": (agent_files.file_refs, {**GENERAL, **WIKI, **FILE_REFS}),
    "strip_wiki_files": (agent_files.strip_wiki_files, {**GENERAL, **WIKI, **FILE_REFS}),
    "parse_command": (lambda s: commands.parse_command("/" + s), {**GENERAL, **LINES}),
    "plan_file": (lambda s: outgoing_files.plan_file(filename=s, mime_type=s, size=1), GENERAL),
    "unescape_wiki": (wiki.unescape_wiki, {**GENERAL, **WIKI, **LINES}),
    "comment_view_adf": (lambda s: _comment(s, _adf(s)), {**GENERAL, **LINES}),
    "comment_view_wiki_ours": (
        lambda s: _comment(s, wiki.escape_wiki(s), kind="customer"),
        {**GENERAL, **WIKI},
    ),
    "ai_messages": (
        lambda s: ai_context.ai_messages(
            system_prompt=s,
            summary=s,
            comments=[_comment(s, _adf(s)), _comment(s, _adf("[WhatsApp] " + s), kind="customer")],
        ),
        GENERAL,
    ),
    # The AI's reference material: knowledge files, search terms, resolved tickets.
    "split_sections": (lambda s: knowledge.split_sections(s, "kb/a.md", max_chars=500), MARKDOWN),
    "query_terms": (lambda s: search_terms.query_terms([s, s], max_terms=10_000), {**GENERAL, **LINES}),
    "resolved_jql": (
        lambda s: search_terms.resolved_jql("SUP", [s, *s.split()], exclude_key="SUP-1"),
        GENERAL,
    ),
    "resolved_example": (
        lambda s: reference.resolved_example(
            "SUP-1",
            s,
            [_comment(s, _adf(s)), _comment(s, _adf("[WhatsApp] " + s), kind="customer")],
            bot_account_id=None,
            max_chars=len(s),
        ),
        {**GENERAL, **LINES},
    ),
    "without_personal_data": (
        reference.without_personal_data,
        {**GENERAL, **DIGITS, **shapes(ats="a@", dotted_ats="a.@", at_dots="@a.", plus_ones="+1 ")},
    ),
    "build_reference": (
        lambda s: reference.build_reference(
            [knowledge.Section(s, s, s)], [reference.ResolvedExample(s, s, s, (s,))], budget_chars=5 * len(s)
        ),
        GENERAL,
    ),
    "conversation_key_for_phone": (_tolerant(phones.conversation_key_for_phone), {**GENERAL, **DIGITS}),
    "mask_phone": (phones.mask_phone, {**GENERAL, **DIGITS}),
    "display_phone": (phones.display_phone, {**GENERAL, **DIGITS}),
    "sanitize_filename": (media.sanitize_filename, GENERAL),
    "parse_sha256": (media.parse_sha256, {**GENERAL, **DIGITS}),
    "extension_for": (media.extension_for, GENERAL),
    "parse_webhook": (_tolerant(_webhook), GENERAL),
    "flow_ticket_fields": (_flow_answers, {**GENERAL, **LINES}),
    "jira_label": (mapping.jira_label, GENERAL),
    "description_table": (lambda s: mapping.description_table([("a", s)]), {**GENERAL, **LINES}),
    "template_fill": (lambda s: templates.fill(s, {"a": s}), GENERAL),
    "template_placeholders": (_tolerant(templates.placeholders), GENERAL),
    "mask_digits": (mask_digits, {**GENERAL, **DIGITS}),
    "graph_error": (
        lambda s: error_from_response(400, {}, json.dumps({"error": {"message": s, "code": 100}}).encode()),
        {**GENERAL, **DIGITS},
    ),
}


def _seconds(fn: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    fn(text)
    return time.perf_counter() - started


def _linear(small: float, large: float) -> bool:
    return large < RATIO * small + SLACK and large < ABSOLUTE_LIMIT


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_linear_on_every_pathological_shape(name):
    fn, shapes_for_fn = FUNCTIONS[name]
    slow = []
    for shape_name, shape in shapes_for_fn.items():
        small, large = shape(N), shape(2 * N)
        assert (len(small), len(large)) == (N, 2 * N), shape_name
        timings = (_seconds(fn, small), _seconds(fn, large))
        if not _linear(*timings):
            # Another process may have had the CPU (CI runs beside other test runs): the best of
            # six runs says what the code costs; preemption only ever adds time.
            timings = tuple(
                min(t, *(_seconds(fn, text) for _ in range(5)))
                for t, text in zip(timings, (small, large), strict=True)
            )
        if not _linear(*timings):
            slow.append(
                f"{shape_name}: {timings[0] * 1000:.0f} ms at {N}, {timings[1] * 1000:.0f} ms at {2 * N}"
            )
    assert not slow, f"{name} is not linear on:\n" + "\n".join(slow)


@pytest.mark.timeout(30)
def test_the_reported_heading_bomb_is_instant():
    # Issue 10: this agent comment took 3-4 s, holding the GIL.
    bomb = "# a" + " " * 16000 + "b"
    started = time.perf_counter()
    parts = _agent_comment_to_whatsapp(bomb)
    assert time.perf_counter() - started < 0.1
    assert markdown.markdown_to_whatsapp(bomb) == "*a" + " " * 16000 + "b*"
    # The blanks are a cut between two messages, dropped whole.
    assert parts == ["*Agent Smith:* *a", "b*"]


# --- the rewrites give what the regexes they replaced gave -------------------------------------

# The former patterns, kept here as the reference (fast enough on short texts).
_OLD_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*$")
_OLD_SPAN = r"\S(?:.{0,1000}?\S)?"
_OLD_INLINE = re.compile(
    r"\\(?P<esc>[\\`*_{}\[\]()#+\-.!~>|])"
    r"|!?\[(?P<label>[^\]\n]{0,1000}+)\]\((?P<url>[^)\s]{1,2048}+)(?:[ \t]+\"[^\"\n]*+\")?\)"
    r"|<(?P<auto>https?://[^>\s]{1,2048}+)>"
    r"|(?P<bare>https?://[^\s<>]++)"
    rf"|\*\*\*(?P<bolditalic>{_OLD_SPAN})\*\*\*"
    rf"|\*\*(?P<bold>{_OLD_SPAN})\*\*"
    rf"|(?<!\w)__(?P<bold_u>{_OLD_SPAN})__(?!\w)"
    rf"|~~(?P<strike>{_OLD_SPAN})~~"
    r"|\*(?P<italic>[^\s*](?:[^*]*?[^\s*])?)\*"
    r"|(?<!\w)_(?P<italic_u>[^\s_](?:[^_]*?[^\s_])?)_(?!\w)"
)
_OLD_LINE_CUT = re.compile(r"[ \t]*\n")


def _old_inline(text: str) -> str:
    def replace(m: re.Match[str]) -> str:
        groups = m.groupdict()
        if groups["esc"] is not None:
            return groups["esc"]
        if groups["url"] is not None:
            label, url = groups["label"].strip(), groups["url"]
            return url if not label or label == url else f"{_old_inline(label)} ({url})"
        if groups["auto"] is not None:
            return groups["auto"]
        if groups["bare"] is not None:
            return groups["bare"]
        if groups["bolditalic"] is not None:
            return f"*_{_old_inline(groups['bolditalic'])}_*"
        for name, mark in (
            ("bold", "*"),
            ("bold_u", "*"),
            ("strike", "~"),
            ("italic", "_"),
            ("italic_u", "_"),
        ):
            if groups[name] is not None:
                return f"{mark}{_old_inline(groups[name])}{mark}"
        return m.group(0)

    return _OLD_INLINE.sub(replace, text)


PIECES = [
    *"*_~`[]()!<>\\\"' \t\nah:/#-+.|{}xé1\xa0\u3000",
    "http://",
    "https://",
    "**",
    "__",
    "~~",
    "***",
    "](",
    "# ",
    "##",
    " #",
    "- ",
    "[a](b)",
    '[a](b "t")',
    "<https://x>",
]
LONG_PIECES = [
    *'*_~[]()!<> "\nah',
    "http://",
    "https://",
    "**",
    "__",
    "~~",
    "***",
    "[a](",
    '[a](b "',
    ")",
    *("a" * k for k in (998, 999, 1000, 1001, 1002, 2046, 2047, 2048, 2049)),
    " " * 1000,
]


def _texts(pieces: list[str], count: int, most: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, most))) for _ in range(count)]


def test_inline_scanner_matches_the_regex_it_replaced():
    for text in _texts(PIECES, 20_000, 14, seed=10) + _texts(LONG_PIECES, 600, 8, seed=11):
        assert markdown._inline(text) == _old_inline(text), text


@pytest.mark.parametrize(
    "text",
    [
        "**" + "a" * 1002 + "**",
        "**" + "a" * 1003 + "**",
        "[" + "x" * 1000 + "](u)",
        "[" + "x" * 1001 + "](u)",
        "[a](" + "u" * 2048 + ")",
        "[a](" + "u" * 2049 + ")",
        "<https://" + "u" * 2048 + ">",
        "<https://" + "u" * 2049 + ">",
        "__a__b",
        "_a_b",
        "**a\nb**",
        "*a\nb*",
    ],
)
def test_inline_scanner_keeps_the_regex_limits(text):
    assert markdown._inline(text) == _old_inline(text)


def test_heading_reader_matches_the_regex_it_replaced():
    for text in _texts([*"# \t*_ax\u2003", "##", "###", "# ", "**", "__"], 20_000, 10, seed=12):
        m = _OLD_HEADING.match(text)
        assert markdown._heading_title(text) == (None if m is None else m.group("text") or ""), text


def test_line_cut_matches_the_regex_it_replaced():
    line_cut = outgoing._CUTS[1]
    for text in _texts([*" \t\nab.", "  ", " \n", "\t\n \n"], 5_000, 30, seed=13):
        assert [m.span() for m in line_cut.finditer(text)] == [
            m.span() for m in _OLD_LINE_CUT.finditer(text)
        ], text
