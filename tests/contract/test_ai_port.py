"""AiPort: the same cases against `FakeAI` and against `OpenAIAdapter` on the OpenAI sandbox."""

from __future__ import annotations

from tests.contract.conftest import AiWorld

MESSAGES = [
    {"role": "system", "content": "You answer customers of a shop."},
    {"role": "user", "content": "Where is my order?"},
]


def test_a_reply_has_text_and_token_usage(ai_world: AiWorld) -> None:
    reply = ai_world.ai.complete(model=ai_world.model, messages=MESSAGES, max_tokens=200)
    assert isinstance(reply.text, str) and reply.text.strip()
    assert reply.model.startswith(ai_world.model)
    assert reply.completion_tokens > 0
    assert reply.total_tokens == reply.prompt_tokens + reply.completion_tokens
    assert reply.finish_reason == "stop"


def test_max_tokens_may_be_left_to_the_model(ai_world: AiWorld) -> None:
    reply = ai_world.ai.complete(model=ai_world.model, messages=MESSAGES)
    assert reply.text.strip()
