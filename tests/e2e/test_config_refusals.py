"""The real `wajira run` and `wajira check` refuse placeholder secrets, clear-text tokens and
labels the poller could not search for: exit 2, the dotted key on stderr, nothing served.

A daemon that started with `app_secret = "change-me"` would accept any webhook signed with
those words, which everyone who has read an example config knows; these tests show it never
starts listening at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bot.rules.signature import sign
from sandbox import whatsapp_payloads as wa
from tests.e2e.conftest import JIRA_EMAIL, JIRA_TOKEN
from tests.e2e.harness import APP_SECRET, REPO, config_text, free_port

pytestmark = pytest.mark.e2e

# Variables that would supply or replace the values under test.
_SOURCES = ("WHATSAPP_", "JIRA_", "OPENAI_", "CREDENTIALS_DIRECTORY", "WAJIRA_CONFIG")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SOURCES)}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def write_config(
    tmp_path: Path, jira, port: int, *, replace: tuple[str, str] | None = None, **options
) -> Path:
    text = config_text(
        jira_url=jira.url,
        jira_email=JIRA_EMAIL,
        jira_api_token=JIRA_TOKEN,
        db_url=f"sqlite:///{tmp_path / 'wajira.db'}",
        port=port,
        **options,
    )
    if replace:
        old, new = replace
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "wajira.toml"
    path.write_text(text)
    return path


def wajira(command: str, config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", command, "--config", str(config)],
        cwd=REPO,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def signed_delivery(port: int, secret: str) -> int | None:
    """POST a delivery signed with `secret`; its status, or None when nothing listens."""
    body = wa.message_payload(
        [wa.text("5215512345678", "hello")], contacts=[wa.contact("Ana", "5215512345678")]
    )
    raw = json.dumps(body).encode()
    try:
        response = requests.post(
            f"http://127.0.0.1:{port}/api/whatsapp/webhook",
            data=raw,
            timeout=2,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, raw)},
        )
    except requests.ConnectionError:
        return None
    return response.status_code


def run_and_probe(
    config: Path, port: int, secret: str, env: dict[str, str] | None = None
) -> tuple[int, str, list[int | None]]:
    """Start `wajira run`, keep sending signed deliveries until it exits; (code, stderr, statuses)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        cwd=REPO,
        env=env or clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    statuses: list[int | None] = []
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            statuses.append(signed_delivery(port, secret))
            time.sleep(0.05)
        statuses.append(signed_delivery(port, secret))  # and after it is gone
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate(timeout=10)
    return proc.returncode, stderr, statuses


def assert_config_error(code: int, stderr: str, key: str) -> str:
    assert code == 2, stderr
    line = next((ln for ln in stderr.splitlines() if ln.startswith("wajira: configuration error: ")), "")
    assert line.startswith(f"wajira: configuration error: {key}: "), stderr
    return line


# -- placeholder and short app secrets -----------------------------------------------------------------


def test_run_with_change_me_app_secret_exits_2_and_never_accepts_a_webhook(tmp_path, jira):
    port = free_port()
    config = write_config(
        tmp_path, jira, port, replace=(f'app_secret = "{APP_SECRET}"', 'app_secret = "change-me"')
    )

    code, stderr, statuses = run_and_probe(config, port, "change-me")

    line = assert_config_error(code, stderr, "whatsapp.app_secret")
    assert "placeholder" in line and "(read from " in line
    assert statuses and set(statuses) == {None}, f"something answered on the webhook port: {statuses}"
    assert not (tmp_path / "wajira.db").exists()  # storage was never opened
    assert not jira.calls  # nor Jira reached


def test_the_probe_does_see_a_daemon_that_serves(make_daemon):
    """Control for the tests above: with a real secret the same probe is answered."""
    daemon = make_daemon().start()
    assert signed_delivery(daemon.port, APP_SECRET) == 200
    assert signed_delivery(daemon.port, "change-me") == 403


