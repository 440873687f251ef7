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

from storage.models import MediaTaskRow
from storage.queue import PENDING, ClaimableQueue, QueueSpec
from storage.transactions import transact

WORKING, DONE, FAILED, TOO_LARGE = "working", "done", "failed", "too_large"
STATES = (PENDING, WORKING, DONE, FAILED, TOO_LARGE)
__all__ = ["DONE", "FAILED", "PENDING", "STATES", "TOO_LARGE", "WORKING", "MediaTask", "MediaTasks"]


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
        self._queue = ClaimableQueue(db, clock, _SPEC)

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
            return int(MediaTaskRow.insert(**values).on_conflict_ignore().as_rowcount().execute(self.db))

        return bool(transact(self.db, work))

    def claim_due(self, owner: str, *, limit: int = 1, lease_seconds: float = 300) -> list[MediaTask]:
        """Move due tasks to `working` for `owner`: pending ones whose time has come, and
        working ones whose claim expired (their worker died; `attempts` goes up by one)."""
        return self._queue.claim(owner, limit=limit, lease_seconds=lease_seconds)

    def mark_upload_started(self, id: int) -> None:
        """Committed before each upload, so a retry knows to look for it in Jira first."""
        self._queue.update(id, uploads=MediaTaskRow.uploads + 1)

    def mark_done(self, id: int, *, attachment_id: str, size: int) -> None:
        self._queue.finish(id, DONE, attachment_id=attachment_id, size=size, last_error=None)

    def mark_too_large(self, id: int, *, size: int | None, reason: str) -> None:
        self._queue.finish(id, TOO_LARGE, reason=reason, size=size)

    def mark_failed(self, id: int, *, error: str) -> None:
        self._queue.finish(id, FAILED, reason=error)

    def mark_retry(self, id: int, *, error: str, delay_seconds: float, count_attempt: bool) -> int:
        """Back to pending after `delay_seconds`.

        Returns:
            The task's attempts after this call.

        Raises:
            KeyError: no task has this id.
        """
        return self._queue.retry(id, error=error, delay_seconds=delay_seconds, count_attempt=count_attempt)

    def get(self, id: int) -> MediaTask | None:
        return self._queue.first(MediaTaskRow.id == id)

    def for_wamid(self, wamid: str) -> MediaTask | None:
        return self._queue.first(MediaTaskRow.wamid == wamid)

    def stats(self) -> dict[str, Any]:
        """Tasks per state (every state named) and the ages of the pending ones (`ClaimableQueue.stats`)."""
        return self._queue.stats()


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


_SPEC = QueueSpec(
    model=MediaTaskRow,
    load=_task,
    states=STATES,
    in_flight=WORKING,
    # Only a working task moves: a finished one stays finished, whoever else still holds it.
    open_states=(WORKING,),
    reclaim_expired=True,
    finished_column="finished_at",
)
