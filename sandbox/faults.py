"""Injected failures and latency for the loopback sandboxes.

A sandbox calls ``FaultPlan.check(method, path)`` before routing a request; when
a failure is due it sends the returned ``FaultResponse`` instead of the real
answer. Tests use it to rehearse 429s with ``Retry-After``, 5xx outages and slow
upstreams without touching the sandbox's state.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus


@dataclass(frozen=True)
class FaultResponse:
    """What to send instead of the real answer."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | None = None


@dataclass
class _Rule:
    status: int
    remaining: int | None  # None: unlimited until ``until``
    until: float | None  # monotonic deadline for time-boxed rules
    path_re: re.Pattern[str] | None
    retry_after: float | None
    body: dict | None
    headers: dict[str, str]

    def applies(self, path: str, now: float) -> bool:
        if not _alive(self, now):
            return False
        return self.path_re is None or self.path_re.search(path) is not None


def _generic_body(status: int) -> dict:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Injected failure"
    return {"error": {"code": status, "message": phrase}}


def _format_seconds(seconds: float) -> str:
    # Whole seconds as RFC 9110 wants; fractions stay fractional so tests can use
    # sub-second back-offs (clients should parse with float()).
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class FaultPlan:
    """Thread-safe queue of injected failures plus an optional fixed latency.

    Args:
        default_body: builds the error body for a status when a rule gives none,
            so each sandbox can speak its API's error dialect.
    """

    def __init__(self, default_body: Callable[[int], dict] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._latency = 0.0
        self._default_body = default_body or _generic_body

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        retry_after: float | None = None,
        path_regex: str | None = None,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Fail the next ``count`` requests whose path matches ``path_regex`` (re.search)."""
        self._add(_Rule(status, count, None, _compile(path_regex), retry_after, body, dict(headers or {})))

    def fail_for(
        self,
        seconds: float,
        status: int = 503,
        *,
        retry_after: float | None = None,
        path_regex: str | None = None,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Fail every matching request for the next ``seconds`` seconds."""
        until = time.monotonic() + seconds
        self._add(_Rule(status, None, until, _compile(path_regex), retry_after, body, dict(headers or {})))

    def set_latency(self, seconds: float) -> None:
        """Delay every checked request by ``seconds`` (0 turns it off)."""
        with self._lock:
            self._latency = max(0.0, float(seconds))

    def clear(self) -> None:
        """Drop all pending failures and the latency."""
        with self._lock:
            self._rules.clear()
            self._latency = 0.0

    def pending(self) -> int:
        """Number of rules that can still fire (for tests and the control route)."""
        now = time.monotonic()
        with self._lock:
            return sum(1 for r in self._rules if _alive(r, now))

    def check(self, method: str, path: str) -> FaultResponse | None:
        """Apply latency, then return the failure due for this request, if any.

        Rules fire in the order they were added; a counted rule is consumed by
        the request it fails. ``method`` is accepted for future method filters.
        """
        with self._lock:
            latency = self._latency
            now = time.monotonic()
            # Forget exhausted rules so the list does not grow in long runs.
            self._rules = [r for r in self._rules if _alive(r, now)]
            rule = next((r for r in self._rules if r.applies(path, now)), None)
            if rule is not None and rule.remaining is not None:
                rule.remaining -= 1
        if latency:
            # Sleep outside the lock so concurrent requests are delayed in parallel.
            time.sleep(latency)
        if rule is None:
            return None
        headers = dict(rule.headers)
        if rule.retry_after is not None:
            headers["Retry-After"] = _format_seconds(rule.retry_after)
        body = rule.body if rule.body is not None else self._default_body(rule.status)
        return FaultResponse(rule.status, headers, body)

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)


def _alive(rule: _Rule, now: float) -> bool:
    if rule.until is not None and now >= rule.until:
        return False
    return rule.remaining is None or rule.remaining > 0


def _compile(path_regex: str | None) -> re.Pattern[str] | None:
    return re.compile(path_regex) if path_regex else None
