"""A loopback Jira stand-in (Cloud by default) for tests and ``wajira demo``."""

from .app import JiraSandbox

__all__ = ["JiraSandbox"]
