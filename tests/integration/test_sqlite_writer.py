"""SQLite's writers queue on `<database>-writer` (storage/sqlite_writer.py), across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import peewee
import pytest

from storage.db import open_database
from storage.sqlite_writer import SUFFIX, writer_lock
from storage.transactions import write_transaction

_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _database(tmp_path: Path, name: str = "w.db", timeout: float = 5.0) -> peewee.Database:
    db = open_database(f"sqlite:///{tmp_path / name}", timeout_seconds=timeout)
    db.execute_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    return db


def _hold_in_another_process(lock_path: str, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, lock_path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_writer_waits_for_another_process_and_starts_once_it_lets_go(tmp_path: Path) -> None:
    db = _database(tmp_path)
    holder = _hold_in_another_process(str(tmp_path / "w.db") + SUFFIX, 0.6)
    try:
        started = time.monotonic()
        with write_transaction(db):
            db.execute_sql("INSERT INTO t VALUES (1)")
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=10)
    # It queued behind the other process (~0.6 s) and went on as soon as that one exited.
    assert 0.4 <= waited < 3.0
    assert db.execute_sql("SELECT COUNT(*) FROM t").fetchone()[0] == 1


def test_a_holder_that_never_lets_go_costs_the_busy_bound_not_for_ever(tmp_path: Path) -> None:
    db = _database(tmp_path, timeout=0.5)
    holder = _hold_in_another_process(str(tmp_path / "w.db") + SUFFIX, 30)
    try:
        started = time.monotonic()
        with write_transaction(db):  # SQLite's own lock is free: it goes on without ours
            db.execute_sql("INSERT INTO t VALUES (1)")
        assert time.monotonic() - started < 3.0
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_a_thread_waits_for_another_thread_of_its_process(tmp_path: Path) -> None:
    # One descriptor per process: the file lock alone would let a second thread straight in.
    db = _database(tmp_path)
    lock = writer_lock(str(tmp_path / "w.db"))
    assert lock is not None
    done = threading.Event()

    def write() -> None:
        with write_transaction(db):
            db.execute_sql("INSERT INTO t VALUES (1)")
        done.set()

    with lock.held(5) as had:
        assert had
        writer = threading.Thread(target=write)
        writer.start()
        assert not done.wait(0.3)
    assert done.wait(5)
    writer.join(timeout=5)
    assert db.execute_sql("SELECT COUNT(*) FROM t").fetchone()[0] == 1


def test_a_symlink_planted_as_the_lock_file_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("not ours")
    os.symlink(target, str(tmp_path / "s.db") + SUFFIX)
    db = _database(tmp_path, "s.db")
    assert writer_lock(str(tmp_path / "s.db")) is None  # no lock, and the target untouched
    with write_transaction(db):
        db.execute_sql("INSERT INTO t VALUES (1)")
    assert target.read_text() == "not ours"
    assert db.execute_sql("SELECT COUNT(*) FROM t").fetchone()[0] == 1


@pytest.mark.parametrize("database", ["", ":memory:", "file:wajira-x?mode=memory&cache=shared"])
def test_in_memory_databases_have_no_lock_file(database: str) -> None:
    assert writer_lock(database) is None
