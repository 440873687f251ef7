"""Loopback stand-in for OpenAI's chat completions API; see sandbox.py."""

from .sandbox import OpenAISandbox
from .tools import StubToolCall

__all__ = ["OpenAISandbox", "StubToolCall"]
