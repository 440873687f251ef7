"""Group commit without a waiting thread: `submit_async` queues a unit for the committer thread,
and its callback hears the outcome of the transaction that held it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial

import pytest

import storage.group_commit as group_commit
from storage.group_commit import GroupCommit


class Down(Exception):
    pass


def returns(value: object) -> Callable[[], object]:
    return lambda: value


class Database:
    """A pretend database. Transaction n waits for `release(n)` when n is in `hold`, and raises
    `fail[n]` (nothing committed) when given; otherwise it commits what its work returns."""

    def __init__(
        self, *, hold: tuple[int, ...] = (), fail: dict[int, BaseException] | None = None, slow: float = 0.0
    ) -> None:
        self.hold = set(hold)
        self.fail = dict(fail or {})
        self.slow = slow
        self.lock = threading.Lock()
        self.entered = [threading.Event() for _ in range(1000)]
        self.opened = [threading.Event() for _ in range(1000)]
        self.started = 0
        self.transactions: list[list[object]] = []

    def run(self, work: Callable[[], list[object]]) -> list[object]:
        with self.lock:
            n, self.started = self.started, self.started + 1
        self.entered[n].set()
        if n in self.hold:
            assert self.opened[n].wait(5), f"transaction {n} was never released"
        if n in self.fail:
            raise self.fail[n]
        results = work()
        time.sleep(self.slow)  # the fsync, while others queue up
        with self.lock:
            self.transactions.append(results)
        return results

    def release(self, n: int) -> None:
        self.opened[n].set()

    def wait_entered(self, n: int) -> None:
        assert self.entered[n].wait(5), f"transaction {n} never started"


class Outcomes:
    """The callbacks' side: what each unit heard, how often, and in which thread."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.heard: dict[object, tuple[object, BaseException | None]] = {}
        self.calls: Counter[object] = Counter()
        self.threads: set[str] = set()

    def done(self, key: object) -> Callable[[object, BaseException | None], None]:
        def told(result: object, error: BaseException | None) -> None:
            with self.lock:
                self.heard[key] = (result, error)
                self.calls[key] += 1
                self.threads.add(threading.current_thread().name)
                self.lock.notify_all()

        return told

    def wait(self, count: int, timeout: float = 5.0) -> None:
        with self.lock:
            assert self.lock.wait_for(lambda: len(self.heard) >= count, timeout), self.heard


def test_each_callback_hears_its_own_result():
    db = Database()
    group = GroupCommit(db.run, passthrough=(Down,))
    outcomes = Outcomes()
    for i in range(50):
        group.submit_async(returns(i * 10), outcomes.done(i))
    outcomes.wait(50)
    assert outcomes.heard == {i: (i * 10, None) for i in range(50)}
    assert set(outcomes.calls.values()) == {1}  # each told once
    assert sorted(int(str(x)) for t in db.transactions for x in t) == [
        i * 10 for i in range(50)
    ]  # each run once
    assert outcomes.threads == {"group-commit"}


def test_submit_async_returns_at_once_while_a_transaction_hangs():
    db = Database(hold=(0, 1))
    group = GroupCommit(db.run, passthrough=(Down,), wait_seconds=0.2)
    outcomes = Outcomes()
    group.submit_async(lambda: "first", outcomes.done("first"))
    db.wait_entered(0)
    started = time.monotonic()
    for n in range(20):
        group.submit_async(returns(n), outcomes.done(n))
    assert time.monotonic() - started < 0.1
    assert outcomes.heard == {}
    db.release(0)
    db.release(1)
    outcomes.wait(21)
    # No wait_seconds for these: nobody gave up, nothing was skipped.
    expected: dict[object, tuple[object, None]] = {n: (n, None) for n in range(20)}
    assert outcomes.heard == {"first": ("first", None), **expected}
    assert group.gave_up == 0


def test_units_submitted_while_a_transaction_runs_share_the_next_one():
    db = Database(hold=(0,))
    group = GroupCommit(db.run, passthrough=(Down,))
    outcomes = Outcomes()
    group.submit_async(lambda: "first", outcomes.done("first"))
    db.wait_entered(0)
    for n in range(10):
        group.submit_async(returns(n), outcomes.done(n))
    db.release(0)
    outcomes.wait(11)
    assert db.started == 2  # one transaction for the first, one for the ten queued behind it
    assert db.transactions == [["first"], list(range(10))]
    assert (group.groups, group.units) == (2, 11)


def test_a_database_error_reaches_every_unit_of_its_group():
    down = Down("refused")
    db = Database(hold=(0,), fail={1: down})
    group = GroupCommit(db.run, passthrough=(Down,))
    outcomes = Outcomes()
    ran: list[int] = []
    group.submit_async(lambda: "first", outcomes.done("first"))
    db.wait_entered(0)
    for n in range(5):
        group.submit_async(partial(ran.append, n), outcomes.done(n))
    db.release(0)
    outcomes.wait(6)
    assert outcomes.heard["first"] == ("first", None)
    assert [outcomes.heard[n] for n in range(5)] == [(None, down)] * 5
    assert db.started == 2  # a database failure is not retried unit by unit
    assert ran == []
    # The committer carries on.
    group.submit_async(lambda: "after", outcomes.done("after"))
    outcomes.wait(7)
    assert outcomes.heard["after"] == ("after", None)


def test_a_database_error_reaches_a_lone_unit():
    down = Down("refused")
    group = GroupCommit(Database(fail={0: down}).run, passthrough=(Down,))
    outcomes = Outcomes()
    group.submit_async(lambda: 1, outcomes.done("alone"))
    outcomes.wait(1)
    assert outcomes.heard == {"alone": (None, down)}


