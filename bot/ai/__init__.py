"""The AI side: the OpenAI adapter and its exceptions, tool calling, and the knowledge index (the
rules for when to answer live in `bot.rules.ai_policy`, the prompt's contents in
`bot.rules.ai_context`)."""

from bot.ai.client import AiError, AiRejected, AiReply, AiToolsUnsupported, AiUnavailable, OpenAIAdapter
from bot.ai.tools import Tool, ToolCall

__all__ = [
    "AiError",
    "AiRejected",
    "AiReply",
    "AiToolsUnsupported",
    "AiUnavailable",
    "OpenAIAdapter",
    "Tool",
    "ToolCall",
]
