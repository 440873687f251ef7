"""`[services.jira]` and `[services.openai]`: a service's own Jira and AI accounts in config.toml.

Every refusal names its dotted key; secrets may come from `WAJIRA_SERVICE_<ID>_…` variables or
systemd credentials, and are refused as placeholders like the global ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import ConfigError, parse_config
from bot.config.model import ServiceJiraSettings, service_env_name
from tests.unit.test_config import DELETE, minimal, with_value

# Values that are not token-shaped: these tests only need them to be told apart.
JIRA_B = {"url": "https://b.example", "email": "bot-b@example.com", "api_token": "file-jira-b"}


def two_services(b_jira: dict[str, Any] | None = None, **b: Any) -> dict[str, Any]:
    data = minimal()
    data["services"] = [
        {"id": "support", "project_key": "SUP", "default": True},
        {"id": "sales-team", "project_key": "SAL", "phone_number_ids": ["222"], **b},
    ]
    if b_jira is not None:
        data["services"][1]["jira"] = dict(b_jira)
    return data


def error_of(data: dict[str, Any], env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env or {})
    return info.value


def test_a_service_without_tables_uses_the_global_accounts() -> None:
    s = parse_config(two_services(), {})
    assert [svc.jira for svc in s.services] == [None, None]
    assert [svc.openai for svc in s.services] == [None, None]


def test_a_service_table_is_read_whole() -> None:
    s = parse_config(
        two_services(JIRA_B, openai={"api_key": "file-openai-b", "base_url": "https://ai.example/v1/"}), {}
    )
    b = s.services[1]
    assert b.jira == ServiceJiraSettings(
        url="https://b.example", email="bot-b@example.com", api_token="file-jira-b"
    )
    assert b.jira.cloud
    assert b.openai is not None and b.openai.api_key == "file-openai-b"
    assert b.openai.base_url == "https://ai.example/v1"  # one form: no trailing slash
    assert s.services[0].jira is None


def test_a_server_token_account() -> None:
    s = parse_config(two_services({"url": "https://jira.b.example", "token": "file-pat-b"}), {})
    jira = s.services[1].jira
    assert jira is not None and jira.token == "file-pat-b" and not jira.cloud


def test_openai_base_url_left_out_means_the_global_one() -> None:
    s = parse_config(two_services(openai={"api_key": "file-openai-b"}), {})
    assert s.services[1].openai is not None and s.services[1].openai.base_url == ""


@pytest.mark.parametrize(
    ("service_id", "field", "variable"),
    [
        ("sales-team", "jira_api_token", "WAJIRA_SERVICE_SALES_TEAM_JIRA_API_TOKEN"),
        ("support", "jira_token", "WAJIRA_SERVICE_SUPPORT_JIRA_TOKEN"),
        ("eu_2", "openai_api_key", "WAJIRA_SERVICE_EU_2_OPENAI_API_KEY"),
    ],
)
def test_env_names(service_id: str, field: str, variable: str) -> None:
    assert service_env_name(service_id, field) == variable


def test_secrets_come_from_the_environment_and_win_over_the_file() -> None:
    env = {
        "WAJIRA_SERVICE_SALES_TEAM_JIRA_API_TOKEN": "env-jira-b",
        "WAJIRA_SERVICE_SALES_TEAM_OPENAI_API_KEY": "env-openai-b",
    }
    data = two_services(JIRA_B, openai={"api_key": ""})
    s = parse_config(data, env)
    assert s.services[1].jira is not None and s.services[1].jira.api_token == "env-jira-b"
    assert s.services[1].openai is not None and s.services[1].openai.api_key == "env-openai-b"


def test_a_secret_comes_from_a_systemd_credential(tmp_path) -> None:
    (tmp_path / "WAJIRA_SERVICE_SALES_TEAM_JIRA_TOKEN").write_text("cred-pat-b\n")
    data = two_services({"url": "https://jira.b.example"})
    s = parse_config(data, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert s.services[1].jira is not None and s.services[1].jira.token == "cred-pat-b"


def test_the_global_variables_do_not_fill_a_service_table() -> None:
    # $JIRA_API_TOKEN is [jira]'s: a service's own account never borrows it by accident.
    error = error_of(
        two_services({"url": "https://b.example", "email": "bot-b@example.com"}), {"JIRA_API_TOKEN": "g"}
    )
    assert error.key == "services[1].jira.api_token"
    assert "WAJIRA_SERVICE_SALES_TEAM_JIRA_API_TOKEN" in error.reason


@pytest.mark.parametrize(
    ("jira", "key"),
    [
        ({"email": "b@example.com", "api_token": "t"}, "services[1].jira.url"),
        ({"url": "ftp://b.example", "email": "b@example.com", "api_token": "t"}, "services[1].jira.url"),
        ({"url": "http://b.example", "email": "b@example.com", "api_token": "t"}, "services[1].jira.url"),
        ({"url": "https://b.example", "api_token": "t"}, "services[1].jira.email"),
        (
            {"url": "https://b.example", "email": "b@example.com", "api_token": "t", "token": "p"},
            "services[1].jira.token",
        ),
        ({"url": "https://b.example", "email": "b@example.com", "token": "p"}, "services[1].jira.email"),
        ({"url": "https://b.example"}, "services[1].jira.api_token"),
        ({"url": "https://b.example", "user": "x", "token": "p"}, "services[1].jira.user"),
    ],
)
def test_a_bad_jira_table_names_its_key(jira: dict[str, Any], key: str) -> None:
    assert error_of(two_services(jira)).key == key


@pytest.mark.parametrize("value", ["change-me", "CHANGEME", "xxxxxxxxxxxx", "<token>", "your-token"])
@pytest.mark.parametrize(
    ("table", "name", "variable"),
    [
        ("jira", "api_token", "WAJIRA_SERVICE_SALES_TEAM_JIRA_API_TOKEN"),
        ("jira", "token", "WAJIRA_SERVICE_SALES_TEAM_JIRA_TOKEN"),
        ("openai", "api_key", "WAJIRA_SERVICE_SALES_TEAM_OPENAI_API_KEY"),
    ],
)
def test_placeholders_are_refused_from_the_file_and_the_environment(
    table: str, name: str, variable: str, value: str
) -> None:
    base = {"jira": {"url": "https://b.example"}, "openai": {}}[table]
    if name == "api_token":
        base = {**base, "email": "b@example.com"}
    data = two_services(**{table: {**base, name: value}})
    from_file = error_of(data)
    assert from_file.key == f"services[1].{table}.{name}"
    assert "placeholder" in from_file.reason
    from_env = error_of(with_value(data, f"services[1].{table}.{name}", DELETE), {variable: value})
    assert from_env.key == f"services[1].{table}.{name}"
    assert f"${variable}" in from_env.reason


def test_an_openai_table_needs_its_key() -> None:
    error = error_of(two_services(openai={"base_url": "https://ai.example/v1"}))
    assert error.key == "services[1].openai.api_key"
    assert "WAJIRA_SERVICE_SALES_TEAM_OPENAI_API_KEY" in error.reason


def test_an_openai_base_url_must_be_a_url() -> None:
    error = error_of(two_services(openai={"api_key": "k", "base_url": "not a url"}))
    assert error.key == "services[1].openai.base_url"


def test_ids_whose_variables_collide_are_refused() -> None:
    data = two_services()
    data["services"][0]["id"] = "sales_team"
    error = error_of(data)
    assert error.key == "services[1].id"
    assert "WAJIRA_SERVICE_SALES_TEAM_" in error.reason and "sales_team" in error.reason


def test_one_project_on_two_accounts_is_refused() -> None:
    data = two_services(JIRA_B, project_key="SUP")
    error = error_of(data)
    assert error.key == "services[1].jira"
    assert "SUP" in error.reason and "services[0]" in error.reason


def test_one_project_on_the_default_account_after_an_own_one_is_refused() -> None:
    data = two_services(project_key="SUP")
    data["services"][0]["jira"] = dict(JIRA_B)
    error = error_of(data)
    assert error.key == "services[1].project_key"


def test_one_project_on_one_shared_own_account_is_fine() -> None:
    data = two_services(JIRA_B, project_key="SUP")
    data["services"][0]["jira"] = dict(JIRA_B)
    s = parse_config(data, {})
    assert s.services[0].jira == s.services[1].jira


def test_secrets_are_scrubbed_and_redacted() -> None:
    s = parse_config(two_services(JIRA_B, openai={"api_key": "file-openai-b"}), {})
    assert {"file-jira-b", "file-openai-b"} <= set(s.secrets())
    shown = s.redacted()["services"][1]
    assert shown["jira"]["api_token"] == "***" and shown["openai"]["api_key"] == "***"
    assert shown["jira"]["url"] == "https://b.example"
