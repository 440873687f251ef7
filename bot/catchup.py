"""`wajira catch-up --since 2h`: one JQL pass over a window, then drain what it queued.

It shares the daemon's records (handled comments, AI turns, outbound rows, all claimed
atomically), so running it beside a live daemon, or twice, answers and sends nothing twice.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.rules.poll_window import catch_up_since

if TYPE_CHECKING:  # the parts' modules import the vendor libraries: loaded only when run
    from bot.bootstrap import Components


class ProgressBar:
    """Issues come in `updated` order, so the share of the window already read is a true progress."""

    def __init__(self, since_ms: int, now_ms: int, stream=sys.stderr) -> None:
        self.since_ms, self.now_ms, self.stream = since_ms, now_ms, stream
        self.live = stream.isatty()

    def __call__(self, count: int, updated_ms: int | None) -> None:
        if not self.live:
            return
        span = max(1, self.now_ms - self.since_ms)
        share = min(1.0, max(0.0, ((updated_ms or self.since_ms) - self.since_ms) / span))
        filled = int(share * 30)
        self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%}  {count} issues")
        self.stream.flush()

    def done(self, count: int) -> None:
        if self.live:
            self.stream.write(f"\r[{'#' * 30}] 100%  {count} issues\n")


def run_catch_up(settings: Settings, since: str, *, dry_run: bool, drain_seconds: float = 120.0) -> int:
    from bot.bootstrap import bootstrap

    now = datetime.now(timezone.utc)
    try:
        start = catch_up_since(since, now)
    except ValueError as exc:
        print(f"wajira catch-up: {exc}", file=sys.stderr)
        return 2
    # The daemon's parts, driven by hand: no HTTP listener, no schedule.
    parts = bootstrap(settings, owner=f"catch-up@{socket.gethostname()}:{os.getpid()}")
    poll = parts.jobs.runners.poll
    since_ms = int(start.timestamp() * 1000)
    bar = ProgressBar(since_ms, int(now.timestamp() * 1000))
    poll.progress = bar
    result, _ = poll.pass_over(since_ms, dry_run=dry_run)
    bar.done(result.issues)
    if dry_run:
        for line in result.planned:
            print(line)
        print(
            f"dry run: {result.issues} issues, {len(result.planned)} new comments; nothing was recorded or sent"
        )
        return 0
    print(
        f"read {result.issues} issues since {start.isoformat()}: {result.ai_turns} AI turns, "
        f"{result.pushed} agent comments to send, {result.ignored} comments with nothing to do"
    )
    _drain(parts, drain_seconds)
    parts.close()
    return 0


def _drain(parts: Components, seconds: float) -> None:
    """Answer the AI turns and send the messages the pass queued, until none is pending."""
    jobs, storage = parts.jobs.runners, parts.storage
    answered = sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answered += jobs.ai.run()
        sent += jobs.outbox.run()
        if not storage.turns.stats().get("pending") and not storage.outbound.stats().get("pending"):
            break
        time.sleep(0.5)
    print(f"answered {answered} turns, sent {sent} WhatsApp messages")
