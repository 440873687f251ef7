"""Claiming queue rows so that each goes to exactly one worker, across threads and processes.

A claim runs in one write transaction, in two steps:

1. A plain SELECT picks candidate ids. It may use any subquery (oldest row of a
   conversation, nothing in flight), because it decides nothing by itself.
2. Those ids are locked, re-checking the row's own state: `FOR UPDATE SKIP LOCKED` on
   PostgreSQL, MariaDB ≥ 10.6 and MySQL ≥ 8.0.1 (a row another claimer is busy with is
   passed over, not waited for); plain `FOR UPDATE` on older MySQL servers (it waits, then
   sees the other claimer's result). Locking reads see the newest committed row, so a row
   claimed since step 1 fails the re-check. SQLite needs neither: the transaction holds the
   database's single write lock from BEGIN IMMEDIATE.

Locking the candidates only — never rows read by the subqueries — matters on MySQL, where
`FOR UPDATE` would also lock (and with SKIP LOCKED, silently skip) rows the subqueries read,
so a conversation's in-flight row could look absent to a second claimer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee

from storage.engines import dialect


def lock_claimable(
    db: peewee.Database,
    model: Any,
    candidate_ids: Sequence[int],
    still_claimable: Any,
    limit: int,
) -> list[int]:
    """Lock up to `limit` of the candidates that still satisfy `still_claimable`, lowest id
    first. Call inside the claim's write transaction; the locks last until it ends."""
    if not candidate_ids or limit <= 0:
        return []
    query = (
        model.select(model.id)
        .where(model.id.in_(list(candidate_ids)) & still_claimable)
        .order_by(model.id)
        .limit(limit)
    )
    kind = dialect(db)
    if kind == "postgres" or (kind == "mysql" and _mysql_skips_locked(db)):
        query = query.for_update(skip_locked=True)
    elif kind == "mysql":
        query = query.for_update()
    return [int(row_id) for (row_id,) in query.tuples().execute(db)]


def _mysql_skips_locked(db: peewee.Database) -> bool:
    real = db.obj if isinstance(db, peewee.DatabaseProxy) else db
    version = real.server_version or (0,)  # set on connect; the transaction has connected
    # Oracle MySQL never had a 10.x: a version from 10 up is MariaDB.
    return version >= (10, 6) if version >= (10,) else version >= (8, 0, 1)
