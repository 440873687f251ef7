"""[server]: the request deadline and the admin listener's keys."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, parse_config


def _config(**server) -> dict:
    return {
        "server": server,
        "whatsapp": {
            "verify_token": "verify-token-for-tests",
            "app_secret": "app-secret-for-unit-tests",
            "access_token": "graph-token-for-tests",
            "phone_number_id": "106540352242922",
        },
        "jira": {
            "url": "https://example.atlassian.net",
            "email": "bot@example.com",
            "api_token": "jira-token-for-tests",
        },
        "services": [
            {"id": "support", "project_key": "WA", "default": True, "assistant": {"enabled": False}}
        ],
    }


def test_defaults_put_the_admin_listener_on_loopback():
    server = parse_config(_config(), env={}).server
    assert (server.request_timeout_seconds, server.admin_host, server.admin_port) == (10.0, "127.0.0.1", 9464)


def test_admin_port_zero_turns_it_off_and_may_equal_nothing():
    assert parse_config(_config(admin_port=0, port=0), env={}).server.admin_port == 0


@pytest.mark.parametrize(
    "server, key",
    [
        ({"port": 9000, "admin_port": 9000}, "server.admin_port"),
        ({"admin_port": 70000}, "server.admin_port"),
        ({"admin_host": ""}, "server.admin_host"),
        ({"request_timeout_seconds": 0}, "server.request_timeout_seconds"),
        ({"request_timeout_seconds": 301}, "server.request_timeout_seconds"),
        ({"request_timeout_seconds": "10"}, "server.request_timeout_seconds"),
    ],
)
def test_bad_server_values_name_their_key(server, key):
    with pytest.raises(ConfigError) as err:
        parse_config(_config(**server), env={})
    assert err.value.key == key
