"""Media tasks: inbound media to download from Graph and attach to the ticket, each once.

The inbox job adds a task once a media message's comment is in Jira (the comment never waits
for the download). The media job claims due tasks and marks each:

    pending ──claim──▶ working ──▶ done | too_large | failed
       ▲                  │
       └── mark_retry ────┘      (a claim that expires is claimed again, attempts + 1)

`uploads` counts begun uploads: a task claimed again after one began looks in Jira for the
attachment before uploading a second copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee

from storage.claims import lock_claimable
from storage.db import guarded, transact
from storage.models import KEY_LENGTH, BaseModel

PENDING, WORKING, DONE, FAILED, TOO_LARGE = "pending", "working", "done", "failed", "too_large"
STATES = (PENDING, WORKING, DONE, FAILED, TOO_LARGE)
_MAX_ERROR_CHARS = 2000


class MediaTaskRow(BaseModel):
    """One medium of a customer's message on its way to becoming a Jira attachment."""

    id = peewee.BigAutoField()
    wamid = peewee.CharField(max_length=KEY_LENGTH)
    media_id = peewee.CharField(max_length=KEY_LENGTH)
    kind = peewee.CharField(max_length=16)
    mime_type = peewee.TextField(null=True)
    filename = peewee.TextField()
    """The attachment's name, decided when the comment naming it was rendered."""
    expected_sha256 = peewee.CharField(max_length=128, null=True)
    """As the webhook gave it (base64)."""
    issue_key = peewee.CharField(max_length=KEY_LENGTH)
    state = peewee.CharField(max_length=16, default=PENDING)
    attempts = peewee.IntegerField(default=0)
    uploads = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DoubleField()
    claimed_by = peewee.CharField(max_length=KEY_LENGTH, null=True)
    claimed_until = peewee.DoubleField(null=True)
    attachment_id = peewee.CharField(max_length=KEY_LENGTH, null=True)
    size = peewee.BigIntegerField(null=True)
    last_error = peewee.TextField(null=True)
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    finished_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "media_task"
        indexes = (
            (("wamid", "media_id"), True),
            (("state", "next_attempt_at"), False),
            (("issue_key",), False),
        )


@dataclass(frozen=True)
class MediaTask:
    id: int
    wamid: str
    media_id: str
    kind: str
    mime_type: str
    filename: str
    expected_sha256: str
    issue_key: str
    state: str
    attempts: int
    uploads: int
    next_attempt_at: float
    attachment_id: str | None
    size: int | None
    last_error: str | None


