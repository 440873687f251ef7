"""FakeAI: stands in for `OpenAIAdapter` (`bot.ports.AiPort`)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bot.ai.client import AiReply
from tests.fakes.script import Scripted


@dataclass
class FakeAI(Scripted):
    """Stands in for `OpenAIAdapter`. Remembers every request (`requests`, and `prompts`:
    the messages of each); answers with the scripted `replies` in turn, then `default_reply`;
    `fail("complete", *errors)` scripts exceptions (None: that call answers normally)."""

    default_reply: str = "Thanks for writing! An agent will look at this shortly."
    tokens_per_reply: int = 50
    replies: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def prompts(self) -> list[list[dict[str, Any]]]:
        return [r["messages"] for r in self.requests]

    def reply_with(self, *texts: str) -> None:
        self.replies.extend(texts)

    def complete(
        self, *, model: str, messages: list[dict[str, Any]], max_tokens: int | None = None
    ) -> AiReply:
        with self._lock:
            self.requests.append(
                {"model": model, "messages": copy.deepcopy(messages), "max_tokens": max_tokens}
            )
        self._enter("complete")
        with self._lock:
            text = self.replies.pop(0) if self.replies else self.default_reply
        # All of it counted as completion: a test's budget arithmetic stays obvious.
        return AiReply(
            text=text,
            model=model,
            prompt_tokens=0,
            completion_tokens=self.tokens_per_reply,
            total_tokens=self.tokens_per_reply,
        )
