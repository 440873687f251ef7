"""Loopback stand-in for OpenAI's chat completions API; see sandbox.py."""

from .sandbox import OpenAISandbox

__all__ = ["OpenAISandbox"]
