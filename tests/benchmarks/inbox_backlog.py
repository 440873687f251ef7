"""How long one inbox pass spends finding due conversations with a large backlog. Run by hand:

    python -m tests.benchmarks.inbox_backlog                  # SQLite
    WAJIRA_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
    WAJIRA_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test \\
        python -m tests.benchmarks.inbox_backlog --rows 100000 --conversations 5000

Not collected by pytest (no `test_` prefix). Fills an isolated database (tests/support/databases.py) with
`--rows` pending messages spread over `--conversations` conversations, then, for three states
of that backlog, times (median of `--repeat` calls, milliseconds):

- before: the query `due_conversations` ran until the conversation index (a GROUP BY over
  every pending row, HAVING MAX(next_attempt_at) <= now, ORDER BY MIN(id));
- now: `InboundQueue.due_conversations(limit)` as the inbox calls it (index read, steady state);
- claim: what the inbox does to take one conversation: due_conversations, the conversation's
  lease, `pending_for`, the lease's release;
- after: due_conversations right after the previous answer's conversations were delivered
  (their index rows are stale then: this call repairs them);
- ingest: one webhook delivery of one message (`store_batch`), which now also widens the
  index, next to the same delivery with the index maintenance switched off.

Backlog states: `recovered` (Jira is back: every row due), `outage` (every conversation holds
a retry in the future and has newer messages waiting behind it; 10 new conversations due), and
`mixed` (half the conversations held).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import peewee

from bot.rules.events import InboundMessage, ParsedBatch
from storage.db import bind, open_database
from storage.inbound import InboundQueue
from storage.leases import Leases
from storage.models import InboundMessageRow
from storage.schema import migrate
from tests.support.databases import ENGINES, ServerNotConfigured, isolated_url

NOW = 1_800_000_000.0
LIMIT = 32  # the inbox asks for workers * 8 (4 workers by default)


def _fill(db: peewee.Database, rows: int, conversations: int) -> None:
    M = InboundMessageRow
    batch = []
    with db.atomic():
        for i in range(rows):
            key = f"+4477009{i % conversations:05d}"
            batch.append(
                {
                    "wamid": f"wamid.bench.{i}",
                    "conversation_key": key,
                    "wa_id": key[1:],
                    "user_id": None,
                    "phone_number_id": "106540352242922",
                    "display_phone_number": None,
                    "profile_name": "Ana",
                    "meta_timestamp": 1_700_000_000 + i,
                    "kind": "text",
                    "raw_json": '{"type":"text","text":{"body":"hello"}}',
                    "state": "pending",
                    "attempts": 0,
                    "started": 0,
                    "next_attempt_at": NOW - 1,
                    "last_error": None,
                    "issue_key": None,
                    "comment_id": None,
                    "created_at": NOW - 3600,
                    "updated_at": NOW - 3600,
                    "done_at": None,
                    "origin": "customer",
                    "from_business": 0,
                }
            )
            if len(batch) == 1000:
                M.insert_many(batch).execute(db)
                batch.clear()
        if batch:
            M.insert_many(batch).execute(db)


def _backlog(db: peewee.Database, queue: InboundQueue, state: str, rows: int, conversations: int) -> None:
    """Set the rows' due times for `state`, then rebuild the index from them."""
    M = InboundMessageRow
    with db.atomic():
        M.delete().where(M.wamid.startswith("wamid.fresh.")).execute(db)
        M.update(next_attempt_at=NOW - 1).execute(db)
        if state == "outage":
            # Retried conversations are held 5 minutes; messages that came in since wait behind.
            M.update(next_attempt_at=NOW + 300).where(M.id <= rows * 9 // 10).execute(db)
            M.insert_many(
                [
                    {
                        "wamid": f"wamid.fresh.{i}",
                        "conversation_key": f"+4915100{i:05d}",
                        "wa_id": None,
                        "user_id": None,
                        "phone_number_id": "1",
                        "display_phone_number": None,
                        "profile_name": "Bo",
                        "meta_timestamp": 1_700_100_000 + i,
                        "kind": "text",
                        "raw_json": "{}",
                        "state": "pending",
                        "attempts": 0,
                        "started": 0,
                        "next_attempt_at": NOW - 1,
                        "last_error": None,
                        "issue_key": None,
                        "comment_id": None,
                        "created_at": NOW,
                        "updated_at": NOW,
                        "done_at": None,
                        "origin": "customer",
                        "from_business": 0,
                    }
                    for i in range(10)
                ]
            ).execute(db)
        elif state == "mixed":
            held = [f"+4477009{i:05d}" for i in range(0, conversations, 2)]
            for start in range(0, len(held), 500):
                M.update(next_attempt_at=NOW + 300).where(
                    M.conversation_key.in_(held[start : start + 500])
                ).execute(db)
        db.execute_sql("DELETE FROM inbound_conversation")
    queue.index.reconcile()


def _before(db: peewee.Database, limit: int) -> list[str]:
    M = InboundMessageRow
    query = (
        M.select(M.conversation_key)
        .where(M.state == "pending")
        .group_by(M.conversation_key)
        .having(peewee.fn.MAX(M.next_attempt_at) <= NOW)
        .order_by(peewee.fn.MIN(M.id))
        .limit(limit)
        .tuples()
    )
    return [key for (key,) in query.execute(db)]


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm the caches and any one-time work
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _after_pass_ms(db: peewee.Database, queue: InboundQueue, repeat: int) -> float:
    M = InboundMessageRow
    times = []
    for _ in range(repeat):
        keys = queue.due_conversations(LIMIT)
        # The inbox delivered them: every row done (not timed).
        M.update(state="done", done_at=NOW).where(
            M.conversation_key.in_(keys) & (M.state == "pending")
        ).execute(db)
        started = time.perf_counter()
        following = queue.due_conversations(LIMIT)
        times.append((time.perf_counter() - started) * 1000)
        assert following == _before(db, LIMIT)
    return statistics.median(times)


def _one_message(n: int) -> ParsedBatch:
    return ParsedBatch(
        messages=(
            InboundMessage(
                wamid=f"wamid.ingest.{n}",
                conversation_key=f"+4477009{n % 5000:05d}",
                wa_id="447700900001",
                user_id=None,
                phone_number_id="106540352242922",
                display_phone_number=None,
                profile_name="Ana",
                timestamp=1_700_200_000 + n,
                kind="text",
                raw={"type": "text", "text": {"body": "hi"}},
            ),
        )
    )


def run_engine(engine: str, rows: int, conversations: int, repeat: int) -> dict[str, dict[str, float]]:
    url, cleanup = isolated_url(engine)
    db = open_database(url)
    try:
        migrate(db)
        bind(db)
        queue = InboundQueue(db, clock=lambda: NOW)
        leases = Leases(db, clock=lambda: NOW)
        _fill(db, rows, conversations)
        results: dict[str, dict[str, float]] = {}
        for state in ("recovered", "outage", "mixed"):
            _backlog(db, queue, state, rows, conversations)
            expected = _before(db, LIMIT)
            assert queue.due_conversations(LIMIT) == expected, (
                f"{engine}/{state}: index and GROUP BY disagree"
            )

            def claim() -> None:
                key = queue.due_conversations(LIMIT)[0]
                assert leases.acquire(f"conversation:{key}", "bench", 60)
                queue.pending_for(key)
                leases.release(f"conversation:{key}", "bench")

            results[state] = {
                "before": _median_ms(lambda: _before(db, LIMIT), repeat),
                "now": _median_ms(lambda: queue.due_conversations(LIMIT), repeat),
                "claim": _median_ms(claim, repeat),
                "after": _after_pass_ms(db, queue, repeat),
            }
        counter = iter(range(10**9))
        ingest = _median_ms(lambda: queue.store_batch(_one_message(next(counter))), repeat * 4)
        merge, queue.index.merge_wamids = queue.index.merge_wamids, lambda wamids: None
        bare = _median_ms(lambda: queue.store_batch(_one_message(next(counter))), repeat * 4)
        queue.index.merge_wamids = merge
        results["ingest"] = {"before": bare, "now": ingest}
        return results
    finally:
        db.close()
        cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--conversations", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=25)
    args = parser.parse_args(argv)
    print(
        f"{args.rows:,} pending rows over {args.conversations:,} conversations; limit {LIMIT}; "
        f"median of {args.repeat} calls, ms"
    )
    print(f"{'engine':10} {'backlog':10} {'before':>9} {'now':>9} {'claim':>9} {'after':>9}")
    for engine in ENGINES:
        try:
            results = run_engine(engine, args.rows, args.conversations, args.repeat)
        except ServerNotConfigured as exc:
            print(f"{engine:10} skipped ({exc.variable} not set)")
            continue
        for state, r in results.items():
            if state == "ingest":
                print(
                    f"{engine:10} {'ingest 1':10} {r['before']:9.2f} {r['now']:9.2f}   (one delivery; "
                    "before = index maintenance off)"
                )
            else:
                print(
                    f"{engine:10} {state:10} {r['before']:9.2f} {r['now']:9.2f} {r['claim']:9.2f} "
                    f"{r['after']:9.2f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
