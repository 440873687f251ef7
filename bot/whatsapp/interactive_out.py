"""Interactive messages we send: a list the customer picks one row from (the CSAT question).

The body is the v23 spec's `InteractiveMessage` with `interactive.type: "list"`: `body.text`,
`action.button` (the label that opens the list) and `action.sections[].rows[]` of `id`, `title`
and an optional `description` (spec: `InteractiveObject`, `BodyObject`, `ActionObject`,
`SectionObject`). The customer's pick comes back as a `list_reply` naming the row's `id`.

Meta's limits (body 1024 characters, button 20, row title 24, row description 72, row id 200,
10 rows in all, a section title of 24 required once there are several sections) are the
caller's to respect: nothing here clips a text, since a clipped rating label would mislead the
customer. Meta refuses what breaks them (`GraphRejected`, code 131009).
"""

from __future__ import annotations

from typing import Any, Protocol

from bot.whatsapp.recipient import Recipient, envelope

_ROW_KEYS = frozenset({"id", "title", "description"})


class _Transport(Protocol):
    """The part of `GraphAdapter` the mixin relies on: one send through its error ladder."""

    def _send(self, operation: str, phone_number_id: str, to: Recipient, message: dict[str, Any]) -> str: ...


class InteractiveSending:
    """`send_list`, mixed into `GraphAdapter`."""

    def send_list(
        self: _Transport,
        phone_number_id: str,
        to: Recipient,
        *,
        body: str,
        button: str,
        rows: list[dict[str, str]],
        section_title: str = "",
    ) -> str:
        """Send an interactive list message (free-form: only inside the 24-hour window).

        Args:
            phone_number_id: the business number sending it.
            to: the customer.
            body: the question shown in the message (≤ 1024 characters).
            button: the label of the button that opens the list (≤ 20).
            rows: in order, each {"id", "title"} and optionally "description"; the `id` is what
                the customer's `list_reply` carries back (≤ 200; titles ≤ 24, descriptions ≤ 72).
            section_title: the one section's title (≤ 24); "" sends none.

        Returns:
            The new message's wamid.

        Raises:
            ValueError: a row lacks `id` or `title`, or has another key (nothing is dropped
                silently).
            WindowClosed: 24 h since the customer last wrote; a list cannot go as a template.
            GraphRejected: Meta refuses the list (131009 for a part out of bounds), or the
                recipient (131026, …).
            GraphRateLimited, GraphAuthFailed, GraphUnavailable: as for `send_text`.
        """
        message = list_message(to, body=body, button=button, rows=rows, section_title=section_title)
        return self._send("send_list", phone_number_id, to, message)


def list_message(
    to: Recipient, *, body: str, button: str, rows: list[dict[str, str]], section_title: str = ""
) -> dict[str, Any]:
    """The `/messages` body for a one-section interactive list.

    Raises:
        ValueError: a row lacks `id` or `title`, or carries a key Meta's row has not.
    """
    section: dict[str, Any] = {"rows": [_row(row) for row in rows]}
    if section_title:
        section["title"] = section_title
    interactive = {
        "type": "list",
        "body": {"text": body},
        "action": {"button": button, "sections": [section]},
    }
    return {**envelope(to), "type": "interactive", "interactive": interactive}


def _row(row: dict[str, str]) -> dict[str, str]:
    unknown = set(row) - _ROW_KEYS
    if unknown:
        raise ValueError(f"a list row takes id, title and description only, not {', '.join(sorted(unknown))}")
    if not row.get("id") or not row.get("title"):
        raise ValueError("a list row needs an id and a title")
    out = {"id": row["id"], "title": row["title"]}
    if row.get("description"):
        out["description"] = row["description"]
    return out
