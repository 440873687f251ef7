"""How big a SQLite database grows with 100,000 messages, and what a retention pass gives back.
Run by hand:

    python -m tests.benchmarks.retention_size                      # 100,000 messages
    python -m tests.benchmarks.retention_size --messages 10000 --dir /tmp

Not collected by pytest (no `test_` prefix). The rows are made through the storage classes the
daemon uses, under a fake clock spread over `--days` days, `--conversations` conversations.
Each customer message is, as in production:

- the webhook's delivery (`Ingest.store_batch`, `--per-delivery` messages each: Meta batches
  under load) and the inbox marking it done on its ticket;
- the poll handling its `[WhatsApp]` comment (`HandledComments.record`);
- an agent's answer: its comment handled with its outbound row in the same transaction, claimed
  and sent by the outbox, then Meta's `delivered` and `read` statuses stored by the webhook and
  applied.

Then the clock moves `--retention` days (+1) past the last message and housekeeping runs
(`storage.retention.Retention`, 500-row batches, passes until one completes), SQLite's log is
checkpointed, and finally VACUUM. Printed at each step: the file's size, its free pages, and the
rows per table; for the pass, its time and the slowest single DELETE batch (how long a webhook
can wait behind it).

The database lives in `--dir` (default /dev/shm when it exists: the figures are about size, and
`synchronous = FULL` on a disk would make building 100,000 messages take far longer).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import peewee

from bot.rules.events import InboundMessage, ParsedBatch, StatusEvent
from bot.rules.retention import DAY_SECONDS, retention_cutoff
from storage.db import bind, open_database
from storage.engines import run_sql
from storage.inbound import InboundQueue
from storage.models import ALL_MODELS, InboundMessageRow
from storage.outbound import OutboundQueue
from storage.polling import HandledComments
from storage.retention import Retention
from storage.schema import migrate
from storage.statuses import StatusFeed

START = 1_800_000_000.0
PHONE_NUMBER_ID = "106540352242922"
TEXT = "Hola, mi pedido 48213 no ha llegado todavía, ¿me pueden decir cuándo llega? Gracias"
REPLY = "Bruno Díaz (support): Your parcel left the warehouse this morning; it arrives tomorrow."


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TimedRetention(Retention):
    """Retention that remembers how long each DELETE batch took."""

    batch_seconds: list[float]

    def _delete(self, rule: Any, ids: Sequence[Any], cutoff: float) -> int:
        started = time.perf_counter()
        try:
            return super()._delete(rule, ids, cutoff)
        finally:
            self.batch_seconds.append(time.perf_counter() - started)


def _message(i: int, conversations: int, ts: int) -> InboundMessage:
    wa_id = f"5255{i % conversations:08d}"
    wamid = f"wamid.HBgNNTIxNTUxMjM0NTY3OBUCABIYFjNFQjBCNkE3RTVGRjU0RjY5{i:010d}"
    raw = {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(ts),
        "type": "text",
        "text": {"body": f"{TEXT} #{i}"},
    }
    return InboundMessage(
        wamid=wamid,
        conversation_key=f"+{wa_id}",
        wa_id=wa_id,
        user_id=None,
        phone_number_id=PHONE_NUMBER_ID,
        display_phone_number="15550001234",
        profile_name=f"Cliente {i % conversations}",
        timestamp=ts,
        kind="text",
        raw=raw,
    )


def _status(wamid: str, value: str, ts: int, wa_id: str) -> StatusEvent:
    raw = {
        "id": wamid,
        "status": value,
        "timestamp": str(ts),
        "recipient_id": wa_id,
        "conversation": {"id": "c0ffee", "origin": {"type": "service"}},
        "pricing": {
            "billable": False,
            "pricing_model": "PMP",
            "category": "service",
            "type": "free_customer_service",
        },
    }
    return StatusEvent(
        wamid=wamid,
        status=value,
        timestamp=ts,
        recipient_id=wa_id,
        phone_number_id=PHONE_NUMBER_ID,
        errors=(),
        raw=raw,
    )


def fill(
    db: peewee.Database, clock: Clock, *, messages: int, conversations: int, days: float, per_delivery: int
) -> None:
    inbound = InboundQueue(db, clock=clock)
    outbound = OutboundQueue(db, clock=clock)
    handled = HandledComments(db, clock=clock)
    feed = StatusFeed(db)
    step = days * DAY_SECONDS / messages
    ids = {}
    started = time.perf_counter()
    # A round is one message per conversation: the outbox sends one row per conversation at a time.
    for first in range(0, messages, conversations):
        round_ = range(first, min(messages, first + conversations))
        batch = []
        for i in round_:
            clock.now = START + i * step
            batch.append(_message(i, conversations, int(clock.now)))
            if len(batch) == per_delivery:
                inbound.store_batch(ParsedBatch(messages=tuple(batch)))
                batch = []
        if batch:
            inbound.store_batch(ParsedBatch(messages=tuple(batch)))
        wamids = [_message(i, conversations, 0).wamid for i in round_]
        query = InboundMessageRow.select(InboundMessageRow.id, InboundMessageRow.wamid).where(
            InboundMessageRow.wamid.in_(wamids)
        )
        ids = {wamid: row_id for row_id, wamid in query.tuples().execute(db)}
        for i in round_:
            m = _message(i, conversations, 0)
            issue = f"WA-{i % conversations + 1}"
            inbound.mark_done(ids[m.wamid], issue_key=issue, comment_id=str(10_000_000 + 2 * i))
            handled.record(
                comment_id=str(10_000_000 + 2 * i),
                issue_key=issue,
                route="customer",
                comment_created=clock.now,
            )
            agent_comment = str(10_000_001 + 2 * i)
            handled.record(
                comment_id=agent_comment,
                issue_key=issue,
                route="to_customer",
                comment_created=clock.now,
                outbound=[
                    {
                        "dedupe_key": f"comment:{agent_comment}:0",
                        "issue_key": issue,
                        "conversation_key": m.conversation_key,
                        "to_wa_id": m.wa_id,
                        "to_user_id": None,
                        "phone_number_id": PHONE_NUMBER_ID,
                        "kind": "agent",
                        "body": REPLY,
                    }
                ],
            )
        statuses = []
        for row in outbound.claim_due("bench", limit=conversations):
            wamid = f"wamid.out.{row.id:012d}"
            outbound.mark_sent(row.id, wamid=wamid)
            for value in ("delivered", "read"):
                statuses.append(_status(wamid, value, int(clock.now), row.to_wa_id or ""))
        for start in range(0, len(statuses), per_delivery * 2):
            inbound.store_batch(ParsedBatch(statuses=tuple(statuses[start : start + per_delivery * 2])))
        while unapplied := feed.unapplied(limit=500):
            for s in unapplied:
                outbound.apply_status(s["wamid"], s["status"], at=float(s["meta_timestamp"]))
            feed.mark_applied([s["id"] for s in unapplied])
        done = round_.stop
        if done % (conversations * 10) == 0 or done == messages:
            print(f"  {done:>7} messages stored ({time.perf_counter() - started:.0f} s)", flush=True)


def report(db: peewee.Database, path: str, label: str) -> None:
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    (page_size,) = run_sql(db, "PRAGMA page_size").fetchone()
    (free,) = run_sql(db, "PRAGMA freelist_count").fetchone()
    print(
        f"{label}: {size / 1e6:.1f} MB on disk (file + WAL), {free * page_size / 1e6:.1f} MB of it free pages"
    )
    for model in ALL_MODELS:
        count = model.select().count(db)
        if count:
            print(f"    {model._meta.table_name:<26} {count:>8} rows")


def checkpoint(db: peewee.Database) -> None:
    run_sql(db, "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--conversations", type=int, default=2_000)
    parser.add_argument("--days", type=float, default=30.0, help="the messages are spread over this long")
    parser.add_argument("--per-delivery", type=int, default=10)
    parser.add_argument("--retention", type=int, default=30)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.dir) as where:
        path = os.path.join(where, "wajira.db")
        db = open_database(f"sqlite:///{path}")
        migrate(db)
        bind(db)
        clock = Clock(START)
        print(f"{args.messages} messages, {args.conversations} conversations, over {args.days:g} days")
        fill(
            db,
            clock,
            messages=args.messages,
            conversations=args.conversations,
            days=args.days,
            per_delivery=args.per_delivery,
        )
        checkpoint(db)
        report(db, path, "after the messages")

        clock.now += (args.retention + 1) * DAY_SECONDS
        cutoff = retention_cutoff(clock.now, args.retention)
        assert cutoff is not None
        retention = TimedRetention(db)
        retention.batch_seconds = []
        started, passes, deleted = time.perf_counter(), 0, 0
        while True:
            passes += 1
            result = retention.delete_expired(cutoff=cutoff)
            deleted += result.total
            if result.complete:
                break
        seconds = time.perf_counter() - started
        result_checkpoint = retention.checkpoint()
        batches = retention.batch_seconds
        print(
            f"retention pass: {deleted} rows in {seconds:.1f} s, {passes} pass(es) of at most "
            f"{retention.budget_seconds:g} s, {len(batches)} DELETE batches of {retention.batch_size}: "
            f"median {statistics.median(batches) * 1000:.1f} ms, slowest {max(batches) * 1000:.1f} ms; "
            f"checkpoint {result_checkpoint}"
        )
        report(db, path, f"after retention ({args.retention} days, clock past it)")
        run_sql(db, "VACUUM")
        checkpoint(db)
        report(db, path, "after VACUUM")
        db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
