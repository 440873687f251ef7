"""Text as the database can hold it."""

from __future__ import annotations

from typing import TypeVar, overload

T = TypeVar("T")


@overload
def utf8_safe(value: str) -> str: ...
@overload
def utf8_safe(value: T) -> T: ...
def utf8_safe(value: object) -> object:
    """A string the database can store: lone surrogates become U+FFFD (others pass untouched)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value
