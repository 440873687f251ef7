"""What an outbound row is, checked and inserted: shared by `OutboundQueue.enqueue_many`,
`HandledComments.record` and `AiTurns.mark_done`, which insert inside their own transactions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import peewee

from storage.models import KEY_LENGTH, OutboundMessageRow
from storage.queue import PENDING

_REQUIRED = ("dedupe_key", "issue_key", "conversation_key", "phone_number_id", "kind", "body")
_OPTIONAL = ("to_wa_id", "to_user_id")
_CHUNK = 200


def prepare_rows(rows: Iterable[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
    """Validate the caller's dicts and turn them into table rows, first of each key kept.

    Raises:
        ValueError: a required key is missing or empty, an unknown key is present, or the
            dedupe key is too long to index. A row without any recipient is accepted: the
            outbox fails it visibly, where rejecting it here would fail the poll job over
            and over on the same comment.
    """
    prepared: dict[str, dict[str, Any]] = {}
    for row in rows:
        unknown = set(row) - set(_REQUIRED) - set(_OPTIONAL)
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
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "via_template": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
    return list(prepared.values())


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
