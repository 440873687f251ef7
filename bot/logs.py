"""One structlog processor chain for our events and for the stdlib logs of our dependencies.

JSON lines when stdout is not a terminal (systemd's journal, CI), a readable console otherwise.
Configured once by the composition root; nothing happens at import time.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

import structlog

# A run of 7+ digits, optionally after "+", is treated as a phone number wherever it appears in
# a log event: wa_ids, E.164 keys and numbers that slipped into an error message alike.
_PHONE = re.compile(r"(?<![\w.])(\+?)(\d{1,3})(\d{3,})(\d{2})(?![\w])")


def mask_digits(text: str) -> str:
    """Keep a country-code-sized prefix and the last two digits of every phone-like number."""

    def repl(m: re.Match[str]) -> str:
        return f"{m.group(1)}{m.group(2)}{'*' * len(m.group(3))}{m.group(4)}"

    return _PHONE.sub(repl, text)


class _Scrubber:
    """Masks phone numbers and removes configured secrets from every string in an event."""

    # Fields that carry Meta/Jira ids made of digits but are not personal data.
    _ID_FIELDS = frozenset({"phone_number_id", "comment_id", "issue_id", "row_id", "port", "pid"})

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def _clean(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, "***")
        return mask_digits(value)

    def __call__(self, _logger: object, _name: str, event: dict) -> dict:
        for key, value in list(event.items()):
            if key in self._ID_FIELDS:
                continue
            if isinstance(value, str):
                event[key] = self._clean(value)
            elif isinstance(value, BaseException):
                event[key] = self._clean(repr(value))
        return event


_scrubber = _Scrubber()


def add_secrets(secrets: Iterable[str]) -> None:
    """Register more values that must never appear in a log line (called once config is read)."""
    _scrubber.secrets = sorted(
        set(_scrubber.secrets) | {s for s in secrets if s and len(s) >= 4}, key=len, reverse=True
    )


def configure(level: str = "info", fmt: str = "auto", secrets: Iterable[str] = (), stream=None) -> None:
    """Route structlog and stdlib logging to `stream` (default stdout: the journal reads it)."""
    add_secrets(secrets)
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _scrubber,
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: tests (capture_logs) and the CLI reconfigure logging within one process.
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our dependencies are chatty at INFO (apscheduler logs every run); keep their warnings.
    for noisy in ("apscheduler", "urllib3", "jira", "peewee", "openai", "httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
