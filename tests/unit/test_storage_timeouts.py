"""storage.db: the driver settings `[storage] timeout_seconds` becomes, per engine (no server)."""

from __future__ import annotations

import pytest

from storage.db import open_database
from storage.engines import LOCK_WAIT_SECONDS, round_trip_seconds


def test_postgres_gets_connect_keepalive_and_tcp_user_timeouts():
    db = open_database("postgresql://wajira@db.example/wajira", timeout_seconds=5)
    params = {k: v for k, v in db.connect_params.items() if k != "connection_factory"}
    assert params == {
        "application_name": "wajira",
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 5000,
    }
    assert db.connect_params["connection_factory"].round_trip_seconds == 5
    assert round_trip_seconds(db) == 5


def test_postgres_small_bounds_stay_within_what_libpq_accepts():
    db = open_database("postgresql://wajira@db.example/wajira", timeout_seconds=0.5)
    params = db.connect_params
    assert (params["connect_timeout"], params["keepalives_idle"], params["keepalives_interval"]) == (2, 1, 1)
    assert params["tcp_user_timeout"] == 500


def test_postgres_settings_in_the_url_win():
    url = (
        "postgresql://wajira@db.example/wajira?connect_timeout=30&keepalives_idle=60"
        "&tcp_user_timeout=0&options=-csearch_path%3Dx%20-c%20statement_timeout%3D30s"
    )
    db = open_database(url, timeout_seconds=5)
    assert not {"connect_timeout", "keepalives_idle", "tcp_user_timeout"} & set(db.connect_params)
    assert db.connect_params["keepalives_interval"] == 2  # what the URL leaves out is still ours
    assert "statement_timeout" in db.url_settings and "lock_timeout" not in db.url_settings


def test_mysql_gets_connect_read_and_write_timeouts_and_a_shorter_lock_wait():
    db = open_database("mysql://wajira@db.example/wajira", timeout_seconds=3)
    params = db.connect_params
    assert (params["connect_timeout"], params["read_timeout"], params["write_timeout"]) == (3, 3, 3)
    assert "innodb_lock_wait_timeout = 3," in params["init_command"]
    long = open_database("mysql://wajira@db.example/wajira", timeout_seconds=60)
    assert f"innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}," in long.connect_params["init_command"]


def test_mysql_settings_in_the_url_win_and_may_be_fractions():
    db = open_database(
        "mysql://wajira@db.example/wajira?read_timeout=30&connect_timeout=1.5", timeout_seconds=3
    )
    assert (db.connect_params["read_timeout"], db.connect_params["connect_timeout"]) == (30.0, 1.5)
    assert db.connect_params["write_timeout"] == 3
    with pytest.raises(ValueError, match="read_timeout"):
        open_database("mysql://wajira@db.example/wajira?read_timeout=0")


@pytest.mark.parametrize(("seconds", "busy_ms"), [(2, 2000), (0.5, 500), (60, LOCK_WAIT_SECONDS * 1000)])
def test_sqlite_waits_for_a_writer_no_longer_than_the_bound(tmp_path, seconds, busy_ms):
    db = open_database(f"sqlite:///{tmp_path}/w.db", timeout_seconds=seconds)
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == busy_ms
    assert round_trip_seconds(db) == seconds
    db.close()


@pytest.mark.parametrize("seconds", [0, -1])
def test_the_bound_must_be_positive(seconds):
    with pytest.raises(ValueError, match="timeout_seconds"):
        open_database("sqlite:///:memory:", timeout_seconds=seconds)


# -- [storage] timeout_seconds in config.toml ------------------------------------------------------


def test_config_default_and_a_value():
    from bot.config import parse_config
    from tests.unit.test_config import minimal, with_value

    assert parse_config(minimal(), {}).storage.timeout_seconds == 5.0
    assert (
        parse_config(with_value(minimal(), "storage.timeout_seconds", 2), {}).storage.timeout_seconds == 2.0
    )


@pytest.mark.parametrize("value", [0, 0.4, -1, 3601, "5", float("nan")])
def test_config_refuses_a_bound_out_of_range_naming_the_key(value):
    from tests.unit.test_config import error_of, minimal, with_value

    assert error_of(with_value(minimal(), "storage.timeout_seconds", value)).key == "storage.timeout_seconds"


def test_printed_settings_show_the_bound_and_mask_the_password():
    from bot.config import parse_config
    from tests.unit.test_config import minimal, with_value

    data = with_value(minimal(), "storage.url", "postgresql://wajira:hunter2@db.example/wajira")
    printed = parse_config(data, {}).redacted()["storage"]
    assert printed == {"url": "postgresql://wajira:***@db.example/wajira", "timeout_seconds": 5.0}
