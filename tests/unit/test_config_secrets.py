"""Secrets must be real, tokens must not travel in clear, labels must be ones the poller can search.

The pure rules (`placeholder_reason`, `is_loopback_host`, `jql_value_problem`) with parametrised
cases, then what the config loader does with them: the dotted key, where the value came from,
and never the value itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError
from bot.config.placeholders import placeholder_reason
from bot.config.urls import clear_text_credentials, is_loopback_host
from bot.rules.jql import jql_value_problem, quoted_list
from bot.rules.poll_window import poll_jql
from tests.unit.test_config import DELETE, error_of, minimal, parse, secret_keys, with_value

PLACEHOLDERS = [
    "",
    " ",
    "\t\n",
    "change-me",
    "CHANGE-ME",
    "  Change-Me  ",
    "changeme",
    "ChangeMe",
    "xxx",
    "xxxxxxxxxxxxxxxxxxxxxxxx",
    "XXX-your-token",
    "xxx123456789012345678",
    "<app secret>",
    "<>",
    " <phone id> ",
    "<YOUR_TOKEN_HERE>",
    "your-app-secret",
    "YOUR_ACCESS_TOKEN",
    "Your token goes here",
    "yourappsecret0123456789",
]

REAL = [
    "7f3c9a1be04d2c6f8a5e1b3d9c7e2a40",  # the shape of a Meta app secret
    "a-verify-token-I-invented",
    "please-change-me",  # only the exact words are the example value
    "changeme2",
    "mixxx-token",  # "xxx" counts only at the start
    "token<with>brackets",
    "<starts-but-does-not-end",
    "ends-but-does-not-start>",
    "ouryear-token",
    "you-r-token",
    "106540352242922",
]


# -- the placeholder rule -----------------------------------------------------------------------


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_placeholders_are_refused(value: str) -> None:
    assert placeholder_reason(value) is not None


@pytest.mark.parametrize("value", REAL)
def test_real_looking_values_pass(value: str) -> None:
    assert placeholder_reason(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("CHANGEME", 'is a placeholder ("changeme"), not a real value'),
        ("xxxx", 'looks like a placeholder (starts with "xxx"), not a real value'),
        ("<token>", "looks like a placeholder (written as <...>), not a real value"),
        ("Your-Token", 'looks like a placeholder (starts with "your"), not a real value'),
    ],
)
def test_placeholder_reasons(value: str, reason: str) -> None:
    assert placeholder_reason(value) == reason


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("0123456789abcde", True),  # 15
        ("0123456789abcdef", False),  # 16
        ("  0123456789abcde  ", True),  # surrounding whitespace does not count
        ("0123456789abcdef0123456789abcdef", False),
    ],
)
def test_min_length(value: str, refused: bool) -> None:
    reason = placeholder_reason(value, min_length=16)
    assert (reason == "is shorter than 16 characters") is refused
    assert placeholder_reason(value) is None  # no minimum, no complaint


def test_a_reason_never_repeats_the_value() -> None:
    for value in ["your-real-looking-secret-0123", "xxx-real-looking-secret", "<real-looking-secret>"]:
        reason = placeholder_reason(value, min_length=16)
        assert reason is not None and value.strip("<>") not in reason


# -- the loopback rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("128.0.0.1", False),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("::2", False),
        ("::ffff:10.0.0.1", False),
        ("localhost.example.com", False),
        ("mylocalhost", False),
        ("127.0.0.1.nip.io", False),
        ("jira.example", False),
        ("", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("scheme", "host", "clear"),
    [
        ("https", "jira.example", False),
        ("HTTPS", "jira.example", False),
        ("https", "127.0.0.1", False),
        ("http", "127.0.0.1", False),
        ("http", "localhost", False),
        ("http", "::1", False),
        ("http", "jira.example", True),
        ("http", "10.1.2.3", True),
    ],
)
def test_clear_text_credentials(scheme: str, host: str, clear: bool) -> None:
    assert clear_text_credentials(scheme, host) is clear


# -- the JQL value rule, shared by the poller and the config ------------------------------------

LABEL_CANDIDATES = [
    "whatsapp",
    "vip",
    "flow-order-issue",
    "problem-{problem}",
    "ünïcødé",
    "a:b/c.d",
    'vip"x',
    "vip'x",
    "back\\slash",
    "two words",
    "tab\there",
    "new\nline",
    "nul\x00",
    "del\x7f",
    "",
]


@pytest.mark.parametrize("label", LABEL_CANDIDATES)
def test_config_accepts_a_label_exactly_when_the_jql_builder_does(label: str) -> None:
    try:
        poll_jql(project_keys=["SUP"], labels=[label], since_ms=0)
        jql_ok = True
    except ValueError:
        jql_ok = False
    try:
        parse(with_value(minimal(), "services[0].labels", [label]))
        config_ok = True
    except ConfigError as exc:
        assert exc.key == "services[0].labels"
        config_ok = False
    assert config_ok is jql_ok
    assert (jql_value_problem(label) is None) is jql_ok


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("whatsapp", None),
        ("", "is empty"),
        (None, "is empty"),
        ('vip"x', "holds whitespace, a quote, a backslash or a control character"),
        ("two words", "holds whitespace, a quote, a backslash or a control character"),
    ],
)
def test_jql_value_problem(value: Any, problem: str | None) -> None:
    assert jql_value_problem(value) == problem


def test_quoted_list_dedupes_and_names_the_bad_value() -> None:
    assert quoted_list("label", ["a", "b", "a"]) == '"a", "b"'
    with pytest.raises(ValueError, match=r"invalid label 'vip\"x': holds whitespace"):
        quoted_list("label", ["ok", 'vip"x'])


@pytest.mark.parametrize("key", ["SUP", "AB", "A1_B2"])
def test_every_project_key_the_config_accepts_the_jql_builder_accepts(key: str) -> None:
    parse(with_value(minimal(), "services[0].project_key", key))
    assert jql_value_problem(key) is None


def test_a_label_with_a_quote_is_a_config_error_naming_the_item() -> None:
    error = error_of(with_value(minimal(), "services[0].labels", ["whatsapp", 'vip"x']))
    assert error.key == "services[0].labels"
    assert error.reason == (
        "item 1 'vip\"x' holds whitespace, a quote, a backslash or a control character; "
        "a label must be non-empty, with no whitespace, quote, backslash or control character"
    )


@pytest.mark.parametrize("template", ['vip"{x}', "a\\{b}", "it's-{x}"])
def test_a_flow_label_template_follows_the_same_rule(template: str) -> None:
    flow = {"id": "f", "flow_token_prefix": "f:", "labels": [template]}
    error = error_of(with_value(minimal(), "services[0].flows", [flow]))
    assert error.key == "services[0].flows[0].labels"


# -- secrets in the config ------------------------------------------------------------------------

# Where each secret is set in a valid config, and what makes it in use. A secret added to the
# model must be read with `Table.secret` (or `refuse_placeholder`) and get a line here.
SECRET_CASES: dict[tuple[str, str], dict[str, Any]] = {
    ("whatsapp", "verify_token"): {},
    ("whatsapp", "app_secret"): {},
    ("whatsapp", "access_token"): {},
    ("jira", "api_token"): {},
    ("jira", "token"): {"jira": {"url": "https://jira.example"}},
    ("openai", "api_key"): {},
    ("flows", "private_key_passphrase"): {},
}
ENV = {
    ("whatsapp", "verify_token"): "WHATSAPP_VERIFY_TOKEN",
    ("whatsapp", "app_secret"): "WHATSAPP_APP_SECRET",
    ("whatsapp", "access_token"): "WHATSAPP_ACCESS_TOKEN",
    ("jira", "api_token"): "JIRA_API_TOKEN",
    ("jira", "token"): "JIRA_TOKEN",
    ("openai", "api_key"): "OPENAI_API_KEY",
}


def test_every_secret_field_is_covered_here() -> None:
    # The per-service accounts' secrets live under [[services]], which `with_value` here cannot
    # address: tests/unit/test_service_accounts_config.py covers their refusals.
    per_service = {("services.jira", "api_token"), ("services.jira", "token"), ("services.openai", "api_key")}
    assert secret_keys() - per_service == set(SECRET_CASES), (
        "a secret field was added or removed in bot/config/model.py: read it with Table.secret() "
        "so placeholders are refused, and list it in SECRET_CASES"
    )


def config_with(section: str, name: str, value: str) -> dict[str, Any]:
    data = minimal()
    data.update(SECRET_CASES[(section, name)])
    return with_value(data, f"{section}.{name}", value)


@pytest.mark.parametrize(("section", "name"), sorted(SECRET_CASES))
@pytest.mark.parametrize(
    "value", ["change-me", "CHANGEME", "xxxxxxxxxxxxxxxxxxxx", "<your token>", "your-token-here-0123"]
)
def test_a_placeholder_secret_in_the_file_is_refused(section: str, name: str, value: str) -> None:
    error = error_of(config_with(section, name, value))
    assert error.key == f"{section}.{name}"
    assert "placeholder" in error.reason
    assert error.reason.endswith("(read from config.toml)")
    if value not in ("change-me", "CHANGEME"):  # those are the example words themselves
        assert value not in str(error)


@pytest.mark.parametrize(("section", "name"), sorted(ENV))
def test_a_placeholder_from_the_environment_names_the_variable(section: str, name: str) -> None:
    variable = ENV[(section, name)]
    data = config_with(section, name, "a-real-value-from-the-file-0123")
    error = error_of(data, {variable: "your-token-goes-here"})
    assert error.key == f"{section}.{name}"
    assert error.reason.endswith(f"(read from ${variable})")
    assert "your-token-goes-here" not in str(error)


@pytest.mark.parametrize(("section", "name"), sorted(ENV))
def test_a_placeholder_credential_file_names_the_file(section: str, name: str, tmp_path: Path) -> None:
    variable = ENV[(section, name)]
    (tmp_path / variable).write_text("<paste the token here>\n")
    data = config_with(section, name, "a-real-value-from-the-file-0123")
    error = error_of(data, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert error.key == f"{section}.{name}"
    assert error.reason == (
        f"looks like a placeholder (written as <...>), not a real value "
        f"(read from credential file {tmp_path / variable})"
    )


def test_a_real_environment_value_replaces_a_placeholder_in_the_file() -> None:
    data = with_value(minimal(), "whatsapp.app_secret", "change-me")
    s = parse(data, {"WHATSAPP_APP_SECRET": "0123456789abcdef0123"})
    assert s.whatsapp.app_secret == "0123456789abcdef0123"


@pytest.mark.parametrize("value", [" ", "\t"])
@pytest.mark.parametrize(("section", "name"), [("jira", "api_token"), ("flows", "private_key_passphrase")])
def test_a_blank_optional_secret_is_refused_when_set(section: str, name: str, value: str) -> None:
    error = error_of(config_with(section, name, value))
    assert (error.key, error.reason) == (f"{section}.{name}", "is empty (read from config.toml)")


@pytest.mark.parametrize("name", ["verify_token", "app_secret", "access_token", "phone_number_id"])
def test_an_empty_required_value_is_missing(name: str) -> None:
    for value in ("", "  "):
        error = error_of(with_value(minimal(), f"whatsapp.{name}", value))
        assert error.key == f"whatsapp.{name}"
        assert error.reason.startswith("missing required value (set it in config.toml, $WHATSAPP_")


def test_missing_value_message_names_file_variable_and_credential() -> None:
    error = error_of(with_value(minimal(), "whatsapp.app_secret", DELETE))
    assert error.reason == (
        "missing required value (set it in config.toml, $WHATSAPP_APP_SECRET "
        "or the systemd credential WHATSAPP_APP_SECRET)"
    )


@pytest.mark.parametrize(
    ("env", "origin"),
    [
        ({}, "config.toml"),
        ({"WHATSAPP_APP_SECRET": "fifteen-chars!!"}, "$WHATSAPP_APP_SECRET"),
    ],
)
def test_a_short_app_secret_is_refused(env: dict[str, str], origin: str) -> None:
    data = with_value(minimal(), "whatsapp.app_secret", "fifteen-chars!!")
    error = error_of(data, env)
    assert error.key == "whatsapp.app_secret"
    assert error.reason == f"is shorter than 16 characters (read from {origin})"
    assert "fifteen-chars!!" not in str(error)


def test_sixteen_characters_is_enough_and_other_secrets_may_be_short() -> None:
    data = with_value(minimal(), "whatsapp.app_secret", "sixteen-chars!!!")
    data = with_value(data, "whatsapp.verify_token", "v")
    assert parse(data).whatsapp.app_secret == "sixteen-chars!!!"


@pytest.mark.parametrize("value", ["<phone id>", "your-number-id", "change-me", "XXXXXXXXXXXXXXX"])
def test_a_placeholder_phone_number_id_is_refused(value: str) -> None:
    error = error_of(with_value(minimal(), "whatsapp.phone_number_id", value))
    assert error.key == "whatsapp.phone_number_id"
    assert "placeholder" in error.reason


def test_a_placeholder_phone_number_id_from_the_environment() -> None:
    error = error_of(minimal(), {"WHATSAPP_PHONE_NUMBER_ID": "<phone id>"})
    assert error.reason.endswith("(read from $WHATSAPP_PHONE_NUMBER_ID)")


def test_an_unused_openai_key_is_not_checked() -> None:
    data = with_value(minimal(), "openai.api_key", "change-me")
    data = with_value(data, "services[0].assistant", {"enabled": False})
    assert parse(data).openai.api_key == "change-me"


def test_a_placeholder_openai_key_is_refused_once_an_assistant_is_enabled() -> None:
    data = with_value(minimal(), "openai.api_key", "change-me")
    data["services"] = [
        {"id": "a", "project_key": "AA", "default": True, "assistant": {"enabled": False}},
        {"id": "b", "project_key": "BB"},
    ]
    assert error_of(data).key == "openai.api_key"


def test_a_placeholder_passphrase_is_refused_before_any_key_file_is_read() -> None:
    data = with_value(
        minimal(), "flows", {"private_key_file": "/nonexistent.pem", "private_key_passphrase": "changeme"}
    )
    error = error_of(data)
    assert error.key == "flows.private_key_passphrase"
    assert "placeholder" in error.reason


# -- URLs that carry a token ----------------------------------------------------------------------

TOKEN_URLS = ["whatsapp.graph_url", "jira.url", "openai.base_url"]
CLEAR = "must be https:// unless the host is loopback: the token would travel in clear"


@pytest.mark.parametrize("key", TOKEN_URLS)
@pytest.mark.parametrize(
    "url",
    ["http://jira.example", "http://10.0.0.5:8080/v1", "HTTP://graph.example/", "http://[2001:db8::1]/"],
)
def test_plain_http_to_a_remote_host_is_refused(key: str, url: str) -> None:
    error = error_of(with_value(minimal(), key, url))
    assert (error.key, error.reason) == (key, CLEAR)


@pytest.mark.parametrize("key", TOKEN_URLS)
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9",
        "http://127.3.2.1/x",
        "http://localhost:8080",
        "http://[::1]:9000/",
        "https://remote.example",
    ],
)
def test_https_or_loopback_is_accepted(key: str, url: str) -> None:
    s = parse(with_value(minimal(), key, url))
    section, name = key.split(".")
    assert getattr(getattr(s, section), name) == url.rstrip("/")
