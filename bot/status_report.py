"""`wajira status` and `wajira queue retry`: what the queues, the poll job and recent failures
look like, read straight from storage.

The report is a read model in the manner of Cosmic Python's `views.py`: it queries the tables
for what an operator wants to see (failure rows with their issue keys) instead of adding
display-only methods to the queues. It only reads, except `retry_dead`, which goes through
`InboundQueue.requeue_dead`. Storage comes opened from the composition root (`bot.bootstrap`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import peewee

from bot.bootstrap import Storage
from storage.ai_turns import STATES as ai_turn_states
from storage.db import guarded
from storage.inbound import DEAD, DONE
from storage.models import InboundMessageRow, OutboundMessageRow
from storage.outbound import FAILED, UNKNOWN
from storage.outbound import STATES as outbound_states

POLL_STATE, POLL_LEASE = "jira", "poll"  # the names jobs/poll.py writes under
FAILURE_LIMIT = 10  # per queue
CSAT_DAYS = 30  # the satisfaction figures cover this many days
_ERROR_WIDTH = 100  # human output keeps one line per failure; --json has the whole text
# What `status` shows of each queue's stats(), in this order: the output's contract, kept when
# the queues' stats carry more (`parked`, `retrying` and both ages for every queue).
INBOUND_FIELDS = ("pending", "retrying", "dead", "done", "oldest_pending_age_seconds")
OUTBOUND_FIELDS = (*outbound_states, "oldest_pending_age_seconds")
AI_TURN_FIELDS = (*ai_turn_states, "oldest_due_lag_seconds")


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret of 4+ characters replaced by ***: errors may quote requests."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def iso(epoch: float | None) -> str | None:
    return (
        None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
    )


# -- the report ---------------------------------------------------------------------------------


def gather(
    storage: Storage,
    *,
    secrets: Iterable[str] = (),
    clock: Callable[[], float] = time.time,
    limit: int = FAILURE_LIMIT,
) -> dict[str, Any]:
    """Everything `wajira status` shows, as plain JSON-able data with a fixed set of keys."""
    now = clock()
    secrets = list(secrets)
    db = storage.db
    poll = storage.poll_state.get(POLL_STATE)
    lease = storage.leases.holder(POLL_LEASE)
    failures = _inbound_failures(db, limit) + _outbound_failures(db, limit)
    failures.sort(key=lambda f: (f["at"] or "", f["queue"], f["id"]), reverse=True)
    for failure in failures:
        failure["error"] = redact(failure["error"] or "", secrets)
    return {
        "generated_at": iso(now),
        "inbound": _shown(storage.inbound.stats(), INBOUND_FIELDS),
        "outbound": _shown(storage.outbound.stats(), OUTBOUND_FIELDS),
        "ai_turns": _shown(storage.turns.stats(), AI_TURN_FIELDS),
        "poll": {
            "last_run_at": iso(poll.last_run_at),
            "last_success_at": iso(poll.last_success_at),
            "last_success_age_seconds": None
            if poll.last_success_at is None
            else round(max(0.0, now - poll.last_success_at), 1),
            "watermark": None if poll.watermark_ms is None else iso(poll.watermark_ms / 1000),
            "watermark_ms": poll.watermark_ms,
            "last_error": None if poll.last_error is None else redact(poll.last_error, secrets),
            "runs": poll.runs,
            "lease": None if lease is None else {"holder": lease[0], "until": iso(lease[1])},
        },
        "csat": _csat(storage, since=now - CSAT_DAYS * 86400),
        "recent_failures": failures,
    }


def _csat(storage: Storage, *, since: float) -> dict[str, Any]:
    """Satisfaction ratings per service over the last CSAT_DAYS days: count and average."""
    summary = storage.csat.summary(since=since)
    return {
        "days": CSAT_DAYS,
        "services": {
            service_id: {"count": count, "average": round(average, 2)}
            for service_id, (count, average) in sorted(summary.items())
        },
    }


def _shown(stats: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: round(v, 1) if isinstance(v, float) else v for k in fields for v in [stats[k]]}


def _inbound_failures(db: peewee.Database, limit: int) -> list[dict[str, Any]]:
    """Dead rows and pending rows that have failed at least once (`last_error` set)."""
    M = InboundMessageRow
    query = (
        M.select(M.id, M.state, M.attempts, M.issue_key, M.last_error, M.updated_at)
        .where(M.last_error.is_null(False) & (M.state != DONE))
        .order_by(M.updated_at.desc(), M.id.desc())
        .limit(limit)
        .dicts()
    )
    with guarded(db):
        rows = list(query.execute(db))
    return [_failure("inbound", r, "retrying" if r["state"] != DEAD else DEAD) for r in rows]


def _outbound_failures(db: peewee.Database, limit: int) -> list[dict[str, Any]]:
    """Messages that did not reach the customer (`failed`) or may not have (`unknown`)."""
    M = OutboundMessageRow
    query = (
        M.select(M.id, M.state, M.attempts, M.issue_key, M.last_error, M.error_code, M.updated_at)
        .where(M.state.in_((FAILED, UNKNOWN)))
        .order_by(M.updated_at.desc(), M.id.desc())
        .limit(limit)
        .dicts()
    )
    with guarded(db):
        rows = list(query.execute(db))
    out = []
    for row in rows:
        failure = _failure("outbound", row, row["state"])
        if row["error_code"] is not None and not failure["error"]:
            failure["error"] = f"WhatsApp error {row['error_code']}"
        out.append(failure)
    return out


def _failure(queue: str, row: dict[str, Any], state: str) -> dict[str, Any]:
    return {
        "queue": queue,
        "id": int(row["id"]),
        "state": state,
        "issue_key": row["issue_key"],
        "attempts": int(row["attempts"]),
        "error": row["last_error"],
        "at": iso(row["updated_at"]),
    }


# -- human output -------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    """The report for a terminal: one section per part, labels and numbers aligned."""
    lines: list[str] = []
    inbound = report["inbound"]
    lines += _section(
        "inbound queue",
        [
            ("pending", _count(inbound["pending"], f"({inbound['retrying']} retrying)")),
            ("dead", _count(inbound["dead"])),
            ("done", _count(inbound["done"])),
            ("oldest pending", _age(inbound["oldest_pending_age_seconds"])),
        ],
    )
    outbound = report["outbound"]
    lines += _section(
        "outbound queue",
        [(state, _count(n)) for state, n in outbound.items() if state != "oldest_pending_age_seconds"]
        + [("oldest pending", _age(outbound["oldest_pending_age_seconds"]))],
    )
    turns = report["ai_turns"]
    lines += _section(
        "AI turns",
        [(state, _count(n)) for state, n in turns.items() if state != "oldest_due_lag_seconds"]
        + [("oldest due, late by", _age(turns["oldest_due_lag_seconds"]))],
    )
    poll, lease = report["poll"], report["poll"]["lease"]
    lines += _section(
        "poll",
        [
            ("last run", poll["last_run_at"] or "never"),
            (
                "last success",
                (poll["last_success_at"] or "never")
                + (
                    ""
                    if poll["last_success_age_seconds"] is None
                    else f"  ({duration(poll['last_success_age_seconds'])} ago)"
                ),
            ),
            ("watermark", poll["watermark"] or "-"),
            ("last error", _one_line(poll["last_error"]) if poll["last_error"] else "-"),
            ("lease", f"{lease['holder']} until {lease['until']}" if lease else "free (no daemon polling)"),
        ],
    )
    csat = report["csat"]
    lines += _section(
        f"satisfaction (last {csat['days']} days)",
        [
            (service_id, f"{figures['average']:.2f}/5 from {_count(figures['count'])} rating(s)")
            for service_id, figures in csat["services"].items()
        ]
        or [("ratings", "none")],
    )
    lines.append("recent failures")
    lines += _failure_table(report["recent_failures"]) or ["  none"]
    return "\n".join(lines)


def _section(title: str, rows: list[tuple[str, str]]) -> list[str]:
    return [title, *(f"  {label:<20} {value}" for label, value in rows), ""]


def _count(n: int, note: str = "") -> str:
    return f"{n:>6}{'  ' + note if note else ''}"


def _age(seconds: float | None) -> str:
    return f"{duration(seconds):>6}"  # right-aligned with the counts above it


def _failure_table(failures: list[dict[str, Any]]) -> list[str]:
    if not failures:
        return []
    header = ("queue", "id", "state", "issue", "when", "error")
    table = [
        header,
        *(
            (
                f["queue"],
                str(f["id"]),
                f["state"],
                f["issue_key"] or "-",
                f["at"] or "-",
                _one_line(f["error"] or "-"),
            )
            for f in failures
        ),
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = []
    for row in table:
        # Ids right-aligned like numbers; the error, last, runs as long as it needs.
        cells = [
            cell.rjust(widths[i]) if i == 1 else cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])
        ]
        lines.append("  " + "  ".join([*cells, row[-1]]))
    return lines


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _ERROR_WIDTH else flat[: _ERROR_WIDTH - 1] + "…"


def duration(seconds: float | None) -> str:
    """`42s`, `3m05s`, `2h01m`, `3d04h`; `-` for nothing."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


# -- queue retry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryResult:
    requeued: int
    refused: list[tuple[int, str]] = field(default_factory=list)
    """(id, why) for every id asked for that is not a dead inbound row."""


def retry_dead(storage: Storage, ids: list[int] | None) -> RetryResult:
    """Requeue dead inbound rows: all of them (`ids` None) or those listed that are dead.

    Listed ids that are not dead are refused, the rest requeued (like `rm a b c` when c is
    missing), so one typo does not hold back the other rows.
    """
    db, queue = storage.db, storage.inbound
    if ids is None:
        return RetryResult(queue.requeue_dead(None))
    M = InboundMessageRow
    wanted = list(dict.fromkeys(ids))
    query = M.select(M.id, M.state).where(M.id.in_(wanted)).tuples()
    with guarded(db):
        states = {int(i): state for i, state in query.execute(db)}
    refused = [
        (i, "no such inbound row" if i not in states else f"it is {states[i]}, not dead")
        for i in wanted
        if states.get(i) != DEAD
    ]
    dead = [i for i in wanted if states.get(i) == DEAD]
    return RetryResult(queue.requeue_dead(dead) if dead else 0, refused)
