"""Reference material for the AI: knowledge sections and resolved tickets, as one block of data.

A resolved ticket is a worked answer: what the customer asked and what we answered in public.
It is read through the AI context's own rule (`ai_context.speaker`), so what an agent kept
internal, our notes, commands and ratings never get in, whatever they say. The other customer's
name is left out too: it is in our `[WhatsApp] Name: ` prefix, and it is nobody's business here.
So is the ticket's summary, which on our tickets is the customer's name and phone number, and
so are e-mail addresses and long numbers anywhere in the question or the answers.

The reference is data in a message of its own (`ai_context.REFERENCE_HEADER` first), each item
in a tagged block. Text inside can neither close nor forge a tag: `<` becomes `‹` in content and
attributes, `"` becomes `'` in attributes, and control characters are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import zip_longest

from bot.rules.ai_context import AI_PREFIX, REFERENCE_HEADER, Speaker, conversation_order, speaker
from bot.rules.classify import CommentView
from bot.rules.knowledge import Section
from bot.rules.render import MAX_NAME_CHARS

ELLIPSIS = "…"
_MIN_ANSWER_CHARS = 80
"""An older answer cut shorter than this says nothing: it is left out instead."""

# `[WhatsApp] ` and `[WhatsApp history 2025-06-04 01:20 UTC] ` (render.py), before the name.
_WHATSAPP_PREFIX = re.compile(r"\[WhatsApp(?: history [^\]\n]{0,40})?\] ")

# Control characters (but line feed and tab), lone surrogates and the bidirectional overrides
# that make text read differently from how it is stored.
_UNSAFE = {
    **{code: None for code in range(0x20) if code not in (0x09, 0x0A)},
    **dict.fromkeys(range(127, 160)),
    **dict.fromkeys(range(55296, 57344)),
    **dict.fromkeys((*range(8234, 8239), *range(8294, 8298))),
}
_CONTENT = {**_UNSAFE, ord("<"): "‹"}
_ATTRIBUTE = {**_CONTENT, 0x09: " ", 0x0A: " ", ord('"'): "'", ord(">"): "›"}


# Another customer's contact details and long numbers (phone, card, IBAN, their order) are of
# no use to this customer's answer and must not reach them through the model. Both patterns
# are linear: every repetition consumes a character no other alternative can.
_EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
_LONG_NUMBER = re.compile(r"(?<!\w)\+?\d(?:[ .\-/]?\d){6,}(?!\w)")
EMAIL_MARK = "[email]"
NUMBER_MARK = "[number]"


_DATE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


def without_personal_data(text: str) -> str:
    """`text` with e-mail addresses and numbers of 7 digits or more replaced by a mark; a date
    written with digits ("2026-06-04", "04/06/2026") stays."""
    return _LONG_NUMBER.sub(_number_mark, _EMAIL.sub(EMAIL_MARK, text))


def _number_mark(match: re.Match[str]) -> str:
    return match.group() if _DATE.fullmatch(match.group()) else NUMBER_MARK


@dataclass(frozen=True)
class ResolvedExample:
    """A resolved ticket of the project, as a worked answer."""

    key: str
    summary: str
    question: str
    """What the customer asked: their messages without our prefix and their name, joined, trimmed."""
    answers: tuple[str, ...]
    """The public answers: agents' public comments, the team's app messages and our AI replies."""


def resolved_example(
    key: str,
    summary: str,
    comments: Sequence[CommentView],
    *,
    bot_account_id: str | None,
    max_chars: int = 1500,
) -> ResolvedExample | None:
    """The question and the public answers of one resolved ticket.

    Args:
        key: the ticket's key.
        summary: the ticket's summary, kept on the result (not used in the reference text).
        comments: the ticket's comments, any order.
        bot_account_id: as for the AI's context: the bot's unmarked comments are left out.
        max_chars: the question and the answers together stay within this. The question gets
            at most a third; the newest answers are kept first (the last one usually is the
            solution), older ones cut or left out.

    Returns:
        The example, or None when the ticket holds no public answer.
    """
    questions: list[str] = []
    answers: list[str] = []
    for c in sorted(comments, key=conversation_order):
        who = speaker(c, bot_account_id=bot_account_id)
        text = c.text.strip()
        if who is Speaker.CUSTOMER:
            questions.append(without_sender(text))
        elif who is Speaker.AI and not c.handover:
            # A hand-over reply is the operator's "a person will help you", not an answer.
            answers.append("" if text == AI_PREFIX.strip() else text.removeprefix(AI_PREFIX).strip())
        elif who is Speaker.ECHO:
            answers.append(without_sender(text))
        elif who is Speaker.AGENT:
            answers.append(text)
    questions = [without_personal_data(q) for q in questions]
    answers = [without_personal_data(a) for a in answers if a]
    if not answers:
        return None
    limit = max(1, max_chars)
    question = cut("\n".join(q for q in questions if q), limit // 3)
    return ResolvedExample(key, summary, question, _newest_within(answers, limit - len(question)))


def without_sender(text: str) -> str:
    """`[WhatsApp] Ana: hi` → `hi`; text not in our format stays as it is."""
    prefix = _WHATSAPP_PREFIX.match(text)
    if prefix is None:
        return text
    rest = text[prefix.end() :]
    # The sender's name is at most MAX_NAME_CHARS (render.sanitize_name), then ": ".
    name_end = rest.find(": ", 0, MAX_NAME_CHARS + 2)
    return rest[name_end + 2 :].strip() if name_end >= 0 else rest.strip()


def _newest_within(answers: list[str], budget: int) -> tuple[str, ...]:
    kept: list[str] = []
    left = max(budget, 0)
    for answer in reversed(answers):
        if len(answer) <= left:
            kept.append(answer)
            left -= len(answer)
            continue
        if not kept or left >= _MIN_ANSWER_CHARS:
            kept.append(cut(answer, max(left, 1)))
        break
    return tuple(reversed(kept))


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending with "…" when shortened (at a blank if one
    is near the end)."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[: max(limit, 0)]
    head = text[: limit - len(ELLIPSIS)]
    blank = head.rfind(" ", len(head) * 4 // 5)
    return (head[:blank] if blank > 0 else head).rstrip() + ELLIPSIS


# -- the reference text ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """The reference message for one AI turn, and what it was made of (for the audit trail)."""

    text: str
    """The reference message's content; "" when nothing was found or nothing fits."""
    sections: tuple[str, ...]
    """"source#title" of each knowledge section used."""
    tickets: tuple[str, ...]
    """Keys of the resolved tickets used."""


