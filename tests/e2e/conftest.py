from __future__ import annotations

import pytest

from sandbox.graph import GraphSandbox
from sandbox.jira import JiraSandbox
from sandbox.meta import MetaSender
from sandbox.openai_stub import OpenAISandbox
from tests.e2e.harness import ACCESS_TOKEN, APP_SECRET, OPENAI_KEY, DaemonProcess, config_text, free_port

JIRA_EMAIL, JIRA_TOKEN = "bot@example.com", "e2e-jira-api-token"


@pytest.fixture
def jira():
    sandbox = JiraSandbox(email=JIRA_EMAIL, api_token=JIRA_TOKEN)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def openai_sandbox():
    sandbox = OpenAISandbox(api_key=OPENAI_KEY)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def daemon_port():
    return free_port()


@pytest.fixture
def graph_sandbox(daemon_port):
    # Status callbacks go to the daemon's webhook, signed like Meta's.
    sandbox = GraphSandbox(
        access_token=ACCESS_TOKEN,
        app_secret=APP_SECRET,
        webhook_url=f"http://127.0.0.1:{daemon_port}/api/whatsapp/webhook",
    )
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def make_daemon(tmp_path, jira, daemon_port):
    """Builds (not starts) daemons sharing one SQLite database unless told otherwise."""
    started: list[DaemonProcess] = []

    def build(
        *,
        db_url: str | None = None,
        name: str = "d1",
        graph=None,
        openai=None,
        port: int | None = None,
        **options,
    ) -> DaemonProcess:
        if graph is not None:
            options["graph_url"] = graph.url
            port = port or daemon_port
        port = port or free_port()
        if openai is not None:
            options["openai_url"] = openai.url
        admin_port = options.pop("admin_port", None) or free_port()
        config = tmp_path / f"{name}.toml"
        config.write_text(
            config_text(
                jira_url=jira.url,
                jira_email=JIRA_EMAIL,
                jira_api_token=JIRA_TOKEN,
                db_url=db_url or f"sqlite:///{tmp_path / 'wajira.db'}",
                port=port,
                admin_port=admin_port,
                **options,
            )
        )
        daemon = DaemonProcess(config, port, tmp_path / f"{name}.log", admin_port=admin_port)
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
