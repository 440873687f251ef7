"""A hung database against the real daemon: a half-open network, not a refused connection.

A TCP proxy between the daemon and the server stops forwarding bytes both ways and closes
nothing, so no error ever comes back by itself. With `[storage] timeout_seconds` the daemon
must still answer: signed webhooks 503 within the bound (Meta redelivers), `/healthz` 503 as
promptly, other requests at once. When the network heals, the same deliveries sent again are
stored and everything reaches Jira exactly once.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, VERIFY_TOKEN, wait_until
from tests.fault.test_faults import (
    assert_ai_once_per_turn,
    assert_inbound_exactly_once,
    assert_outbound_at_most_once,
    burst,
    customer_count,
    deliver_all,
    phones_for,
    settle,
    settled,
)
from tests.support.databases import isolated_for_pytest
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.fault, pytest.mark.e2e]

TIMEOUT = 2.0  # [storage] timeout_seconds in this test
SLACK = 1.5  # HTTP, thread hand-overs, a busy 2-core CI runner
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}


def through(proxy: TcpProxy, url: str) -> str:
    """`url` with its host and port replaced by the proxy's (user and password kept)."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}127.0.0.1:{proxy.port}"))


def with_storage_timeout(daemon, seconds: float) -> None:
    config = daemon.config_path.read_text()
    assert config.count("\n[storage]\n") == 1
    daemon.config_path.write_text(
        config.replace("\n[storage]\n", f"\n[storage]\ntimeout_seconds = {seconds}\n")
    )


def timed(call) -> tuple[object, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    "engine",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_hung_database_answers_503_within_the_bound_then_catches_up(
    engine, jira, graph_sandbox, openai_sandbox, make_daemon, budget
):
    with isolated_for_pytest(engine) as url:
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname, parts.port or DEFAULT_PORTS[engine]).start()
        try:
            daemon = make_daemon(
                graph=graph_sandbox, openai=openai_sandbox, db_url=through(proxy, url), assistant=True
            )
            with_storage_timeout(daemon, TIMEOUT)
            daemon.start()
            sender = MetaSender(daemon.webhook_url, APP_SECRET)
            phones = phones_for(budget.phones, prefix="4477006")
            payloads, expected = burst(phones, budget.messages, "hang", int(time.time()) - 60)
            third = len(payloads) // 3
            deliver_all(sender, payloads[:third], graph_sandbox)  # the jobs are busy with these

            proxy.blackhole()
            held = payloads[third : 2 * third]
            for payload in held:
                graph_sandbox.observe_webhook(payload)
            # Meta delivers concurrently: followers of the group commit and its leader alike.
            with ThreadPoolExecutor(len(held)) as pool:
                answers = list(
                    pool.map(
                        lambda p: timed(lambda: MetaSender(daemon.webhook_url, APP_SECRET).deliver(p)), held
                    )
                )
            # A second wave once the jobs have met the hang too, one at a time, with the
            # health check and a request that needs no database in between.
            time.sleep(TIMEOUT)
            health, health_s = timed(lambda: requests.get(f"{daemon.url}/healthz", timeout=30))
            verify, verify_s = timed(
                lambda: requests.get(
                    daemon.webhook_url,
                    timeout=30,
                    params={
                        "hub.mode": "subscribe",
                        "hub.verify_token": VERIFY_TOKEN,
                        "hub.challenge": "alive",
                    },
                )
            )
            answers += [timed(lambda p=p: sender.deliver(p)) for p in held]
            proxy.resume()

            webhook_s = [seconds for _, seconds in answers]
            print(
                f"{engine} hung: webhooks {[f'{s:.2f}' for s in webhook_s]} s, "
                f"/healthz {health_s:.2f} s, verification {verify_s:.2f} s (bound {TIMEOUT} s)"
            )
            assert [status for status, _ in answers] == [503] * len(answers)
            assert max(webhook_s) <= TIMEOUT + SLACK, webhook_s
            assert health.status_code == 503 and health_s <= TIMEOUT + SLACK, (health.status_code, health_s)
            assert verify.status_code == 200 and verify.text == "alive" and verify_s <= 1.0, verify_s

            # The network heals: Meta's retries are stored, the rest of the burst too.
            deliver_all(sender, held, graph_sandbox)
            deliver_all(sender, payloads[2 * third :], graph_sandbox)
            settle(
                "every message in Jira",
                lambda: customer_count(jira) == len(payloads),
                jira,
                url,
                daemon,
                budget.settle_timeout,
            )
            settle("queues settled", lambda: settled(url), jira, url, daemon, budget.settle_timeout)
            time.sleep(1.5)  # a duplicate would have landed by now
            assert_inbound_exactly_once(jira, expected)
            assert_ai_once_per_turn(jira)
            assert_outbound_at_most_once(graph_sandbox, url)
            wait_until(
                lambda: requests.get(f"{daemon.url}/healthz", timeout=5).status_code == 200,
                timeout=20,
                what="healthy",
            )
            assert daemon.terminate() == 0
        finally:
            proxy.close()
