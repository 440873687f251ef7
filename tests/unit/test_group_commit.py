"""Group commit: shared transactions, each caller's own result, failures kept to their owner."""

from __future__ import annotations

import threading
import time

import pytest

from storage.group_commit import GroupCommit


class Down(Exception):
    pass


class Ledger:
    """A pretend database: a transaction commits the list its work returns, or nothing."""

    def __init__(self, *, slow: float = 0.0, fail_with: BaseException | None = None) -> None:
        self.transactions: list[list] = []
        self.slow = slow
        self.fail_with = fail_with
        self.lock = threading.Lock()

    def run(self, work):
        if self.fail_with is not None:
            raise self.fail_with
        results = work()
        time.sleep(self.slow)  # the fsync, while others queue up
        with self.lock:
            self.transactions.append(results)
        return results


def submit_all(group: GroupCommit, units, threads: int = 20) -> list:
    out: list = [None] * len(units)
    start = threading.Barrier(threads)

    def run(n: int) -> None:
        start.wait()
        for i in range(n, len(units), threads):
            try:
                out[i] = ("ok", group.submit(units[i]))
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
                out[i] = ("error", exc)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    return out


def test_a_caller_alone_commits_at_once_and_gets_its_result():
    ledger = Ledger()
    group = GroupCommit(ledger.run, passthrough=(Down,))
    assert group.submit(lambda: 41 + 1) == 42
    assert ledger.transactions == [[42]]


def test_concurrent_callers_share_transactions_and_each_gets_its_own_result():
    ledger = Ledger(slow=0.01)
    group = GroupCommit(ledger.run, passthrough=(Down,))
    out = submit_all(group, [lambda i=i: i * 10 for i in range(200)])
    assert out == [("ok", i * 10) for i in range(200)]
    committed = sorted(x for t in ledger.transactions for x in t)
    assert committed == [i * 10 for i in range(200)]  # every unit exactly once
    assert len(ledger.transactions) < 100  # and fewer transactions than units
    assert group.units == 200 and group.groups == len(ledger.transactions)


def test_a_group_is_never_larger_than_max_group():
    ledger = Ledger(slow=0.01)
    group = GroupCommit(ledger.run, passthrough=(Down,), max_group=3)
    submit_all(group, [lambda i=i: i for i in range(60)])
    assert max(len(t) for t in ledger.transactions) <= 3
    assert sorted(x for t in ledger.transactions for x in t) == list(range(60))


def test_database_failure_reaches_every_caller_of_the_group():
    ledger = Ledger(fail_with=Down("refused"))
    group = GroupCommit(ledger.run, passthrough=(Down,))
    out = submit_all(group, [lambda i=i: i for i in range(40)])
    assert all(kind == "error" and isinstance(exc, Down) for kind, exc in out)
    assert ledger.transactions == []


def test_a_faulty_unit_fails_alone_and_the_others_are_committed():
    ledger = Ledger(slow=0.005)
    group = GroupCommit(ledger.run, passthrough=(Down,))

    def faulty():
        raise KeyError("bug")

    units = [lambda i=i: i for i in range(60)]
    units[17] = faulty
    out = submit_all(group, units)
    assert out[17][0] == "error" and isinstance(out[17][1], KeyError)
    assert [r for i, r in enumerate(out) if i != 17] == [("ok", i) for i in range(60) if i != 17]
    committed = sorted(x for t in ledger.transactions for x in t)
    assert committed == [i for i in range(60) if i != 17]


def test_leadership_passes_on_after_an_error():
    ledger = Ledger()
    group = GroupCommit(ledger.run, passthrough=(Down,))
    ledger.fail_with = Down("blip")
    with pytest.raises(Down):
        group.submit(lambda: 1)
    ledger.fail_with = None
    assert group.submit(lambda: 2) == 2