class MediaTasks:
    """Durable media tasks; every method is safe from many threads and processes."""

    def __init__(self, db: peewee.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def add(
        self,
        *,
        wamid: str,
        media_id: str,
        kind: str,
        mime_type: str,
        filename: str,
        expected_sha256: str,
        issue_key: str,
    ) -> bool:
        """Add a task (once per message and medium; a repeat changes nothing).

        Returns:
            Whether the task is new.

        Raises:
            ValueError: an empty wamid, media_id, kind, filename or issue_key.
            StorageUnavailable: the database did not answer.
        """
        for name, value in (
            ("wamid", wamid),
            ("media_id", media_id),
            ("kind", kind),
            ("filename", filename),
            ("issue_key", issue_key),
        ):
            # SQLite's INSERT OR IGNORE would silently drop a row that breaks NOT NULL.
            if not isinstance(value, str) or not value:
                raise ValueError(f"media task field {name!r} must be a non-empty string")
        now = self.clock()
        values = {
            "wamid": wamid,
            "media_id": media_id,
            "kind": kind,
            "mime_type": mime_type or None,
            "filename": filename,
            "expected_sha256": expected_sha256 or None,
            "issue_key": issue_key,
            "state": PENDING,
            "attempts": 0,
            "uploads": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }

        def work() -> int:
            return MediaTaskRow.insert(**values).on_conflict_ignore().as_rowcount().execute(self.db)

        return bool(transact(self.db, work))

    def claim_due(self, owner: str, *, limit: int = 1, lease_seconds: float = 300) -> list[MediaTask]:
        """Move due tasks to `working` for `owner`: pending ones whose time has come, and
        working ones whose claim expired (their worker died; `attempts` goes up by one)."""
        now = self.clock()
        T = MediaTaskRow
        due = ((T.state == PENDING) & (T.next_attempt_at <= now)) | (
            (T.state == WORKING) & (T.claimed_until < now)
        )

        def work() -> list[dict[str, Any]]:
            candidates = [
                i
                for (i,) in T.select(T.id)
                .where(due)
                .order_by(T.id)
                .limit(limit * 4)
                .tuples()
                .execute(self.db)
            ]
            ids = lock_claimable(self.db, T, candidates, due, limit)
            if not ids:
                return []
            # Read before the claim: MySQL evaluates SET with the new values, left to right.
            reclaimed = [
                i
                for (i,) in T.select(T.id)
                .where(T.id.in_(ids) & (T.state == WORKING))
                .tuples()
                .execute(self.db)
            ]
            (
                T.update(state=WORKING, claimed_by=owner, claimed_until=now + lease_seconds, updated_at=now)
                .where(T.id.in_(ids))
                .execute(self.db)
            )
            if reclaimed:
                T.update(attempts=T.attempts + 1).where(T.id.in_(reclaimed)).execute(self.db)
            return list(T.select().where(T.id.in_(ids)).order_by(T.id).dicts().execute(self.db))

        return [_task(row) for row in transact(self.db, work)]

    def mark_upload_started(self, id: int) -> None:
        """Committed before each upload, so a retry knows to look for it in Jira first."""
        T = MediaTaskRow
        self._update(id, uploads=T.uploads + 1)

    def mark_done(self, id: int, *, attachment_id: str, size: int) -> None:
        self._finish(id, DONE, attachment_id=attachment_id, size=size, last_error=None)

    def mark_too_large(self, id: int, *, size: int | None, reason: str) -> None:
        self._finish(id, TOO_LARGE, size=size, last_error=_clip(reason))

    def mark_failed(self, id: int, *, error: str) -> None:
        self._finish(id, FAILED, last_error=_clip(error))

    def mark_retry(self, id: int, *, error: str, delay_seconds: float, count_attempt: bool) -> int:
        """Back to pending after `delay_seconds`.

        Returns:
            The task's attempts after this call.

        Raises:
            KeyError: no task has this id.
        """
        T = MediaTaskRow
        now = self.clock()

        def work() -> int:
            (
                T.update(
                    state=PENDING,
                    attempts=T.attempts + (1 if count_attempt else 0),
                    next_attempt_at=now + max(0.0, delay_seconds),
                    last_error=_clip(error),
                    claimed_until=None,
                    updated_at=now,
                )
                .where((T.id == id) & (T.state == WORKING))
                .execute(self.db)
            )
            attempts = T.select(T.attempts).where(T.id == id).scalar(self.db)
            if attempts is None:
                raise KeyError(id)
            return int(attempts)

        return transact(self.db, work)

    def get(self, id: int) -> MediaTask | None:
        return self._first(MediaTaskRow.id == id)

    def for_wamid(self, wamid: str) -> MediaTask | None:
        return self._first(MediaTaskRow.wamid == wamid)

    def stats(self) -> dict[str, Any]:
        """Tasks per state (every state named) and how overdue the oldest due pending task is."""
        T = MediaTaskRow
        now = self.clock()
        by_state = T.select(T.state, peewee.fn.COUNT(T.id)).group_by(T.state).tuples()
        oldest = T.select(peewee.fn.MIN(T.next_attempt_at)).where(
            (T.state == PENDING) & (T.next_attempt_at <= now)
        )
        with guarded(self.db):
            counts = dict(by_state.execute(self.db))
            first = oldest.scalar(self.db)
        out: dict[str, Any] = {state: int(counts.get(state, 0)) for state in STATES}
        out["oldest_due_lag_seconds"] = None if first is None else max(0.0, now - first)
        return out

    def _finish(self, id: int, state: str, **values: Any) -> None:
        now = self.clock()
        self._update(id, state=state, claimed_until=None, finished_at=now, **values)

    def _update(self, id: int, **values: Any) -> None:
        # Only a working task: a finished one stays finished, whoever else still holds it.
        T = MediaTaskRow
        query = T.update(updated_at=self.clock(), **values).where((T.id == id) & (T.state == WORKING))
        with guarded(self.db):
            query.execute(self.db)

    def _first(self, where: Any) -> MediaTask | None:
        query = MediaTaskRow.select().where(where).order_by(MediaTaskRow.id).dicts()
        with guarded(self.db):
            row = query.first(self.db)
        return None if row is None else _task(row)


def _clip(error: str) -> str:
    return error if len(error) <= _MAX_ERROR_CHARS else error[: _MAX_ERROR_CHARS - 1] + "…"


def _task(row: dict[str, Any]) -> MediaTask:
    return MediaTask(
        id=int(row["id"]),
        wamid=row["wamid"],
        media_id=row["media_id"],
        kind=row["kind"],
        mime_type=row["mime_type"] or "",
        filename=row["filename"],
        expected_sha256=row["expected_sha256"] or "",
        issue_key=row["issue_key"],
        state=row["state"],
        attempts=int(row["attempts"]),
        uploads=int(row["uploads"]),
        next_attempt_at=float(row["next_attempt_at"]),
        attachment_id=row["attachment_id"],
        size=None if row["size"] is None else int(row["size"]),
        last_error=row["last_error"],
    )