def test_a_faulty_unit_fails_alone_and_the_others_get_their_results():
    db = Database(hold=(0,))
    group = GroupCommit(db.run, passthrough=(Down,))
    outcomes = Outcomes()
    bug = KeyError("bug")

    def faulty() -> object:
        raise bug

    group.submit_async(lambda: "first", outcomes.done("first"))
    db.wait_entered(0)
    for n in range(6):
        group.submit_async(faulty if n == 3 else returns(n), outcomes.done(n))
    db.release(0)
    outcomes.wait(7)
    assert outcomes.heard[3] == (None, bug)
    assert {n: outcomes.heard[n] for n in range(6) if n != 3} == {n: (n, None) for n in range(6) if n != 3}
    # The group's transaction failed; then each unit ran alone.
    assert db.started == 1 + 1 + 6
    assert [x for t in db.transactions for x in t if x != "first"] == [0, 1, 2, 4, 5]


def test_a_lone_faulty_unit_hears_its_own_error():
    group = GroupCommit(Database().run, passthrough=(Down,))
    outcomes = Outcomes()
    bug = ValueError("bug")

    def faulty() -> object:
        raise bug

    group.submit_async(faulty, outcomes.done("faulty"))
    outcomes.wait(1)
    assert outcomes.heard == {"faulty": (None, bug)}


def test_a_callback_that_raises_stops_neither_the_others_nor_the_committer():
    db = Database(hold=(0,))
    group = GroupCommit(db.run, passthrough=(Down,))
    outcomes = Outcomes()

    def rude(result: object, error: BaseException | None) -> None:
        outcomes.done("rude")(result, error)
        raise RuntimeError("a callback's bug")

    group.submit_async(lambda: "first", rude)
    db.wait_entered(0)
    for n in range(5):
        group.submit_async(returns(n), rude if n in (0, 2) else outcomes.done(n))
    db.release(0)
    outcomes.wait(4)  # "rude" and 1, 3, 4
    assert {n: outcomes.heard[n] for n in (1, 3, 4)} == {n: (n, None) for n in (1, 3, 4)}
    assert outcomes.calls["rude"] == 3
    group.submit_async(lambda: "later", outcomes.done("later"))
    outcomes.wait(5)
    assert outcomes.heard["later"] == ("later", None)
    assert group.submit(lambda: "blocking") == "blocking"


def test_an_async_unit_queued_behind_a_blocking_caller_is_committed_by_the_committer():
    db = Database(hold=(0,))
    group = GroupCommit(db.run, passthrough=(Down,), wait_seconds=5)
    outcomes = Outcomes()
    out: dict[str, object] = {}
    leader = threading.Thread(target=lambda: out.update(result=group.submit(lambda: "leader")))
    leader.start()
    db.wait_entered(0)
    group.submit_async(lambda: "queued", outcomes.done("queued"))
    db.release(0)
    leader.join(5)
    outcomes.wait(1)
    assert out == {"result": "leader"}
    assert outcomes.heard == {"queued": ("queued", None)}
    assert outcomes.threads == {"group-commit"}
    assert db.transactions == [["leader"], ["queued"]]


def test_blocking_and_async_submits_mixed_all_complete():
    db = Database(slow=0.002)
    group = GroupCommit(db.run, passthrough=(Down,), wait_seconds=10)
    outcomes = Outcomes()
    blocking: dict[tuple[int, int], object] = {}
    threads, per_thread = 8, 25
    start = threading.Barrier(2 * threads)

    def submit_blocking(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            try:
                blocking[t, i] = group.submit(returns(("sync", t, i)))
            except BaseException as exc:
                blocking[t, i] = exc

    def submit_async(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            group.submit_async(returns(("async", t, i)), outcomes.done((t, i)))
            time.sleep(0.0005)

    workers = [threading.Thread(target=submit_blocking, args=(t,)) for t in range(threads)]
    workers += [threading.Thread(target=submit_async, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(20)
    outcomes.wait(threads * per_thread, timeout=10)
    cells = [(t, i) for t in range(threads) for i in range(per_thread)]
    assert blocking == {(t, i): ("sync", t, i) for t, i in cells}
    assert outcomes.heard == {(t, i): (("async", t, i), None) for t, i in cells}
    assert set(outcomes.calls.values()) == {1}
    committed = Counter(x for t in db.transactions for x in t)
    assert set(committed.values()) == {1} and len(committed) == 2 * len(cells)  # each unit once
    assert len(db.transactions) < 2 * len(cells)  # and they did share transactions


def test_async_submits_restart_a_committer_that_ended_when_idle(monkeypatch):
    monkeypatch.setattr(group_commit, "IDLE_SECONDS", 0.05)
    db = Database()
    group = GroupCommit(db.run, passthrough=(Down,))
    outcomes = Outcomes()
    for burst in range(3):
        for n in range(5):
            group.submit_async(returns(n), outcomes.done((burst, n)))
        outcomes.wait(5 * (burst + 1))
        deadline = time.monotonic() + 2
        while group._committer is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert group._committer is None  # gone once idle
    assert outcomes.heard == {(b, n): (n, None) for b in range(3) for n in range(5)}


@pytest.mark.parametrize("max_group", [1, 3])
def test_async_groups_respect_max_group(max_group):
    db = Database(hold=(0,))
    group = GroupCommit(db.run, passthrough=(Down,), max_group=max_group)
    outcomes = Outcomes()
    group.submit_async(lambda: "first", outcomes.done("first"))
    db.wait_entered(0)
    for n in range(10):
        group.submit_async(returns(n), outcomes.done(n))
    db.release(0)
    outcomes.wait(11)
    assert max(len(t) for t in db.transactions) <= max_group
    assert [x for t in db.transactions[1:] for x in t] == list(range(10))  # oldest first
