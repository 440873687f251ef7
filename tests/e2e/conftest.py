from __future__ import annotations

import pytest

from sandbox.jira import JiraSandbox
from sandbox.meta import MetaSender
from tests.e2e.harness import APP_SECRET, DaemonProcess, config_text, free_port

JIRA_EMAIL, JIRA_TOKEN = "bot@example.com", "e2e-jira-api-token"


@pytest.fixture
def jira():
    sandbox = JiraSandbox(email=JIRA_EMAIL, api_token=JIRA_TOKEN)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def make_daemon(tmp_path, jira):
    """Builds (not starts) daemons sharing one SQLite database unless told otherwise."""
    started: list[DaemonProcess] = []

    def build(*, db_url: str | None = None, name: str = "d1", inbox: str = "", extra: str = "") -> DaemonProcess:
        port = free_port()
        config = tmp_path / f"{name}.toml"
        config.write_text(
            config_text(
                jira_url=jira.url,
                jira_email=JIRA_EMAIL,
                jira_api_token=JIRA_TOKEN,
                db_url=db_url or f"sqlite:///{tmp_path / 'wajira.db'}",
                port=port,
                inbox=inbox,
                extra=extra,
            )
        )
        daemon = DaemonProcess(config, port, tmp_path / f"{name}.log")
        started.append(daemon)
        return daemon

    yield build
    for daemon in started:
        if daemon.proc and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(timeout=10)


@pytest.fixture
def daemon(make_daemon):
    return make_daemon().start()


@pytest.fixture
def meta(daemon):
    return MetaSender(daemon.webhook_url, APP_SECRET)