def test_check_with_change_me_app_secret_exits_2_before_reaching_anything(tmp_path, jira):
    config = write_config(
        tmp_path, jira, free_port(), replace=(f'app_secret = "{APP_SECRET}"', 'app_secret = "change-me"')
    )

    done = wajira("check", config)

    assert_config_error(done.returncode, done.stderr, "whatsapp.app_secret")
    assert done.stdout == ""  # no check line: nothing was tried
    assert not jira.calls


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_short_app_secret_exits_2_without_printing_it(tmp_path, jira, command):
    short = "only-15-chars!!"
    config = write_config(
        tmp_path, jira, free_port(), replace=(f'app_secret = "{APP_SECRET}"', f'app_secret = "{short}"')
    )

    done = wajira(command, config)

    line = assert_config_error(done.returncode, done.stderr, "whatsapp.app_secret")
    assert line.endswith(f"is shorter than 16 characters (read from {config})")
    assert short not in done.stderr + done.stdout


def test_a_placeholder_from_the_environment_names_the_variable_not_the_value(tmp_path, jira):
    port = free_port()
    config = write_config(tmp_path, jira, port)
    value = "your-app-secret-goes-here"

    code, stderr, statuses = run_and_probe(config, port, value, env=clean_env(WHATSAPP_APP_SECRET=value))

    line = assert_config_error(code, stderr, "whatsapp.app_secret")
    assert line.endswith("(read from $WHATSAPP_APP_SECRET)")
    assert value not in stderr
    assert set(statuses) == {None}


def test_a_placeholder_credential_file_names_the_file(tmp_path, jira):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "JIRA_API_TOKEN").write_text("<jira api token>\n")
    config = write_config(tmp_path, jira, free_port())

    done = wajira("check", config, env=clean_env(CREDENTIALS_DIRECTORY=str(credentials)))

    line = assert_config_error(done.returncode, done.stderr, "jira.api_token")
    assert line.endswith(f"(read from credential file {credentials / 'JIRA_API_TOKEN'})")
    assert not jira.calls


def test_the_shipped_config_toml_is_refused_at_its_first_missing_secret():
    done = wajira("check", REPO / "config.toml")

    line = assert_config_error(done.returncode, done.stderr, "whatsapp.verify_token")
    assert "missing required value" in line


# -- tokens in clear ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "replace"),
    [
        ("jira.url", None),  # filled in below: the sandbox's own URL, made remote
        ("whatsapp.graph_url", ('graph_url = "http://127.0.0.1:9"', 'graph_url = "http://graph.example"')),
        ("openai.base_url", ('base_url = "http://127.0.0.1:9/v1"', 'base_url = "http://10.20.30.40/v1"')),
    ],
)
@pytest.mark.parametrize("command", ["run", "check"])
def test_plain_http_to_a_remote_host_exits_2(tmp_path, jira, key, replace, command):
    if replace is None:
        replace = (f'url = "{jira.url}"', 'url = "http://jira.example"')
    config = write_config(tmp_path, jira, free_port(), replace=replace)

    done = wajira(command, config)

    line = assert_config_error(done.returncode, done.stderr, key)
    assert line.endswith("must be https:// unless the host is loopback: the token would travel in clear")


# -- labels the poller could not search for ----------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_label_with_a_quote_exits_2_instead_of_failing_every_poll(tmp_path, jira, command):
    port = free_port()
    config = write_config(tmp_path, jira, port, replace=('labels = ["whatsapp"]', "labels = ['vip\"x']"))

    if command == "run":
        code, stderr, statuses = run_and_probe(config, port, APP_SECRET)
        assert set(statuses) == {None}
    else:
        done = wajira(command, config)
        code, stderr = done.returncode, done.stderr

    line = assert_config_error(code, stderr, "services[0].labels")
    assert "item 0 'vip\"x' holds whitespace, a quote, a backslash or a control character" in line
    assert not jira.calls  # no poll pass ran
