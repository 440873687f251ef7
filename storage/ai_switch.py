"""`/ai off` and `/ai on`: whether the AI may answer on a ticket, as the latest command said.

Commands arrive through the poll job, which re-reads comments (its overlap) and may run on two
instances at once, so the same or an older command can be applied after a newer one. Every row
remembers the command comment that decided it, and only a command at least as recent replaces
it: later `comment_created`, or the same time and a later comment id. Jira's comment ids are
increasing numbers; comparing (length, text) orders such strings numerically, in SQL and in
Python alike, without a cast that differs per engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import peewee

from storage.db import guarded
from storage.models import KEY_LENGTH, AiSwitchRow
from storage.transactions import transact

_COMMENT_ID_LENGTH = 64
_IN_CHUNK = 500


class AiSwitch:
    """The AI's on/off state per ticket; every method is safe from many threads and processes."""

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def set_enabled(self, issue_key: str, *, enabled: bool, comment_id: str, comment_created: float) -> bool:
        """Apply an `/ai on` or `/ai off` command unless a newer one is stored.

        Args:
            comment_id: the command's comment (Jira's id), which decides among commands made
                at the same time.
            comment_created: the command comment's creation time (epoch seconds).

        Returns:
            Whether the stored state is now this command's (also when it was already: the
            same comment applied again).

        Raises:
            ValueError: an issue key or comment id too long to store.
            StorageUnavailable: the database did not answer (nothing stored).
        """
        if len(issue_key) > KEY_LENGTH or len(comment_id) > _COMMENT_ID_LENGTH:
            raise ValueError("issue_key or comment_id too long to store")
        S = AiSwitchRow
        values = {
            "enabled": int(enabled),
            "comment_id": comment_id,
            "comment_created": comment_created,
            "updated_at": self.clock(),
        }
        same_time_later_id = (S.comment_created == comment_created) & (
            (peewee.fn.LENGTH(S.comment_id) < len(comment_id))
            | ((peewee.fn.LENGTH(S.comment_id) == len(comment_id)) & (S.comment_id <= comment_id))
        )
        not_newer = (S.comment_created < comment_created) | same_time_later_id

        def work() -> bool:
            # Insert-if-absent then a conditional update: one spelling on every engine, and the
            # update's WHERE is re-checked against the row as it stands once its lock is ours.
            inserted = S.insert(issue_key=issue_key, **values).on_conflict_ignore().as_rowcount()
            if inserted.execute(self.db):
                return True
            S.update(values).where((S.issue_key == issue_key) & not_newer).execute(self.db)
            # Read back rather than trust the row count: MySQL counts an update that changed
            # nothing (the same command again, at the same clock) as no row.
            stored = S.select(S.comment_id).where(S.issue_key == issue_key).scalar(self.db)
            return bool(stored == comment_id)

        return transact(self.db, work)

    def enabled(self, issue_key: str) -> bool:
        """Whether the AI may answer on this ticket: yes unless a command turned it off."""
        S = AiSwitchRow
        query = S.select(S.enabled).where(S.issue_key == issue_key)
        with guarded(self.db):
            value = query.scalar(self.db)
        return value is None or bool(value)

    def disabled_among(self, issue_keys: Iterable[str]) -> set[str]:
        """Those of `issue_keys` on which the AI is switched off."""
        S = AiSwitchRow
        keys = list(dict.fromkeys(issue_keys))
        found: set[str] = set()
        with guarded(self.db):
            for start in range(0, len(keys), _IN_CHUNK):
                chunk = keys[start : start + _IN_CHUNK]
                query = S.select(S.issue_key).where(S.issue_key.in_(chunk) & (S.enabled == 0)).tuples()
                found.update(key for (key,) in query.execute(self.db))
        return found
