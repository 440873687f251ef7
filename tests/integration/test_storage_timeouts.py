"""storage.db on PostgreSQL and MariaDB that stop answering: every round trip is bounded.

A blackholed TCP proxy (tests/support/tcp_proxy.py) stands for a hung server or a network that drops
packets: sockets stay open, nothing comes back. Slow statements run on the real server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest

from bot.rules.events import ParsedBatch
from storage import InboundQueue, StorageUnavailable, migrate, ping
from storage.db import bind, open_database
from storage.engines import dialect, patient
from storage.transactions import transact
from tests.integration.test_storage import message
from tests.support.databases import engine_params
from tests.support.tcp_proxy import TcpProxy

SERVERS = [p for p in engine_params() if p.values[0] != "sqlite"]
SLACK = 0.8  # thread hand-overs on a busy 2-core runner


@pytest.fixture(params=SERVERS)
def db_engine(request) -> str:
    return request.param


@pytest.fixture
def proxy(db_url) -> Iterator[TcpProxy]:
    parts = urlsplit(db_url)
    proxy = TcpProxy(parts.hostname, parts.port or (5432 if db_url.startswith("postgres") else 3306)).start()
    yield proxy
    proxy.close()


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}127.0.0.1:{proxy.port}"))


def sleep_sql(db, seconds: float) -> str:
    return f"SELECT pg_sleep({seconds})" if dialect(db) == "postgres" else f"SELECT SLEEP({seconds})"


def timed(call) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        call()
    except BaseException as exc:  # returned for the assertions
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


def in_threads(call, n: int) -> list[tuple[BaseException | None, float]]:
    out: list = [None] * n

    def run(i: int) -> None:
        out[i] = timed(call)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_session_settings_follow_the_bound(db_url):
    db = open_database(db_url, timeout_seconds=2)
    if dialect(db) == "postgres":
        settings = [
            db.execute_sql(f"SHOW {name}").fetchone()[0] for name in ("statement_timeout", "lock_timeout")
        ]
        assert settings == ["2s", "2s"]
    else:
        assert db.execute_sql("SELECT @@SESSION.innodb_lock_wait_timeout").fetchone()[0] == 2
    db.close()


@pytest.mark.parametrize("db_engine", [p for p in SERVERS if p.values[0] == "postgres"], indirect=True)
def test_postgres_statement_timeout_in_the_url_options_wins(db_url):
    parts = urlsplit(db_url)
    query = [(k, v + " -c statement_timeout=7s" if k == "options" else v) for k, v in parse_qsl(parts.query)]
    db = open_database(urlunsplit(parts._replace(query=urlencode(query, quote_via=quote))), timeout_seconds=2)
    assert db.execute_sql("SHOW statement_timeout").fetchone()[0] == "7s"
    assert db.execute_sql("SHOW lock_timeout").fetchone()[0] == "2s"
    db.close()


def test_a_slow_statement_ends_at_the_bound_and_the_next_call_reconnects(db_url):
    db = open_database(db_url, timeout_seconds=1)
    ping(db)
    error, seconds = timed(lambda: transact(db, lambda: db.execute_sql(sleep_sql(db, 3)).fetchall()))
    assert isinstance(error, StorageUnavailable), error
    assert seconds < 1 + SLACK, seconds
    ping(db)
    db.close()


def test_a_hung_server_costs_each_thread_one_bound_not_its_life(db_url, proxy):
    db = open_database(through(proxy, db_url), timeout_seconds=1)
    migrate(db)
    bind(db)
    queue = InboundQueue(db)
    warm = in_threads(lambda: ping(db), 3)  # three threads with open connections
    assert [e for e, _ in warm] == [None] * 3
    proxy.blackhole()
    # Open connections, new ones (peewee opens them under a lock shared by all threads), a
    # transaction whose rollback meets the same silence, and the webhook's group commit.
    checks = in_threads(lambda: ping(db), 6)
    stores = in_threads(
        lambda: queue.store_batch(ParsedBatch(messages=(message(f"w{time.monotonic_ns()}"),))), 4
    )
    written = in_threads(lambda: transact(db, lambda: db.execute_sql("SELECT 1").fetchall()), 2)
    proxy.resume()
    for error, seconds in checks + stores + written:
        assert isinstance(error, StorageUnavailable), error
        assert seconds < 1 + SLACK, seconds
    # Every broken connection was dropped: each thread reconnects and works.
    assert [e for e, _ in in_threads(lambda: ping(db), 6)] == [None] * 6
    assert queue.store_batch(ParsedBatch(messages=(message("after"),))).messages_new == 1
    db.close()


def test_patient_lets_one_thread_wait_longer_then_the_bound_is_back(db_url):
    db = open_database(db_url, timeout_seconds=1)
    with patient(db, at_least=5):
        db.execute_sql(sleep_sql(db, 1.5)).fetchall()
    error, _ = timed(lambda: transact(db, lambda: db.execute_sql(sleep_sql(db, 1.5)).fetchall()))
    assert isinstance(error, StorageUnavailable), error
    db.close()