@dataclass(frozen=True)
class _Item:
    open_tag: str
    content: str
    close_tag: str
    section: str | None = None
    ticket: str | None = None

    def block(self, content: str | None = None) -> str:
        return f"{self.open_tag}\n{self.content if content is None else content}\n{self.close_tag}"

    def overhead(self) -> int:
        return len(self.open_tag) + len(self.close_tag) + 2


def build_reference(
    sections: Sequence[Section], examples: Sequence[ResolvedExample], *, budget_chars: int
) -> Reference:
    """The reference message: a fixed header, then one tagged block per section or ticket.

    Args:
        sections: knowledge sections, best first.
        examples: resolved tickets, best first.
        budget_chars: the whole text stays within this.

    Returns:
        The reference. Items are taken best first, a section and a ticket in turn (their
        rankings cannot be compared, and both kinds deserve a place), each while it fits; one
        that does not fit is skipped for the smaller ones after it. When not even the first
        fits, it is cut to fit rather than left out.
    """
    chosen: list[_Item] = []
    used = len(REFERENCE_HEADER)
    for item in _interleaved(sections, examples):
        size = 1 + len(item.block())
        if used + size <= budget_chars:
            chosen.append(item)
            used += size
        elif not chosen:
            room = budget_chars - used - 1 - item.overhead()
            if room >= _MIN_ANSWER_CHARS // 2:
                cut_item = _Item(
                    item.open_tag, cut(item.content, room), item.close_tag, item.section, item.ticket
                )
                chosen.append(cut_item)
                used += 1 + len(cut_item.block())
    if not chosen:
        return Reference("", (), ())
    ordered = [i for i in chosen if i.section is not None] + [i for i in chosen if i.ticket is not None]
    return Reference(
        text="\n".join([REFERENCE_HEADER, *(i.block() for i in ordered)]),
        sections=tuple(i.section for i in ordered if i.section is not None),
        tickets=tuple(i.ticket for i in ordered if i.ticket is not None),
    )


def _interleaved(sections: Sequence[Section], examples: Sequence[ResolvedExample]) -> list[_Item]:
    items: list[_Item] = []
    for section, example in zip_longest(sections, examples):
        if section is not None:
            items.append(_section_item(section))
        if example is not None:
            items.append(_ticket_item(example))
    return items


def _section_item(section: Section) -> _Item:
    source, title = _attribute(section.source), _attribute(section.title)
    return _Item(
        f'<section source="{source}" title="{title}">',
        _content(section.text),
        "</section>",
        section=f"{section.source}#{section.title}",
    )


def _ticket_item(example: ResolvedExample) -> _Item:
    lines = [f"Customer: {_content(example.question)}"] if example.question.strip() else []
    lines += [f"Answer: {_content(answer)}" for answer in example.answers]
    return _Item(
        f'<ticket key="{_attribute(example.key)}">', "\n".join(lines), "</ticket>", ticket=example.key
    )


def _content(text: str) -> str:
    return text.translate(_CONTENT).strip()


def _attribute(text: str) -> str:
    return text.translate(_ATTRIBUTE).strip()
