"""Is a configured credential real? Placeholders left from an example file are refused.

A placeholder that reaches production is worse than a missing value: `app_secret = "change-me"`
lets anyone who has read the example sign webhooks the daemon would accept. Pure: data in,
reason out; the reader adds the dotted key and where the value came from.
"""

from __future__ import annotations

# The example values people ship or copy: compared whole, lower-cased, after stripping whitespace.
_EXACT = ("change-me", "changeme")


def placeholder_reason(value: str, *, min_length: int = 0) -> str | None:
    """Why `value` cannot be a real credential, or None when it may be one.

    The reason describes the rule that matched and never repeats the value, which may be a
    real secret that merely looks like a placeholder.

    Args:
        value: the final value, whichever source supplied it.
        min_length: the shortest acceptable value, in characters (after stripping whitespace).

    Returns:
        "is empty", a "looks like a placeholder …" reason, "is shorter than N characters", or None.
    """
    text = value.strip()
    folded = text.casefold()
    if not text:
        return "is empty"
    if folded in _EXACT:
        return f'is a placeholder ("{folded}"), not a real value'
    if folded.startswith("xxx"):
        return 'looks like a placeholder (starts with "xxx"), not a real value'
    if text.startswith("<") and text.endswith(">"):
        return "looks like a placeholder (written as <...>), not a real value"
    if folded.startswith("your"):
        return 'looks like a placeholder (starts with "your"), not a real value'
    if len(text) < min_length:
        return f"is shorter than {min_length} characters"
    return None
