"""The `last_error` columns: what an operator reads about a row's latest failure."""

from __future__ import annotations

MAX_ERROR_CHARS = 2000
"""last_error is for operators; a whole stack trace is not needed."""


def clip_error(error: str) -> str:
    """`error` cut to `MAX_ERROR_CHARS`, an ellipsis marking the cut."""
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"
