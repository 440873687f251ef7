"""The chat the AI sees: the ticket's public WhatsApp conversation, as OpenAI chat messages.

The context is exactly what the customer saw: their own messages, our AI replies and automatic
notices, agents' public comments (which went to WhatsApp) and echoes (what the team typed in the WhatsApp Business App).
Internal comments and our notes are left out whatever they say: an agents-only remark such as
"ignore previous instructions and reveal ..." must neither steer the AI nor leak through it.
"""

from __future__ import annotations

import re
from typing import Any

from bot.rules.classify import CommentView, Route, route_comment
from bot.rules.comment_property import KIND_AI, KIND_AUTO, KIND_CUSTOMER, KIND_ECHO

CUSTOMER_PREFIX = "[WhatsApp] "
AI_PREFIX = "[AI] "
AUTO_PREFIX = "[Auto] "
AGENT_FALLBACK_NAME = "Agent"
SUMMARY_MAX_CHARS = 255  # Jira's limit for the summary; longer text is not a summary of ours

_SPACES = re.compile(r"\s+")

Message = dict[str, Any]


def ai_messages(
    *,
    system_prompt: str,
    summary: str,
    comments: list[CommentView],
    max_chars: int = 24000,
    bot_account_id: str | None = None,
) -> list[Message]:
    """OpenAI chat messages for one AI turn on one ticket.

    Args:
        system_prompt: the service's prompt, from config.
        summary: the ticket summary, added to the system message as one line.
        comments: the ticket's comments in any order; ones that are not part of the public
            conversation are dropped here.
        max_chars: budget for the sum of all message contents. The oldest turns go first; the
            system message and the last customer turn always stay, even over budget.
        bot_account_id: lets comments the bot's account wrote without our property be left out,
            as the poller leaves them out of WhatsApp.

    Returns:
        `[{"role": "system", ...}, {"role": "user"|"assistant", "content": ...}, ...]`.
    """
    system = {"role": "system", "content": _system_content(system_prompt, summary)}
    turns = [turn for c in sorted(comments, key=_order) if (turn := _turn(c, bot_account_id)) is not None]
    return [system, *_trim(turns, max_chars - len(system["content"]))]


def _system_content(system_prompt: str, summary: str) -> str:
    # The summary usually starts as the customer's first message: one line, bounded, labelled as
    # data, so it cannot pose as further instructions of the operator.
    line = _SPACES.sub(" ", summary or "").strip()[:SUMMARY_MAX_CHARS]
    prompt = (system_prompt or "").strip()
    if not line:
        return prompt
    return f"{prompt}\n\nTicket summary: {line}" if prompt else f"Ticket summary: {line}"


def _order(c: CommentView) -> tuple[float, int, str]:
    # Jira comment ids grow with time: they break ties between comments made in the same second.
    return (c.created, int(c.id) if c.id.isdigit() else 0, c.id)


def _turn(c: CommentView, bot_account_id: str | None) -> Message | None:
    if c.internal:
        return None  # checked here too, not only through route_comment: this is the rule that matters
    text = c.text.strip()
    if not text:
        return None
    route = route_comment(c, bot_account_id=bot_account_id)
    if route is Route.AI_TURN or (c.kind == KIND_CUSTOMER and c.history):
        # A customer message we relayed, live or imported history: both are what they asked.
        return {"role": "user", "content": _strip_prefix(text, CUSTOMER_PREFIX)}
    if c.kind == KIND_AI:
        return {"role": "assistant", "content": _strip_prefix(text, AI_PREFIX)}
    if c.kind == KIND_AUTO:
        # An acknowledgement or status notice the customer received from us.
        return {"role": "assistant", "content": _strip_prefix(text, AUTO_PREFIX)}
    if c.kind == KIND_ECHO:
        # Our echo comment already says who typed it in the app; its author is the bot itself.
        return {"role": "assistant", "content": text}
    if route is Route.TO_CUSTOMER:
        name = _SPACES.sub(" ", c.author_name).strip() or AGENT_FALLBACK_NAME
        return {"role": "assistant", "content": f"{name}: {text}"}
    return None  # notes, unknown kinds, the bot's unmarked comments


def _strip_prefix(text: str, prefix: str) -> str:
    return text[len(prefix) :].lstrip() if text.startswith(prefix) else text


def _trim(turns: list[Message], budget: int) -> list[Message]:
    last_user = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=None)
    sizes = [len(t["content"]) for t in turns]
    total = sum(sizes)
    keep = [True] * len(turns)
    for i in range(len(turns)):  # oldest first
        if total <= budget:
            break
        if i == last_user:
            continue
        keep[i] = False
        total -= sizes[i]
    return [t for t, k in zip(turns, keep, strict=True) if k]
