"""`/ai off` and `/ai on` stored per ticket, the newest command winning, on every engine."""

from __future__ import annotations

import pytest

from storage import AiSwitch, open_database
from tests.integration.test_storage import run_threads

KEY = "WA-7"
COUNT = 6  # racing threads


@pytest.fixture
def switch(db, clock):
    return AiSwitch(db, clock=clock)


def stored(db) -> list[tuple]:
    return [tuple(r) for r in db.execute_sql("SELECT issue_key, enabled, comment_id FROM ai_switch")]


def test_a_ticket_without_a_command_has_the_ai_on(switch):
    assert switch.enabled(KEY) is True
    assert switch.disabled_among([KEY, "WA-8"]) == set()


def test_off_then_on_follows_the_commands_in_order(switch, db, clock):
    assert switch.set_enabled(KEY, enabled=False, comment_id="10010", comment_created=100.0) is True
    assert switch.enabled(KEY) is False
    assert switch.enabled("WA-8") is True
    assert switch.set_enabled(KEY, enabled=True, comment_id="10011", comment_created=200.0) is True
    assert switch.enabled(KEY) is True
    assert stored(db) == [(KEY, 1, "10011")]
    updated_at = db.execute_sql("SELECT updated_at FROM ai_switch").fetchone()[0]
    assert float(updated_at) == clock.now


def test_an_older_command_read_again_never_flips_it_back(switch, db):
    assert switch.set_enabled(KEY, enabled=False, comment_id="10020", comment_created=300.0)
    # The poll's overlap re-reads an earlier `/ai on`: it stays off.
    assert switch.set_enabled(KEY, enabled=True, comment_id="10005", comment_created=299.5) is False
    assert switch.enabled(KEY) is False
    assert stored(db) == [(KEY, 0, "10020")]


def test_the_same_command_applied_again_is_still_its_state(switch, db):
    for _ in range(2):
        assert switch.set_enabled(KEY, enabled=False, comment_id="10030", comment_created=400.0) is True
    assert stored(db) == [(KEY, 0, "10030")]


def test_at_the_same_time_the_numerically_later_comment_wins(switch, db):
    # "999" sorts after "1000" as text; as Jira's increasing ids it comes first.
    assert switch.set_enabled(KEY, enabled=False, comment_id="1000", comment_created=500.0)
    assert switch.set_enabled(KEY, enabled=True, comment_id="999", comment_created=500.0) is False
    assert switch.enabled(KEY) is False
    assert switch.set_enabled(KEY, enabled=True, comment_id="1001", comment_created=500.0) is True
    assert switch.enabled(KEY) is True
    assert stored(db) == [(KEY, 1, "1001")]


def test_disabled_among_names_only_the_tickets_switched_off(switch):
    switch.set_enabled("WA-1", enabled=False, comment_id="1", comment_created=1.0)
    switch.set_enabled("WA-2", enabled=False, comment_id="2", comment_created=1.0)
    switch.set_enabled("WA-2", enabled=True, comment_id="3", comment_created=2.0)
    many = [f"WA-{n}" for n in range(3, 1200)]  # past one IN list's chunk
    switch.set_enabled("WA-1100", enabled=False, comment_id="4", comment_created=1.0)
    assert switch.disabled_among(["WA-1", "WA-2", "WA-1", *many]) == {"WA-1", "WA-1100"}
    assert switch.disabled_among([]) == set()


def test_values_too_long_to_store_are_refused(switch):
    with pytest.raises(ValueError, match="too long"):
        switch.set_enabled(KEY, enabled=False, comment_id="1" * 65, comment_created=1.0)
    with pytest.raises(ValueError, match="too long"):
        switch.set_enabled("K" * 192, enabled=False, comment_id="1", comment_created=1.0)
    assert switch.enabled(KEY) is True


def test_racing_threads_leave_the_newest_command(db, clock):
    switch = AiSwitch(db, clock=clock)
    for round_ in range(3):
        key = f"WA-R{round_}"
        # Thread i applies comment 100+i made at time i; the newest (the last) is an `/ai off`.
        results = run_threads(
            db,
            COUNT,
            lambda i, key=key: switch.set_enabled(
                key, enabled=i != COUNT - 1, comment_id=str(100 + i), comment_created=float(i)
            ),
        )
        assert results[-1] is True
        assert stored_for(db, key) == (0, str(100 + COUNT - 1))
        assert switch.enabled(key) is False


def test_two_instances_racing_agree_on_the_newest_command(db, db_url, clock):
    # `db` migrated the database at `db_url`; each instance opens its own.
    first, second = open_database(db_url), open_database(db_url)
    try:
        a, b = AiSwitch(first, clock=clock), AiSwitch(second, clock=clock)
        for round_ in range(4):
            key = f"WA-I{round_}"

            def apply(i: int, key: str = key) -> bool:
                # Each instance applies both commands, in opposite orders: the newer must win.
                instance = (a, b)[i % 2]
                order = [("2000", True, 20.0), ("1999", False, 10.0)]
                if i % 2:
                    order.reverse()
                won = []
                for comment_id, enabled, created in order:
                    won.append(
                        instance.set_enabled(
                            key, enabled=enabled, comment_id=comment_id, comment_created=created
                        )
                    )
                return won[0] if i % 2 == 0 else won[1]  # what the newer command reported

            both = run_two(first, second, apply)
            assert both == [True, True]
            assert stored_for(first, key) == (1, "2000")
            assert a.enabled(key) is True and b.enabled(key) is True
    finally:
        first.close()
        second.close()


def run_two(first, second, work) -> list:
    """work(0) on `first`'s connection and work(1) on `second`'s, released together."""
    import threading

    barrier = threading.Barrier(2)
    results: list = [None, None]
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            (first, second)[i].close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]
    return results


def stored_for(db, key: str) -> tuple:
    p = db.param
    row = db.execute_sql(
        f"SELECT enabled, comment_id FROM ai_switch WHERE issue_key = {p}", (key,)
    ).fetchone()
    return (int(row[0]), row[1])
