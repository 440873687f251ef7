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
            except BaseException as exc:
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


# -- bounded waits -------------------------------------------------------------------------------


class GaveUp(Exception):
    pass


class Gate:
    """A pretend database whose n-th transaction waits until `release(n)` (a hung server)."""

    def __init__(self) -> None:
        self.opened = [threading.Event() for _ in range(8)]
        self.entered = [threading.Event() for _ in range(8)]
        self.started = 0
        self.transactions: list[list] = []

    def run(self, work):
        n, self.started = self.started, self.started + 1  # one transaction at a time
        self.entered[n].set()
        self.opened[n].wait(10)
        results = work()
        self.transactions.append(results)
        return results

    def release(self, n: int = 0) -> None:
        self.opened[n].set()


def in_thread(call) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        started = time.monotonic()
        try:
            out["result"] = call()
        except BaseException as exc:
            out["error"] = exc
        out["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, name=f"caller-{id(out)}")
    thread.start()
    return thread, out


def test_a_follower_behind_a_hung_transaction_gives_up_and_its_unit_never_runs():
    gate = Gate()
    group = GroupCommit(gate.run, passthrough=(Down,), wait_seconds=0.3, timed_out=GaveUp)
    ran = []
    leader, led = in_thread(lambda: group.submit(lambda: ran.append("leader") or "leader"))
    assert gate.entered[0].wait(5)
    follower, followed = in_thread(lambda: group.submit(lambda: ran.append("follower") or "follower"))
    follower.join(5)
    assert isinstance(followed["error"], GaveUp) and "0.3s" in str(followed["error"])
    assert 0.3 <= followed["seconds"] < 1.0
    gate.release(0)
    leader.join(5)
    assert led["result"] == "leader"
    time.sleep(0.2)  # a committer, had the follower's unit stayed queued, would have run it
    assert ran == ["leader"] and gate.transactions == [["leader"]]
    assert group.gave_up == 1
    gate.release(1)
    assert group.submit(lambda: "next") == "next"  # nothing was left holding the lead


def test_a_caller_who_gave_up_is_never_told_its_outcome_and_a_unit_not_yet_run_is_skipped():
    gate = Gate()
    group = GroupCommit(gate.run, passthrough=(Down,), wait_seconds=0.3, timed_out=GaveUp)
    ran = []
    # The leader's transaction hangs; two callers queue behind it, and the committer thread
    # takes both into the next transaction, which hangs too.
    leader, led = in_thread(lambda: group.submit(lambda: ran.append(0) or 0))
    assert gate.entered[0].wait(5)
    waiting = [in_thread(lambda n=n: group.submit(lambda: ran.append(n) or n)) for n in (1, 2)]
    time.sleep(0.05)
    gate.release(0)  # the leader's commit goes through; the next one hangs before its units
    leader.join(5)
    assert led["result"] == 0
    assert gate.entered[1].wait(5)
    for thread, _ in waiting:
        thread.join(5)
    assert [type(out.get("error")) for _, out in waiting] == [GaveUp, GaveUp]
    gate.release(1)
    time.sleep(0.2)
    # Taken, then given up before the transaction reached them: skipped, not written.
    assert gate.transactions == [[0], [None, None]] and ran == [0]
    assert all("result" not in out for _, out in waiting)


def test_a_follower_is_bounded_even_when_the_transaction_after_the_leaders_hangs():
    # When the leader's commit ends, a follower's clock has partly run: had it to start the
    # next transaction itself, a hang there would keep it a whole bound longer. The committer
    # thread starts it instead, and the follower leaves on time.
    delays = [0.4, 1.5]
    runners: list[str] = []

    def run(work):
        runners.append(threading.current_thread().name)
        time.sleep(delays.pop(0))
        return work()

    group = GroupCommit(run, passthrough=(Down,), wait_seconds=0.6, timed_out=GaveUp)
    leader, led = in_thread(lambda: group.submit(lambda: "leader"))
    time.sleep(0.1)
    follower, followed = in_thread(lambda: group.submit(lambda: "follower"))
    follower.join(5)
    leader.join(5)
    assert led["result"] == "leader"
    assert isinstance(followed.get("error"), GaveUp), followed
    assert 0.6 <= followed["seconds"] < 1.2, followed["seconds"]  # not 1.9
    assert runners == [leader.name, "group-commit"]


def test_the_committer_thread_ends_when_idle_and_comes_back_when_needed(monkeypatch):
    import storage.group_commit as module

    monkeypatch.setattr(module, "IDLE_SECONDS", 0.1)
    committers: list[threading.Thread] = []
    ledger = Ledger(slow=0.02)

    def run(work):
        if threading.current_thread().name == "group-commit":
            committers.append(threading.current_thread())
        return ledger.run(work)

    group = GroupCommit(run, passthrough=(Down,), wait_seconds=5)
    for _ in range(2):
        assert submit_all(group, [lambda i=i: i for i in range(20)], threads=4) == [
            ("ok", i) for i in range(20)
        ]
        time.sleep(0.3)
        assert group._committer is None
    assert len(set(committers)) == 2  # one per burst, each gone once idle
    assert not any(t.is_alive() for t in committers)


def test_without_a_bound_a_follower_waits_as_long_as_it_takes():
    gate = Gate()
    group = GroupCommit(gate.run, passthrough=(Down,))
    leader, led = in_thread(lambda: group.submit(lambda: "leader"))
    assert gate.entered[0].wait(5)
    follower, followed = in_thread(lambda: group.submit(lambda: "follower"))
    time.sleep(0.5)
    assert follower.is_alive()
    gate.release(0)
    gate.release(1)
    follower.join(5)
    leader.join(5)
    assert (led["result"], followed["result"]) == ("leader", "follower")
