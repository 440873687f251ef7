"""bot.config: parsing, defaults, overrides, and the repo's config.toml as documentation."""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from bot.config import (
    DEFAULT_SYSTEM_PROMPT,
    ConfigError,
    Settings,
    load_config,
    parse_config,
    resolve_config_path,
)

REPO_CONFIG = Path(__file__).parents[2] / "config.toml"
DELETE = object()


def minimal() -> dict[str, Any]:
    """The smallest valid config: required keys only."""
    return {
        "whatsapp": {
            "verify_token": "file-verify",
            "app_secret": "file-app-secret-0123",
            "access_token": "file-access",
            "phone_number_id": "111",
        },
        "jira": {
            "url": "https://jira.example",
            "email": "bot@example.com",
            "api_token": "file-jira",
        },
        "openai": {"api_key": "file-openai"},
        "services": [{"id": "support", "project_key": "SUP"}],
    }


def with_value(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of `data` with `dotted` ("services[0].labels") set, or removed for DELETE."""
    data = copy.deepcopy(data)
    steps: list[str | int] = []
    for part in dotted.split("."):
        name, *indices = re.split(r"\[(\d+)\]", part)
        steps.append(name)
        steps += [int(i) for i in indices if i]
    node: Any = data
    for step in steps[:-1]:
        node = node.setdefault(step, {}) if isinstance(step, str) else node[step]
    if value is DELETE:
        del node[steps[-1]]
    else:
        node[steps[-1]] = value
    return data


def parse(data: dict[str, Any], env: dict[str, str] | None = None) -> Settings:
    return parse_config(data, env or {})


def error_of(data: dict[str, Any], env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(data, env)
    error = info.value
    assert str(error) == f"{error.key}: {error.reason}"
    return error


# -- defaults -------------------------------------------------------------------------------


def test_minimal_config_takes_documented_defaults() -> None:
    s = parse(minimal())

    server = ("127.0.0.1", 8080, "/api/whatsapp/webhook", 3145728, "", 10.0, "127.0.0.1", 9464, 1)
    assert dataclasses.astuple(s.server) == server
    assert (s.storage.url, s.storage.retention_days) == ("sqlite:///var/lib/wajira/wajira.db", 30)
    assert (s.whatsapp.graph_url, s.whatsapp.api_version) == ("https://graph.facebook.com", "v23.0")
    assert (s.jira.timeout_seconds, s.jira.token, s.jira.cloud) == (30.0, "", True)
    assert (s.openai.base_url, s.openai.model, s.openai.timeout_seconds) == (
        "https://api.openai.com/v1",
        "gpt-4o-mini",
        60.0,
    )
    assert (s.poller.interval_seconds, s.poller.overlap_seconds) == (30, 120)
    assert dataclasses.astuple(s.inbox) == (4, 5, 10, 2.0, 300.0, 60)
    assert s.media.max_bytes == 16777216
    assert (s.flows.endpoint_path, s.flows.private_key_file, s.flows.private_key_passphrase) == (
        "/api/whatsapp/flows",
        "",
        "",
    )
    assert (s.logging.level, s.logging.format) == ("info", "auto")

    (svc,) = s.services
    assert (svc.id, svc.project_key, svc.issue_type) == ("support", "SUP", "Task")
    assert (svc.labels, svc.default, svc.phone_number_ids) == (("whatsapp",), True, ())
    assert (svc.on_closed, svc.reopen_transition) == ("new", "Reopen")
    assert svc.assistant.enabled is True
    assert svc.assistant.system_prompt == DEFAULT_SYSTEM_PROMPT
    assert svc.assistant.model == "gpt-4o-mini"  # "" falls back to [openai] model


def test_settings_are_frozen() -> None:
    s = parse(minimal())
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.server.port = 1  # type: ignore[misc]


def test_service_model_overrides_openai_model() -> None:
    s = parse(with_value(minimal(), "services[0].assistant.model", "gpt-4.1"))
    assert s.services[0].assistant.model == "gpt-4.1"


def test_urls_lose_trailing_slash_and_ints_become_float_timeouts() -> None:
    data = with_value(minimal(), "jira.url", "https://jira.example/")
    data = with_value(data, "whatsapp.graph_url", "http://127.0.0.1:9000/")
    s = parse(with_value(data, "jira.timeout_seconds", 5))
    assert (s.jira.url, s.whatsapp.graph_url, s.jira.timeout_seconds) == (
        "https://jira.example",
        "http://127.0.0.1:9000",
        5.0,
    )


def test_port_zero_and_upper_case_log_level_are_accepted() -> None:
    data = with_value(minimal(), "server.port", 0)
    s = parse(with_value(data, "logging.level", "DEBUG"))
    assert (s.server.port, s.logging.level) == (0, "debug")


# -- errors: every one names the dotted key ---------------------------------------------------

ERROR_CASES = [
    # unknown keys at every level
    ("serverr", {}, "serverr"),
    ("server.prot", 1, "server.prot"),
    ("whatsapp.app_secert", "x", "whatsapp.app_secert"),
    ("services[0].labl", [], "services[0].labl"),
    ("services[0].assistant.temperature", 0.2, "services[0].assistant.temperature"),
    # sections of the wrong shape
    ("server", 5, "server"),
    ("services", [], "services"),
    ("services", {"id": "support", "project_key": "SUP"}, "services"),
    ("services[0].assistant", "on", "services[0].assistant"),
    # server
    ("server.host", "", "server.host"),
    ("server.port", True, "server.port"),  # a bool is not an int
    ("server.port", "8080", "server.port"),
    ("server.port", 65536, "server.port"),
    ("server.port", -1, "server.port"),
    ("server.webhook_path", "api/whatsapp", "server.webhook_path"),
    ("server.webhook_path", "/healthz", "server.webhook_path"),
    ("server.max_body_bytes", 1023, "server.max_body_bytes"),
    ("server.instance_id", 7, "server.instance_id"),
    # storage
    ("storage.url", "redis://localhost/0", "storage.url"),
    ("storage.url", "sqlite://", "storage.url"),
    ("storage.url", "", "storage.url"),
    # whatsapp
    ("whatsapp.verify_token", DELETE, "whatsapp.verify_token"),
    ("whatsapp.app_secret", "", "whatsapp.app_secret"),
    ("whatsapp.app_secret", DELETE, "whatsapp.app_secret"),
    ("whatsapp.access_token", DELETE, "whatsapp.access_token"),
    ("whatsapp.phone_number_id", 123456, "whatsapp.phone_number_id"),
    ("whatsapp.graph_url", "ftp://graph.example", "whatsapp.graph_url"),
    ("whatsapp.api_version", "23.0", "whatsapp.api_version"),
    # jira
    ("jira.url", DELETE, "jira.url"),
    ("jira.url", "jira.example", "jira.url"),
    ("jira.api_token", DELETE, "jira.api_token"),
    ("jira.token", "pat", "jira.token"),  # both styles at once
    ("jira.email", DELETE, "jira.email"),  # api_token without email
    ("jira.timeout_seconds", 0, "jira.timeout_seconds"),
    ("jira.timeout_seconds", True, "jira.timeout_seconds"),
    # openai
    ("openai.base_url", "api.openai.com", "openai.base_url"),
    ("openai.model", "", "openai.model"),
    ("openai.timeout_seconds", float("nan"), "openai.timeout_seconds"),
    ("openai.api_key", DELETE, "openai.api_key"),  # the assistant is enabled by default
    # poller, inbox
    ("poller.interval_seconds", 0, "poller.interval_seconds"),
    ("poller.interval_seconds", 1.5, "poller.interval_seconds"),
    ("poller.overlap_seconds", -1, "poller.overlap_seconds"),
    ("inbox.workers", 0, "inbox.workers"),
    ("inbox.workers", 65, "inbox.workers"),
    ("inbox.interval_seconds", 0, "inbox.interval_seconds"),
    ("inbox.max_attempts", 0, "inbox.max_attempts"),
    ("inbox.retry_base_seconds", "2s", "inbox.retry_base_seconds"),
    ("inbox.retry_max_seconds", 1.0, "inbox.retry_max_seconds"),  # below retry_base_seconds
    ("inbox.lease_seconds", 4, "inbox.lease_seconds"),
    # services
    ("services[0].id", DELETE, "services[0].id"),
    ("services[0].id", "Support", "services[0].id"),
    ("services[0].project_key", DELETE, "services[0].project_key"),
    ("services[0].project_key", "sup", "services[0].project_key"),
    ("services[0].project_key", "S", "services[0].project_key"),
    ("services[0].issue_type", "", "services[0].issue_type"),
    ("services[0].labels", ["two words"], "services[0].labels"),
    ("services[0].labels", ["ok", ""], "services[0].labels"),
    ("services[0].labels", "whatsapp", "services[0].labels"),
    ("services[0].labels", [1], "services[0].labels"),
    ("services[0].default", "yes", "services[0].default"),
    ("services[0].phone_number_ids", [111], "services[0].phone_number_ids"),
    ("services[0].on_closed", "close", "services[0].on_closed"),
    ("services[0].reopen_transition", "", "services[0].reopen_transition"),
    ("services[0].assistant.enabled", 1, "services[0].assistant.enabled"),
    ("services[0].assistant.system_prompt", "", "services[0].assistant.system_prompt"),
    # media, flows, logging
    ("media.max_bytes", 0, "media.max_bytes"),
    ("flows.endpoint_path", "/api/whatsapp/webhook", "flows.endpoint_path"),
    ("flows.endpoint_path", "flows", "flows.endpoint_path"),
    ("flows.private_key_file", False, "flows.private_key_file"),
    ("logging.level", "verbose", "logging.level"),
    ("logging.format", "xml", "logging.format"),
]


@pytest.mark.parametrize(
    ("dotted", "value", "key"), ERROR_CASES, ids=[f"{c[0]}={c[1]!r}" for c in ERROR_CASES]
)
def test_error_names_the_dotted_key(dotted: str, value: Any, key: str) -> None:
    assert error_of(with_value(minimal(), dotted, value)).key == key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "expected an integer, got boolean"),
        ("8080", "expected an integer, got string"),
        (8.5, "expected an integer, got float"),
    ],
)
def test_type_errors_name_the_expected_type(value: Any, expected: str) -> None:
    assert expected in error_of(with_value(minimal(), "server.port", value)).reason


def test_unknown_key_reason() -> None:
    assert error_of(with_value(minimal(), "server.prot", 1)).reason == "unknown key"


def test_secret_values_never_appear_in_errors() -> None:
    error = error_of(with_value(minimal(), "storage.url", "redis://user:hunter2@host/0"))
    assert "hunter2" not in str(error)


def two_services(**second: Any) -> dict[str, Any]:
    data = minimal()
    data["services"] = [
        {"id": "support", "project_key": "SUP", "default": True, "phone_number_ids": ["111"]},
        {"id": "sales", "project_key": "SAL", "phone_number_ids": ["222"], **second},
    ]
    return data


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (two_services(default=True), "services[1].default"),
        (with_value(two_services(), "services[0].default", False), "services"),
        (two_services(id="support"), "services[1].id"),
        (two_services(phone_number_ids=["333", "111"]), "services[1].phone_number_ids"),
    ],
    ids=["two-defaults", "no-default", "duplicate-id", "number-in-two-services"],
)
def test_service_set_errors(data: dict[str, Any], key: str) -> None:
    assert error_of(data).key == key


def test_routing_by_phone_number_id() -> None:
    s = parse(two_services())
    assert s.service_for("222").id == "sales"
    assert s.service_for("111").id == "support"
    assert s.service_for("999").id == "support"  # unlisted: the default
    assert s.default_service.id == "support"
    assert s.service("sales").project_key == "SAL"
    with pytest.raises(KeyError):
        s.service("gone")


def test_lone_service_is_default_even_when_it_says_otherwise() -> None:
    s = parse(with_value(minimal(), "services[0].default", False))
    assert s.services[0].default is True
    assert s.service_for("anything").id == "support"


def test_openai_key_not_needed_without_an_enabled_assistant() -> None:
    data = with_value(minimal(), "openai", DELETE)
    s = parse(with_value(data, "services[0].assistant.enabled", False))
    assert s.openai.api_key == ""


# -- jira auth styles -------------------------------------------------------------------------


def test_jira_server_token_style() -> None:
    s = parse(with_value(minimal(), "jira", {"url": "https://jira.corp", "token": "pat"}))
    assert (s.jira.cloud, s.jira.token, s.jira.api_token) == (False, "pat", "")


@pytest.mark.parametrize(
    ("jira", "key"),
    [
        ({"url": "https://j"}, "jira.api_token"),
        ({"url": "https://j", "email": "a@b"}, "jira.api_token"),
        ({"url": "https://j", "token": "pat", "email": "a@b"}, "jira.email"),
        ({"url": "https://j", "token": "pat", "api_token": "t", "email": "a@b"}, "jira.token"),
    ],
)
def test_jira_auth_must_be_exactly_one_style(jira: dict[str, str], key: str) -> None:
    assert error_of(with_value(minimal(), "jira", jira)).key == key


# -- environment and systemd credentials ------------------------------------------------------

OVERRIDES = [
    ("WHATSAPP_VERIFY_TOKEN", "whatsapp", "verify_token"),
    ("WHATSAPP_APP_SECRET", "whatsapp", "app_secret"),
    ("WHATSAPP_ACCESS_TOKEN", "whatsapp", "access_token"),
    ("WHATSAPP_PHONE_NUMBER_ID", "whatsapp", "phone_number_id"),
    ("JIRA_API_TOKEN", "jira", "api_token"),
    ("OPENAI_API_KEY", "openai", "api_key"),
]


@pytest.mark.parametrize(("variable", "section", "name"), OVERRIDES)
def test_environment_wins_over_file(variable: str, section: str, name: str) -> None:
    s = parse(minimal(), {variable: "from-env-0123456789"})  # long enough for an app secret
    assert getattr(getattr(s, section), name) == "from-env-0123456789"


@pytest.mark.parametrize(("variable", "section", "name"), OVERRIDES)
def test_empty_environment_value_counts_as_unset(variable: str, section: str, name: str) -> None:
    s = parse(minimal(), {variable: ""})
    assert getattr(getattr(s, section), name) == minimal()[section][name]


def test_jira_token_from_environment() -> None:
    data = with_value(minimal(), "jira", {"url": "https://jira.corp"})
    assert parse(data, {"JIRA_TOKEN": "pat-env"}).jira.token == "pat-env"


def test_secrets_may_all_come_from_the_environment() -> None:
    data = {"jira": {"url": "https://j.example", "email": "a@b"}, "services": minimal()["services"]}
    env = {name: f"env-{name}" for name, _, _ in OVERRIDES}
    s = parse(data, env)
    assert s.whatsapp.app_secret == "env-WHATSAPP_APP_SECRET"
    assert s.jira.api_token == "env-JIRA_API_TOKEN"


def test_missing_secret_mentions_its_variable() -> None:
    reason = error_of(with_value(minimal(), "whatsapp.app_secret", DELETE)).reason
    assert "$WHATSAPP_APP_SECRET" in reason and "config.toml" in reason


def test_credential_file_wins_over_file_and_loses_to_environment(tmp_path: Path) -> None:
    (tmp_path / "WHATSAPP_APP_SECRET").write_text("cred-app-secret-0123\n")
    (tmp_path / "JIRA_API_TOKEN").write_text("cred-jira\r\n")
    (tmp_path / "OPENAI_API_KEY").write_text("cred-openai\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "OPENAI_API_KEY": "env-openai"}

    s = parse(minimal(), env)

    assert s.whatsapp.app_secret == "cred-app-secret-0123"  # trailing newline stripped
    assert s.jira.api_token == "cred-jira"
    assert s.openai.api_key == "env-openai"
    assert s.whatsapp.verify_token == "file-verify"  # no credential file: config.toml


def test_credential_supplies_a_secret_missing_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "WHATSAPP_ACCESS_TOKEN").write_text("cred-access")
    data = with_value(minimal(), "whatsapp.access_token", DELETE)
    s = parse(data, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert s.whatsapp.access_token == "cred-access"


def test_empty_credential_file_counts_as_unset(tmp_path: Path) -> None:
    (tmp_path / "WHATSAPP_APP_SECRET").write_text("\n")
    s = parse(minimal(), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert s.whatsapp.app_secret == "file-app-secret-0123"


def test_unreadable_credential_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "WHATSAPP_APP_SECRET").mkdir()  # reading a directory fails on every platform
    error = error_of(minimal(), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert error.key == "whatsapp.app_secret"


# -- secrets() and redacted() -----------------------------------------------------------------


def test_secrets_lists_every_configured_secret() -> None:
    data = with_value(minimal(), "flows.private_key_passphrase", "pem-pass")
    data = with_value(data, "storage.url", "postgresql://wajira:db%40pass@db.example/wajira")
    secrets = parse(data).secrets()
    from_file = {"file-verify", "file-app-secret-0123", "file-access", "file-jira", "file-openai"}
    # The database password both as written in the URL and decoded.
    assert set(secrets) == from_file | {"pem-pass", "db%40pass", "db@pass"}
    assert "111" not in secrets  # a phone number id is not a secret


def test_redacted_masks_secrets_and_database_password() -> None:
    data = with_value(minimal(), "storage.url", "postgresql://wajira:db-pass@db.example/wajira")
    s = parse(data)
    shown = s.redacted()
    text = repr(shown)
    for secret in s.secrets():
        assert secret not in text
    assert shown["whatsapp"]["app_secret"] == "***"
    assert shown["jira"]["token"] == ""  # unset stays visibly unset
    assert shown["storage"]["url"] == "postgresql://wajira:***@db.example/wajira"
    assert shown["services"][0]["labels"] == ["whatsapp"]


# -- files and paths --------------------------------------------------------------------------


def test_resolve_config_path_order() -> None:
    assert resolve_config_path("/etc/a.toml", {"WAJIRA_CONFIG": "/b.toml"}) == Path("/etc/a.toml")
    assert resolve_config_path(None, {"WAJIRA_CONFIG": "/b.toml"}) == Path("/b.toml")
    assert resolve_config_path(None, {"WAJIRA_CONFIG": ""}) == Path("config.toml")
    assert resolve_config_path(None, {}) == Path("config.toml")


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", {})
    assert info.value.key == "config"
    assert info.value.reason.startswith("file not found: ")


def test_load_syntax_error_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[server]\nport = 80\nhost = "unterminated\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.key == "config"
    assert "line 3" in info.value.reason and "column" in info.value.reason


def test_load_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    assert info.value.key == "config"


def test_load_reports_the_file_in_missing_value_messages(tmp_path: Path) -> None:
    path = tmp_path / "wajira.toml"
    path.write_text(
        '[jira]\nurl = "https://jira.example"\ntoken = "pat"\n[[services]]\nid = "a"\nproject_key = "AB"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.key == "whatsapp.verify_token"
    assert str(path) in info.value.reason


def test_explicit_env_replaces_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_APP_SECRET", "process-env-app-secret")
    assert parse(minimal(), {}).whatsapp.app_secret == "file-app-secret-0123"
    assert (
        parse_config(minimal()).whatsapp.app_secret == "process-env-app-secret"
    )  # default env is os.environ
    assert os.environ["WHATSAPP_APP_SECRET"] == "process-env-app-secret"


# -- the repo's config.toml is the manual -----------------------------------------------------


def schema_fields(schema: type = Settings, prefix: str = "") -> set[tuple[str, dataclasses.Field[Any]]]:
    """(section, field) for every key the parser accepts; a nested dataclass is a section."""
    hints = typing.get_type_hints(schema)
    found: set[tuple[str, dataclasses.Field[Any]]] = set()
    for f in dataclasses.fields(schema):
        hint = hints[f.name]
        if typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            hint = typing.get_args(hint)[0]  # [[services]]
        elif isinstance(hint, types.UnionType):  # an optional table: [services.hours]
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        name = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(hint):
            found |= schema_fields(hint, name)
        else:
            found.add((prefix, f))
    return found


def schema_keys() -> set[tuple[str, str]]:
    """(section, key) for every key the parser accepts."""
    return {(section, f.name) for section, f in schema_fields()}


def documented_keys(text: str) -> set[tuple[str, str]]:
    """(section, key) for every key line, active or commented out (`# token = ...`), under its
    table header, active or commented out (`#   [services.hours]`)."""
    keys: set[tuple[str, str]] = set()
    section = ""
    for line in text.splitlines():
        if header := re.fullmatch(r"#?\s*\[{1,2}([a-z_.]+)\]{1,2}", line.strip()):
            section = header.group(1)
        elif key := re.match(r"#?\s*([a-z_]+)\s*=\s", line):
            keys.add((section, key.group(1)))
    return keys


# The repo's config.toml ships its secrets empty: the operator supplies them, here from the environment.
REPO_CONFIG_ENV = {
    "WHATSAPP_VERIFY_TOKEN": "env-verify-token",
    "WHATSAPP_APP_SECRET": "env-app-secret-0123456789",
    "WHATSAPP_ACCESS_TOKEN": "env-access-token",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "JIRA_API_TOKEN": "env-jira-api-token",
    "OPENAI_API_KEY": "env-openai-key",
}


def test_repo_config_toml_parses() -> None:
    s = load_config(REPO_CONFIG, REPO_CONFIG_ENV)
    assert s.services[0].assistant.enabled
    # Every secret came from the environment: the file itself holds none.
    assert set(s.secrets()) == set(REPO_CONFIG_ENV.values()) - {"106540352242922"}


def test_repo_config_toml_as_shipped_is_refused_at_its_first_missing_secret() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(REPO_CONFIG, {})
    assert info.value.key == "whatsapp.verify_token"
    assert info.value.reason.startswith("missing required value")


def test_repo_config_toml_ships_every_secret_empty() -> None:
    text = REPO_CONFIG.read_text()
    for section, name in sorted(secret_keys()):
        # Active or commented out (`# token = ""`), a secret line in the manual is always empty.
        lines = re.findall(rf"^#?\s*{name}\s*=\s*(.*)$", section_text(text, section), re.MULTILINE)
        assert lines, f"{section}.{name} is not in config.toml"
        assert all(value.strip() == '""' for value in lines), f"{section}.{name} ships a value"


def test_repo_config_toml_documents_every_key() -> None:
    documented = documented_keys(REPO_CONFIG.read_text())
    missing = schema_keys() - documented
    assert not missing, f"keys the parser knows but config.toml does not mention: {sorted(missing)}"
    unknown = documented - schema_keys()
    assert not unknown, f"keys config.toml mentions but the parser rejects: {sorted(unknown)}"


def secret_keys() -> set[tuple[str, str]]:
    """(section, key) of every field marked secret in the model."""
    return {(section, f.name) for section, f in schema_fields() if f.metadata.get("secret")}


def section_text(text: str, section: str) -> str:
    """The lines of config.toml under the table header `section` (`[x]` or `[[x]]`), up to the next header."""
    out: list[str] = []
    current = ""
    for line in text.splitlines():
        if header := re.fullmatch(r"#?\s*\[{1,2}([a-z_.]+)\]{1,2}", line.strip()):
            current = header.group(1)
        elif current == section:
            out.append(line)
    return "\n".join(out)


def test_repo_config_toml_shows_the_defaults() -> None:
    """Where the example sets an optional key, it shows the default it documents."""
    s = load_config(REPO_CONFIG, REPO_CONFIG_ENV)
    defaults = parse(minimal())
    chosen = {  # values an operator must choose; the example shows a placeholder
        "whatsapp": {"verify_token", "app_secret", "access_token", "phone_number_id"},
        "jira": {"url", "email", "api_token"},
        "openai": {"api_key"},
        "flows": {"screens"},  # [[flows.screens]] is an example, like [[services.flows]]
    }
    for f in dataclasses.fields(Settings):
        if f.name == "services":
            continue
        mine, default = getattr(s, f.name), getattr(defaults, f.name)
        for field in dataclasses.fields(mine):
            if field.name not in chosen.get(f.name, ()):
                key = f"{f.name}.{field.name}"
                assert getattr(mine, field.name) == getattr(default, field.name), key
    svc, default_svc = s.services[0], defaults.services[0]
    assert svc.assistant == default_svc.assistant
    for name in ("issue_type", "labels", "phone_number_ids", "on_closed", "reopen_transition"):
        assert getattr(svc, name) == getattr(default_svc, name), f"services[0].{name}"
