"""Housekeeping: finished rows older than `[storage] retention_days` are deleted, every hour.

One instance at a time: the pass holds the `housekeeping` lease for a whole interval and never
releases it, so with several instances one of them sweeps each hour and the others find the
lease taken (the poll job's mechanism, storage/leases.py). What may go and what must stay is
decided in `bot.rules.retention` and `storage.retention`; this job only says when, logs one
`housekeeping` line per pass and, on SQLite, checkpoints the write-ahead log after a pass that
deleted something.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import Settings
from bot.logs import get_logger
from bot.ports.stores import LeasesPort, RetentionPort
from bot.rules.retention import RetentionReport, retention_cutoff

log = get_logger(__name__)

HOUSEKEEPING_LEASE = "housekeeping"
HOUSEKEEPING_INTERVAL_SECONDS = 3600.0


@dataclass
class HousekeepingJob:
    settings: Settings
    retention: RetentionPort
    leases: LeasesPort
    owner: str
    clock: Callable[[], float] = time.time
    interval_seconds: float = HOUSEKEEPING_INTERVAL_SECONDS
    on_deleted: Callable[[str, int], None] = lambda table, rows: None
    """Told (table, rows) for each table a pass deleted from (a metric's counter)."""

    def run(self) -> RetentionReport | None:
        """One pass, by whichever instance holds the lease; None when this one did not sweep
        (`retention_days = 0`, or another instance swept within the interval)."""
        days = self.settings.storage.retention_days
        cutoff = retention_cutoff(self.clock(), days)
        if cutoff is None:
            return None
        # Held for the whole interval, not released: the other instances' hourly runs then
        # find it taken, and a second pass right after this one would only scan for nothing.
        if not self.leases.acquire(HOUSEKEEPING_LEASE, self.owner, self.interval_seconds):
            return None
        started = time.monotonic()
        report = self.retention.delete_expired(cutoff=cutoff)
        checkpoint = self.retention.checkpoint() if report.total else None
        for table, rows in report.deleted.items():
            if rows:
                self.on_deleted(table, rows)
        log.info(
            "housekeeping",
            retention_days=days,
            deleted=dict(report.deleted),
            total=report.total,
            complete=report.complete,
            wal_truncated=None if checkpoint is None else not checkpoint.busy,
            seconds=round(time.monotonic() - started, 3),
        )
        return report
