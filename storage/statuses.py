"""Delivery statuses the webhook stored, fed once each to the outbox.

The webhook writes `message_status` rows (see `storage.ingest`) and answers Meta; the outbox
later reads the unapplied ones, moves its outbound rows with `OutboundQueue.apply_status`,
and marks them applied. A status whose wamid has no outbound row yet (Meta's `sent` can
overtake our own `mark_sent` commit) may be left unapplied and read again next time.
"""

from __future__ import annotations

import json
from typing import Any

import peewee

from storage.db import guarded
from storage.models import StatusRow


class StatusFeed:
    """Args:
    db: the database.
    """

    def __init__(self, db: peewee.Database):
        self.db = db

    def unapplied(self, limit: int = 500) -> list[dict[str, Any]]:
        """Statuses not yet applied, in arrival order.

        Returns:
            dicts with id, wamid, status, meta_timestamp (epoch seconds), errors (Meta's
            error objects, a list).
        """
        S = StatusRow
        query = (
            S.select(S.id, S.wamid, S.status, S.meta_timestamp, S.errors_json)
            .where(S.applied == 0)
            .order_by(S.id)
            .limit(limit)
            .tuples()
        )
        with guarded(self.db):
            rows = list(query.execute(self.db))
        return [
            {
                "id": int(row_id),
                "wamid": wamid,
                "status": status,
                "meta_timestamp": int(ts),
                "errors": _errors(errors_json),
            }
            for row_id, wamid, status, ts, errors_json in rows
        ]

    def mark_applied(self, ids: list[int]) -> None:
        S = StatusRow
        ids = list(ids)
        with guarded(self.db):
            for start in range(0, len(ids), 500):
                S.update(applied=1).where(S.id.in_(ids[start : start + 500])).execute(self.db)


def _errors(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return []  # A row written by hand or by a future version: treat as no errors.
    return value if isinstance(value, list) else [value]
