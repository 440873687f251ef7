"""The AI side: the OpenAI adapter and its exceptions (the rules for when to answer live in
`bot.rules.ai_policy`, the prompt's contents in `bot.rules.ai_context`)."""

from bot.ai.client import AiError, AiRejected, AiReply, AiUnavailable, OpenAIAdapter

__all__ = ["AiError", "AiRejected", "AiReply", "AiUnavailable", "OpenAIAdapter"]
