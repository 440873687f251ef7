"""`{field}` templates filled from a flow's answers, safely.

Operators write templates in config.toml ("Order issue: {order_id}"); customers supply the values.
Only bare names are allowed as placeholders: `str.format` would also evaluate `{x.attr}` and
`{x[0]}` and apply format specs, which is more power than a ticket summary needs. A value is
inserted as text and never read as a template itself, so a customer cannot inject placeholders.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORMATTER = string.Formatter()


def placeholders(template: str) -> tuple[str, ...]:
    """The field names a template uses, in order, each once.

    Raises:
        ValueError: unbalanced braces, or a placeholder that is not a bare name
            (`{}`, `{0}`, `{a.b}`, `{a[0]}`, `{a!r}`, `{a:>5}`). The message says which.
    """
    names: list[str] = []
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not _NAME.fullmatch(name) or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(f"placeholder {shown} must be a bare field name like {{order_id}}")
        if name not in names:
            names.append(name)
    return tuple(names)


def as_text(value: object) -> str:
    """A flow answer as text: strings as they are, lists joined, JSON for anything else.

    Flow components answer with strings (text inputs, dropdown ids, dates), booleans (opt-ins),
    numbers, and lists (checkbox groups); a missing answer is "".
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(value) if math.isfinite(value) else ""
    if isinstance(value, list):
        return ", ".join(text for text in (as_text(item) for item in value) if text)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return ""


def fill(template: str, values: Mapping[str, object]) -> str:
    """`template` with each `{name}` replaced by `as_text(values[name])`, "" when absent.

    A template that `placeholders` would reject (config validation keeps those out) is
    returned with its placeholders dropped rather than raising: a customer's message must
    never fail on an operator's typo.
    """
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return template
    out: list[str] = []
    for literal, name, _spec, _conversion in parsed:
        out.append(literal)
        if name is not None and _NAME.fullmatch(name):
            out.append(as_text(values.get(name)))
    return "".join(out)
