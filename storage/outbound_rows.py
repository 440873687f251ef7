"""What an outbound row is, checked and inserted: shared by `OutboundQueue.enqueue_many`,
`HandledComments.record` and `AiTurns.mark_done`, which insert inside their own transactions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import peewee

from storage.models import KEY_LENGTH, OutboundMessageRow
from storage.queue import PENDING

_REQUIRED = ("dedupe_key", "issue_key", "conversation_key", "phone_number_id", "kind", "body")
_OPTIONAL = ("to_wa_id", "to_user_id")
_PAYLOAD = "payload"
PAYLOAD_MAX_CHARS = 8192
"""A payload names a file or a template, it does not hold one: 8 KB is far more than that needs."""
_CHUNK = 200


def prepare_rows(rows: Iterable[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
    """Validate the caller's dicts and turn them into table rows, first of each key kept.

    A row may carry `payload`: a JSON-serialisable dict (or None) with what a message that is
    not plain text needs (a file's attachment id, name and type; a template's name), stored as
    compact JSON.

    Raises:
        ValueError: a required key is missing or empty, an unknown key is present, the
            dedupe key is too long to index, or the payload is not a dict, not JSON or larger
            than PAYLOAD_MAX_CHARS. A row without any recipient is accepted: the
            outbox fails it visibly, where rejecting it here would fail the poll job over
            and over on the same comment.
    """
    prepared: dict[str, dict[str, Any]] = {}
    for row in rows:
        unknown = set(row) - set(_REQUIRED) - set(_OPTIONAL) - {_PAYLOAD}
        if unknown:
            raise ValueError(f"unknown outbound field(s): {sorted(unknown)}")
        # Checked here because SQLite's INSERT OR IGNORE would silently drop a row that
        # breaks NOT NULL, and MySQL's INSERT IGNORE would truncate a long key.
        for key in _REQUIRED:
            if not isinstance(row.get(key), str) or (key != "body" and not row[key]):
                raise ValueError(f"outbound field {key!r} must be a non-empty string")
        if len(row["dedupe_key"]) > KEY_LENGTH:
            raise ValueError(f"dedupe_key longer than {KEY_LENGTH} characters")
        prepared.setdefault(
            row["dedupe_key"],
            {
                **{key: row[key] for key in _REQUIRED},
                **{key: row.get(key) for key in _OPTIONAL},
                _PAYLOAD: encode_payload(row.get(_PAYLOAD)),
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "via_template": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
    return list(prepared.values())


def encode_payload(payload: object) -> str | None:
    """A payload as the compact JSON text stored, or None for none.

    ASCII only (`ensure_ascii`): any text a filename may hold, lone surrogates included, is
    stored and read back exactly on every engine.

    Raises:
        ValueError: not a dict, not serialisable as strict JSON, or too large.
    """
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise ValueError(f"outbound payload must be a dict, not {type(payload).__name__}")
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"outbound payload is not JSON: {exc}") from exc
    if len(text) > PAYLOAD_MAX_CHARS:
        raise ValueError(f"outbound payload longer than {PAYLOAD_MAX_CHARS} characters as JSON")
    return text


def decode_payload(text: str | None) -> dict[str, Any] | None:
    """A stored payload back as a dict; None for none, and for anything unreadable (a row must
    still load, so the outbox can fail it visibly rather than crash on it)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def insert_rows(db: peewee.Database, prepared: list[dict[str, Any]]) -> int:
    """Insert prepared rows in the caller's transaction, ignoring known dedupe keys; in the
    given order, so ids (and so sending order) follow it. Returns how many were new."""
    inserted = 0
    for start in range(0, len(prepared), _CHUNK):
        query = (
            OutboundMessageRow.insert_many(prepared[start : start + _CHUNK])
            .on_conflict_ignore()
            .as_rowcount()
        )
        inserted += query.execute(db)
    return inserted
