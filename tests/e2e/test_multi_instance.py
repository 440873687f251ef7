"""Two real daemons on one PostgreSQL / MariaDB database: no duplicated work, and lease take-over."""

from __future__ import annotations

import time

import pytest

from sandbox import whatsapp_payloads as wa
from sandbox.meta import MetaSender
from storage.db import open_database
from storage.leases import Leases
from tests.e2e.harness import APP_SECRET, free_port, wait_until
from tests.support.databases import isolated_for_pytest

pytestmark = pytest.mark.e2e

SERVER_ENGINES = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=SERVER_ENGINES)
def shared_db(request):
    with isolated_for_pytest(request.param) as url:
        yield url


def test_two_daemons_share_the_work_without_duplicates(
    shared_db, jira, graph_sandbox, openai_sandbox, make_daemon
):
    first = make_daemon(
        name="a", db_url=shared_db, graph=graph_sandbox, openai=openai_sandbox, assistant=True
    ).start()
    second = make_daemon(
        name="b",
        db_url=shared_db,
        graph=graph_sandbox,
        openai=openai_sandbox,
        assistant=True,
        port=free_port(),
    ).start()
    phones = [f"4477009{n:05d}" for n in range(10)]
    senders = [MetaSender(first.webhook_url, APP_SECRET), MetaSender(second.webhook_url, APP_SECRET)]
    now = int(time.time())
    batches = []
    for i in range(3):
        for n, phone in enumerate(phones):
            payload = wa.message_payload(
                [wa.text(phone, f"{phone} says {i}", timestamp=now + i)],
                contacts=[wa.contact(f"Customer {n}", phone)],
            )
            graph_sandbox.observe_webhook(payload)
            batches.append(payload)
    # Alternate daemons and deliver everything twice, as Meta's retries might.
    for k, payload in enumerate(batches + batches):
        assert senders[k % 2].deliver(payload) == 200

    def comments():
        return {i["key"]: jira.comments(i["key"]) for i in jira.issues()}

    wait_until(
        lambda: sum(len(c) for c in comments().values()) >= 3 * len(phones),
        timeout=60,
        what="customer comments",
    )
    # Every ticket gets its AI reply; wait until each phone has one WhatsApp message.
    wait_until(
        lambda: len({m["to"] for m in graph_sandbox.sent()}) == len(phones), timeout=60, what="AI replies"
    )
    time.sleep(4)  # a duplicate, if any, would show up by now

    assert len(jira.issues()) == len(phones)
    for key, items in comments().items():
        customer = [c for c in items if c["properties"].get("wajira", {}).get("kind") == "customer"]
        ai = [c for c in items if c["properties"].get("wajira", {}).get("kind") == "ai"]
        wamids = [c["properties"]["wajira"]["wamid"] for c in customer]
        assert len(customer) == 3 and len(set(wamids)) == 3, key
        assert len(ai) >= 1, key
        turns = [c["properties"]["wajira"]["turn"] for c in ai]
        assert len(set(turns)) == len(turns), f"{key}: a turn answered twice"
    sent = graph_sandbox.sent()
    assert len(sent) == sum(
        1
        for items in comments().values()
        for c in items
        if c["properties"].get("wajira", {}).get("kind") == "ai"
    ), "one WhatsApp send per AI reply"
    assert len(openai_sandbox.requests()) == len(sent)


def test_the_other_daemon_takes_over_the_poll_when_the_holder_dies(
    shared_db, jira, graph_sandbox, openai_sandbox, make_daemon
):
    a = make_daemon(name="a", db_url=shared_db, graph=graph_sandbox, openai=openai_sandbox).start()
    b = make_daemon(
        name="b", db_url=shared_db, graph=graph_sandbox, openai=openai_sandbox, port=free_port()
    ).start()
    phone = "447700900777"
    payload = wa.message_payload(
        [wa.text(phone, "hello", timestamp=int(time.time()))], contacts=[wa.contact("Kim", phone)]
    )
    graph_sandbox.observe_webhook(payload)
    assert MetaSender(a.webhook_url, APP_SECRET).deliver(payload) == 200
    [issue] = wait_until(lambda: jira.issues(), what="ticket")
    wait_until(lambda: len(jira.comments(issue["key"])) == 1, what="comment")

    db = open_database(shared_db)
    try:
        holder = wait_until(lambda: Leases(db).holder("poll"), what="a poll lease holder")[0]
    finally:
        db.close()
    by_port = {a.port: a, b.port: b}
    dead = by_port[int(holder.rsplit(":", 1)[1])]
    survivor = b if dead is a else a
    dead.kill9()
    killed_at = time.monotonic()
    jira.add_agent_comment(issue["key"], "Are you still there?", author="Agent Smith")
    wait_until(
        lambda: [m for m in graph_sandbox.sent() if m["type"] == "text"],
        timeout=30,
        what="push after take-over",
    )
    took = time.monotonic() - killed_at
    ttl = 10  # max(10, 3 × poll interval of 1 s)
    assert took <= ttl + 5, f"take-over took {took:.1f}s"
    db = open_database(shared_db)
    try:
        assert Leases(db).holder("poll")[0].endswith(f":{survivor.port}")
    finally:
        db.close()
    assert survivor.terminate() == 0
