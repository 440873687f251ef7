"""One structlog processor chain for our events and for the stdlib logs of our dependencies.

JSON lines when stdout is not a terminal (systemd's journal, CI), a readable console otherwise.
Configured once by the composition root; nothing happens at import time.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterable
from types import TracebackType

import structlog

# A run of 7+ digits, optionally after "+", is treated as a phone number wherever it appears in
# a log event: wa_ids, E.164 keys and numbers that slipped into an error message alike.
_PHONE = re.compile(r"(?<![\w.])(\+?)(\d{1,3})(\d{4,})(\d{2})(?![\w])")


def mask_digits(text: str) -> str:
    """Keep a country-code-sized prefix and the last two digits of every phone-like number."""

    def repl(m: re.Match[str]) -> str:
        return f"{m.group(1)}{m.group(2)}{'*' * len(m.group(3))}{m.group(4)}"

    return _PHONE.sub(repl, text)


# Credentials that travel in HTTP headers, wherever a header dump lands in a string: the value
# after `Cookie:`, `Set-Cookie:` or `Authorization:` (also as `'Set-Cookie': '…'` in a dict's
# repr or `(b'Set-Cookie', b'…')` in a list of pairs), and a Bearer or Basic credential alone.
_HEADER_VALUE = re.compile(
    r"(?i)\b((?:set-)?cookie|authorization|proxy-authorization|x-api-key|api-key)"
    r"""(['"]?\s*[:=,]\s*b?['"]?)[^'"\r\n]*"""
)
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_CREDENTIAL_HINT = re.compile(r"(?i)cookie|auth|key|bearer|basic")
_CREDENTIAL_HEADERS = frozenset(
    {"cookie", "set-cookie", "authorization", "proxy-authorization", "x-api-key", "api-key"}
)


def _credential_header(name: object) -> bool:
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).decode("latin-1")
    return isinstance(name, str) and name.lower() in _CREDENTIAL_HEADERS


def _mask_credentials(text: str) -> str:
    if not _CREDENTIAL_HINT.search(text):
        return text  # the common case, without the substitutions
    return _CREDENTIAL.sub(r"\1 ***", _HEADER_VALUE.sub(r"\1\2***", text))


class _Scrubber:
    """Masks phone numbers and header credentials and removes configured secrets from every
    string in an event, nested ones and rendered tracebacks (`exception`) included."""

    # Fields that carry Meta/Jira ids made of digits but are not personal data.
    _ID_FIELDS = frozenset({"phone_number_id", "comment_id", "issue_id", "row_id", "port", "pid"})

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def _clean(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, "***")
        return mask_digits(_mask_credentials(value))

    def _value(self, value: object, depth: int = 0) -> object:
        if isinstance(value, str):
            return self._clean(value)
        if isinstance(value, BaseException):
            return self._clean(exception_summary(value))
        if depth < 4 and isinstance(value, dict):
            return {
                k: "***" if _credential_header(k) else self._value(v, depth + 1) for k, v in value.items()
            }
        if depth < 4 and isinstance(value, (list, tuple, set, frozenset)):
            if len(value) == 2 and isinstance(value, tuple) and _credential_header(value[0]):
                return [self._value(value[0], depth + 1), "***"]  # a (name, value) header pair
            return [self._value(v, depth + 1) for v in value]
        if isinstance(value, (bytes, bytearray)):
            return self._clean(bytes(value[:200]).decode("utf-8", "replace"))
        return value

    def __call__(self, _logger: object, _name: str, event: dict) -> dict:
        for key, value in event.items():
            if key in self._ID_FIELDS:
                continue
            if isinstance(value, str):
                event[key] = self._clean(value)  # the common case first: no dispatch
            elif not isinstance(value, (int, float, bool, type(None))):
                event[key] = self._value(value)
        return event


# -- exceptions: what a traceback may show ------------------------------------------------------


def _carries_response(exc: BaseException) -> bool:
    # `jira.JIRAError`, `requests.HTTPError`, `openai.APIStatusError`, `httpx.HTTPStatusError`:
    # their text is built from the response (jira's includes every request and response header
    # and the whole body), so only the status is shown.
    response = getattr(exc, "response", None)
    return response is not None and hasattr(response, "headers")


def _status_of(exc: BaseException) -> object:
    for source in (exc, getattr(exc, "response", None)):
        for name in ("status_code", "status"):
            value = getattr(source, name, None)
            if isinstance(value, int):
                return value
    return "?"


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def exception_summary(exc: BaseException) -> str:
    """`Type: text` as a traceback's last line, with a vendor's response reduced to its status."""
    if _carries_response(exc):
        return f"{_type_name(exc)}: HTTP {_status_of(exc)} (response withheld from the log)"
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not break the log line
        text = "<unprintable>"
    return f"{_type_name(exc)}: {text}" if text else _type_name(exc)


def format_exception(exc_info: tuple[type[BaseException], BaseException, TracebackType | None]) -> str:
    """A traceback like Python's, minus what must not be logged.

    Adapter errors (`JiraError`, `GraphError`, `AiError`: `log_cause = False`) stand for the
    vendor's failure and carry its status, code and message: their cause and context, the
    vendor library's exception with headers, cookies and bodies, are not rendered. Any other
    exception that holds an HTTP response shows its status only. The result then goes
    through the scrubber like every other value.
    """
    exc = exc_info[1]
    if exc is None:
        return ""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        block = []
        if current.__traceback__ is not None:
            block.append("Traceback (most recent call last):\n")
            block.extend(traceback.format_tb(current.__traceback__))
        block.append(exception_summary(current) + "\n")
        parts.append("".join(block))
        if getattr(current, "log_cause", True) is False:
            break
        if current.__cause__ is not None:
            parts.append("\nThe above exception was the direct cause of the following exception:\n\n")
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            parts.append("\nDuring handling of the above exception, another exception occurred:\n\n")
            current = current.__context__
        else:
            current = None
    return "".join(reversed(parts)).rstrip("\n")


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
        # Our renderer, not structlog's: it leaves vendors' responses out of tracebacks.
        structlog.processors.ExceptionRenderer(format_exception),
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
    # At DEBUG, httpcore logs every response's raw headers (cookies included): never below WARNING.
    for noisy in (
        "apscheduler",
        "urllib3",
        "jira",
        "peewee",
        "openai",
        "httpx",
        "httpx2",
        "httpcore",
        "httpcore2",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger whose lines carry `"logger": name`, as the stdlib's do."""
    return structlog.get_logger(name)
