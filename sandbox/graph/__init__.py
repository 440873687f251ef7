"""Loopback stand-in for Meta's WhatsApp Cloud (Graph) API; see sandbox.py."""

from .sandbox import GraphSandbox

__all__ = ["GraphSandbox"]
