"""The media job: a customer's image, audio, video, document or sticker → a Jira attachment.

The comment naming the attachment is already on the ticket (the inbox job never waits for a
download); `MediaEnqueuer` adds a task for it, and this job works the tasks off:

    GET /{media-id} (a URL good for 5 minutes) → size check → download (a stale URL is
    fetched again once) → sha256 check → POST /issue/{key}/attachments → done

Too large: nothing is downloaded and an internal note says so. Anything else retries with
back-off; after `max_attempts` the task fails and an internal note says so. Jira being down
does not count against the medium (it is not the medium's fault, and the note would not get
through either).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.jira_api.errors import (
    IssueNotFound,
    JiraAuthFailed,
    JiraRejected,
    JiraUnavailable,
    RateLimited,
)
from bot.logs import get_logger
from bot.ports import GraphPort, JiraPort, MediaTasksPort
from bot.rules.backoff import honour_retry_after, retry_delay
from bot.rules.media import media_ref, sha256_matches
from bot.whatsapp.graph import (
    GraphAuthFailed,
    GraphError,
    GraphRateLimited,
    GraphRejected,
    MediaInfo,
)
from jobs.notes import Notes
from storage.db import StorageUnavailable
from storage.inbound import QueuedMessage
from storage.media import MediaTask

log = get_logger(__name__)

# Meta's CDN answers an expired or doctored media URL with 404 (401/403 on some edges).
_STALE_URL_STATUSES = frozenset({401, 403, 404, 410})


@dataclass(frozen=True)
class MediaPolicy:
    max_bytes: int = 16 * 1024 * 1024
    """`[media] max_bytes`: larger media are not downloaded."""
    max_attempts: int = 5
    """Failed downloads (or hash mismatches) before the task fails with a note."""
    retry_base_seconds: float = 10.0
    retry_max_seconds: float = 900.0
    lease_seconds: float = 300.0
    """How long a worker owns a task before another may take it over."""


class _TooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__("too large")
        self.size = size


@dataclass
class MediaSummary:
    done: int = 0
    too_large: int = 0
    retried: int = 0
    failed: int = 0


@dataclass
class MediaJob:
    tasks: MediaTasksPort
    graph: GraphPort
    jira: JiraPort
    notes: Notes
    owner: str
    policy: MediaPolicy = field(default_factory=MediaPolicy)
    clock: Callable[[], float] = time.time

    def run(self) -> MediaSummary:
        """Work off every due task, one at a time (each holds up to `max_bytes` in memory)."""
        summary = MediaSummary()
        for _ in range(1000):  # bounded: a flood cannot pin the job forever
            claimed = self.tasks.claim_due(self.owner, limit=1, lease_seconds=self.policy.lease_seconds)
            if not claimed:
                break
            outcome = self._process_safely(claimed[0])
            setattr(summary, outcome, getattr(summary, outcome) + 1)
        if any(summary.__dict__.values()):
            log.info("media_sweep", **summary.__dict__)
        return summary

    def _process_safely(self, task: MediaTask) -> str:
        try:
            return self.process(task)
        except StorageUnavailable:
            raise  # the claim expires and the task is taken up again
        except Exception as exc:  # our bug: count it, give up if it persists
            log.exception("media_unexpected_error", wamid=task.wamid, media_id=task.media_id)
            return self._retry(task, f"{type(exc).__name__}: {exc}", count=True)

    def process(self, task: MediaTask) -> str:
        """Fetch one medium and attach it. Returns the outcome (a `MediaSummary` field)."""
        if task.attempts >= self.policy.max_attempts:  # its worker kept dying
            return self._give_up(task, task.last_error or "worker died mid-task")
        try:
            data, info = self._fetch(task)
        except _TooLarge as exc:
            return self._too_large(task, exc.size)
        except GraphRateLimited as exc:
            return self._retry(task, str(exc), count=True, retry_after=exc.retry_after)
        except GraphRejected as exc:
            # A bad token (an operator can fix it) or a CDN refusal even with a fresh URL: retry.
            if isinstance(exc, GraphAuthFailed) or exc.status in _STALE_URL_STATUSES:
                return self._retry(task, str(exc), count=True)
            return self._give_up(task, str(exc))  # unknown media id, insecure URL: no retry helps
        except GraphError as exc:
            return self._retry(task, str(exc), count=True)
        if not self._hash_ok(task, info, data):
            return self._retry(task, f"sha256 mismatch ({len(data)} bytes downloaded)", count=True)
        return self._attach(task, data, info)

    # -- the steps ---------------------------------------------------------------------------

    def _fetch(self, task: MediaTask) -> tuple[bytes, MediaInfo]:
        info = self.graph.media_info(task.media_id)
        try:
            return self._download(info), info
        except GraphError as exc:
            if exc.status not in _STALE_URL_STATUSES or exc.title == "too large":
                raise
            # The URL lives 5 minutes and may have lapsed (a slow queue, a clock skew): ask again.
            log.info("media_url_refetched", media_id=task.media_id, status=exc.status)
        info = self.graph.media_info(task.media_id)
        return self._download(info), info

    def _download(self, info: MediaInfo) -> bytes:
        limit = self.policy.max_bytes
        if info.file_size is not None and info.file_size > limit:
            raise _TooLarge(info.file_size)
        try:
            return self.graph.download(info.url, max_bytes=limit)
        except GraphRejected as exc:
            if exc.title == "too large":
                raise _TooLarge(info.file_size) from exc
            raise

    def _hash_ok(self, task: MediaTask, info: MediaInfo, data: bytes) -> bool:
        # Graph's media object describes the bytes at its URL (hex); the webhook's hash
        # (base64) is the fallback when Graph gives none. A differing webhook hash is only
        # logged: Meta documents no promise that it covers the stored file.
        expected = info.sha256 or task.expected_sha256
        if not expected:
            log.warning("media_unverified", media_id=task.media_id, reason="no sha256 given")
            return True
        if not sha256_matches(expected, data):
            log.warning("media_sha256_mismatch", media_id=task.media_id, size=len(data))
            return False
        if info.sha256 and task.expected_sha256 and not sha256_matches(task.expected_sha256, data):
            log.info("media_webhook_sha256_differs", media_id=task.media_id)
        return True

    def _attach(self, task: MediaTask, data: bytes, info: MediaInfo) -> str:
        mime_type = task.mime_type or info.mime_type
        try:
            attachment_id = self._existing(task, len(data)) if task.uploads else None
            if attachment_id is None:
                self.tasks.mark_upload_started(task.id)
                attachment_id = self.jira.add_attachment(task.issue_key, task.filename, data, mime_type)
        except RateLimited as exc:
            return self._retry(task, str(exc), count=False, retry_after=exc.retry_after)
        except IssueNotFound as exc:
            self.tasks.mark_failed(task.id, error=str(exc))  # no ticket left to note it on
            log.error("media_failed", wamid=task.wamid, media_id=task.media_id, error=str(exc))
            return "failed"
        except JiraAuthFailed as exc:
            return self._retry(task, str(exc), count=True)
        except JiraRejected as exc:
            return self._give_up(task, str(exc))
        except JiraUnavailable as exc:
            return self._retry(task, str(exc), count=False)
        self.tasks.mark_done(task.id, attachment_id=attachment_id, size=len(data))
        log.info(
            "media_attached",
            wamid=task.wamid,
            media_id=task.media_id,
            issue_key=task.issue_key,
            attachment_id=attachment_id,
            size=len(data),
            kind=task.kind,
        )
        return "done"

    def _existing(self, task: MediaTask, size: int) -> str | None:
        """The attachment an upload that began before (then timed out or crashed) made."""
        for item in self.jira.list_attachments(task.issue_key):
            if item.get("filename") == task.filename and _int(item.get("size")) == size:
                log.info("media_already_attached", wamid=task.wamid, issue_key=task.issue_key)
                return str(item["id"])
        return None

    # -- outcomes ----------------------------------------------------------------------------

    def _too_large(self, task: MediaTask, size: int | None) -> str:
        limit = self.policy.max_bytes
        how_big = f"{_bytes(size)}, more than" if size is not None else "larger than"
        # The note first: if we die before marking, the retry finds the note by its ref.
        self.notes.post(
            task.issue_key,
            ref=f"media-too-large:{task.wamid}:{task.media_id}",
            text=(
                f"The customer's {task.kind} {task.filename} was not attached: it is {how_big} the "
                f"{_bytes(limit)} allowed ([media] max_bytes). Ask the customer for a smaller file."
            ),
        )
        self.tasks.mark_too_large(task.id, size=size, reason=f"too large ({size} bytes, limit {limit})")
        log.warning("media_too_large", wamid=task.wamid, media_id=task.media_id, size=size, limit=limit)
        return "too_large"

    def _retry(self, task: MediaTask, error: str, *, count: bool, retry_after: float | None = None) -> str:
        p = self.policy
        attempts = task.attempts + (1 if count else 0)
        if count and attempts >= p.max_attempts:
            return self._give_up(task, error)
        delay = retry_delay(max(1, attempts), base=p.retry_base_seconds, cap=p.retry_max_seconds)
        delay = honour_retry_after(retry_after, delay, cap=p.retry_max_seconds)
        self.tasks.mark_retry(task.id, error=error, delay_seconds=delay, count_attempt=count)
        log.warning(
            "media_retry",
            wamid=task.wamid,
            media_id=task.media_id,
            attempts=attempts,
            error=error,
            retry_in=round(delay, 1),
        )
        return "retried"

    def _give_up(self, task: MediaTask, error: str) -> str:
        self.notes.post(
            task.issue_key,
            ref=f"media-failed:{task.wamid}:{task.media_id}",
            text=(
                f"The customer's {task.kind} {task.filename} could not be attached: {error[:300]}. "
                "Ask the customer to send it again."
            ),
        )
        self.tasks.mark_failed(task.id, error=error)
        log.error("media_failed", wamid=task.wamid, media_id=task.media_id, error=error)
        return "failed"


@dataclass
class MediaEnqueuer:
    """An `InboxJob.on_delivered` listener: a task for each media message put in Jira.

    Writes one row and nudges the job; no network (the inbox holds the conversation meanwhile).
    """

    tasks: MediaTasksPort
    on_enqueued: Callable[[], None] = lambda: None

    def __call__(self, row: QueuedMessage, issue_key: str, comment_id: str) -> None:
        ref = media_ref(row.kind, row.raw)
        if ref is None:
            return
        try:
            # Runs before the message is marked done; with storage down this raises and the
            # message is retried (its comment is found, not posted again), so no task is lost.
            new = self.tasks.add(
                wamid=row.wamid,
                media_id=ref.media_id,
                kind=ref.kind,
                mime_type=ref.mime_type,
                filename=ref.attachment_name,
                expected_sha256=ref.sha256,
                issue_key=issue_key,
            )
        except ValueError as exc:
            # Meta sent a media object we cannot store (an absurd id): the comment stands.
            log.error("media_enqueue_failed", wamid=row.wamid, issue_key=issue_key, error=str(exc))
            return
        if new:
            log.info(
                "media_enqueued",
                wamid=row.wamid,
                media_id=ref.media_id,
                issue_key=issue_key,
                comment_id=comment_id,
            )
            self.on_enqueued()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bytes(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n} bytes"
    return f"{n / (1024 * 1024):.1f} MB"
