"""Check an interactive `list` message the way the Cloud API does, and summarise it for tests.

Pure: the `interactive` object in, its body text out, or a `GraphError` raised.

The rules are the v23 spec's `InteractiveObject`, `BodyObject`, `ActionObject` (its list branch:
`button` + `sections`) and `SectionObject`, plus one rule the schema cannot say: Meta's
interactive-list guide allows "up to 10 sections, with up to 10 rows for all sections combined"
(the schema's `maxItems: 10` is per section). Lengths count characters, as Meta's do.

Which code: a value Meta refuses (too long, too many, empty, repeated) answers 131009 "Parameter
value is not valid", with the reason in `error_data.details`; that is what Meta answers for
list parts out of bounds (an over-long list footer, a text header without text). A part that is
missing or of the wrong JSON type keeps the sandbox's usual 100 "The parameter … is required.".
"""

from __future__ import annotations

from typing import Any

from .errors import GraphError, invalid_parameter, whatsapp_error

BODY_MAX = 1024
BUTTON_MAX = 20
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
SECTIONS_MAX = 10
ROWS_MAX = 10  # across all sections
SECTION_TITLE_MAX = 24
ROW_ID_MAX = 200
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72


def check_list(content: dict[str, Any]) -> str:
    """Validate `interactive` with `type: "list"`; return its body text.

    Raises:
        GraphError: 100 for a missing part, 131009 for a value out of Meta's bounds.
    """
    body = _object(content.get("body"), "interactive['body']")
    text = _text(body.get("text"), "interactive['body']['text']", BODY_MAX)
    header = content.get("header")
    if header is not None:
        header = _object(header, "interactive['header']")
        if header.get("type") != "text":
            raise _invalid("Header type must be text for list messages.")
        _text(header.get("text"), "interactive['header']['text']", HEADER_TEXT_MAX)
    footer = content.get("footer")
    if footer is not None:
        _text(
            _object(footer, "interactive['footer']").get("text"), "interactive['footer']['text']", FOOTER_MAX
        )
    action = _object(content.get("action"), "interactive['action']")
    _text(action.get("button"), "interactive['action']['button']", BUTTON_MAX)
    _check_sections(action.get("sections"))
    return text


def list_summary(payload: dict[str, Any]) -> dict[str, Any] | None:
    """What a test asserts on for an accepted list: body, button, section titles and every row in
    order (id, title, description when given). None for any other message."""
    interactive = payload.get("interactive")
    if payload.get("type") != "interactive" or not isinstance(interactive, dict):
        return None
    if interactive.get("type") != "list":
        return None
    sections = interactive["action"]["sections"]
    return {
        "body": interactive["body"]["text"],
        "button": interactive["action"]["button"],
        "section_titles": [section.get("title") for section in sections],
        "rows": [dict(row) for section in sections for row in section["rows"]],
    }


def _check_sections(sections: Any) -> None:
    name = "interactive['action']['sections']"
    if not isinstance(sections, list) or not sections:
        raise invalid_parameter(f"The parameter {name} is required.")
    if len(sections) > SECTIONS_MAX:
        raise _invalid(f"Param {name} must have at most {SECTIONS_MAX} sections.")
    seen_ids: set[str] = set()
    total_rows = 0
    for s, raw in enumerate(sections):
        where = f"{name}[{s}]"
        section = _object(raw, where)
        title = section.get("title")
        if title is not None or len(sections) > 1:
            # Meta needs a title to tell sections apart once there are several.
            _text(title, f"{where}['title']", SECTION_TITLE_MAX)
        rows = section.get("rows")
        if not isinstance(rows, list) or not rows:
            raise invalid_parameter(f"The parameter {where}['rows'] is required.")
        total_rows += len(rows)
        if total_rows > ROWS_MAX:
            raise _invalid(f"Param {name} must have at most {ROWS_MAX} rows across all sections.")
        for r, raw_row in enumerate(rows):
            row_id = _check_row(raw_row, f"{where}['rows'][{r}]")
            if row_id in seen_ids:
                raise _invalid(f"Param {where}['rows'][{r}]['id'] repeats the row id '{row_id}'.")
            seen_ids.add(row_id)


def _check_row(raw: Any, where: str) -> str:
    row = _object(raw, where)
    row_id = _text(row.get("id"), f"{where}['id']", ROW_ID_MAX)
    _text(row.get("title"), f"{where}['title']", ROW_TITLE_MAX)
    if "description" in row:
        _text(row["description"], f"{where}['description']", ROW_DESCRIPTION_MAX)
    return row_id


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_parameter(f"The parameter {name} is required.")
    return value


def _text(value: Any, name: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise invalid_parameter(f"The parameter {name} is required.")
    if not value.strip():
        raise _invalid(f"Param {name} cannot be empty.")
    if len(value) > max_len:
        raise _invalid(f"Param {name} must be at most {max_len} characters long.")
    return value


def _invalid(details: str) -> GraphError:
    return whatsapp_error(131009, details=details)
