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


class _LineWriter:
    """structlog's logger for our own events: one rendered line per event, written under the
    stdlib handler's lock so that our lines and our dependencies' never interleave.

    Our events skip the stdlib `logging` machinery (a LogRecord, a formatter, a second
    processor pass), which cost more than anything else a webhook does besides storing it.
    """

    def __init__(self, handler: logging.StreamHandler, name: str) -> None:
        self._handler = handler
        self.name = name  # read by structlog.stdlib.add_logger_name

    def msg(self, line: str) -> None:
        handler = self._handler
        handler.acquire()
        try:
            handler.stream.write(line + "\n")
            handler.stream.flush()
        except (OSError, ValueError):  # a closed or full stream: as the stdlib, never fail the caller
            pass
        finally:
            handler.release()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def configure(level: str = "info", fmt: str = "auto", secrets: Iterable[str] = (), stream=None) -> None:
    """Route structlog and stdlib logging to `stream` (default stdout: the journal reads it)."""
    add_secrets(secrets)
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    common: list = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _scrubber,
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *common],
        )
    )
    structlog.configure(
        processors=[structlog.stdlib.add_logger_name, *common, renderer],
        logger_factory=lambda name="", *_: _LineWriter(handler, name),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # Not cached: tests (capture_logs) and the CLI reconfigure logging within one process.
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our dependencies are chatty at INFO (apscheduler logs every run); keep their warnings.
    for noisy in ("apscheduler", "urllib3", "jira", "peewee", "openai", "httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger whose lines carry `"logger": name`, as the stdlib's do."""
    return structlog.get_logger(name)
