"""A loopback Jira stand-in (Cloud by default) for tests and ``wajira demo``."""

from .sandbox import JiraSandbox

__all__ = ["JiraSandbox"]
