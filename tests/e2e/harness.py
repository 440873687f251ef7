"""Runs the real `wajira run` process against sandbox services over loopback."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
APP_SECRET = "e2e-app-secret-0123456789"
VERIFY_TOKEN = "e2e-verify-token"
ACCESS_TOKEN = "e2e-graph-access-token"
OPENAI_KEY = "e2e-openai-key"
PHONE_NUMBER_ID = "106540352242922"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(
    *,
    jira_url: str,
    jira_email: str,
    jira_api_token: str,
    db_url: str,
    port: int,
    admin_port: int = 0,
    graph_url: str = "http://127.0.0.1:9",
    openai_url: str = "http://127.0.0.1:9/v1",
    assistant: bool = False,
    poll_interval: int = 1,
    extra: str = "",
    inbox: str = "",
    whatsapp: str = "",
    service: str = "",
    openai_timeout: float = 10,
    poller: str = "",
) -> str:
    return f"""
[server]
host = "127.0.0.1"
port = {port}
admin_port = {admin_port}

[storage]
url = "{db_url}"

[whatsapp]
verify_token = "{VERIFY_TOKEN}"
app_secret = "{APP_SECRET}"
access_token = "{ACCESS_TOKEN}"
phone_number_id = "{PHONE_NUMBER_ID}"
graph_url = "{graph_url}"
{whatsapp}

[jira]
url = "{jira_url}"
email = "{jira_email}"
api_token = "{jira_api_token}"
timeout_seconds = 5

[openai]
api_key = "{OPENAI_KEY}"
base_url = "{openai_url}"
model = "gpt-4o-mini"
timeout_seconds = {openai_timeout}

[poller]
interval_seconds = {poll_interval}
overlap_seconds = 120
{poller}

[inbox]
interval_seconds = 1
retry_base_seconds = 0.2
retry_max_seconds = 2
{inbox}

[outbox]
interval_seconds = 1
retry_base_seconds = 0.2
retry_max_seconds = 2

[logging]
level = "info"
format = "json"

[[services]]
id = "support"
project_key = "WA"
labels = ["whatsapp"]
{service}

[services.assistant]
enabled = {"true" if assistant else "false"}
debounce_seconds = 0.5
handoff_seconds = 30
{extra}
"""


class DaemonProcess:
    def __init__(self, config_path: Path, port: int, log_path: Path, admin_port: int = 0) -> None:
        self.config_path = config_path
        self.port = port
        self.admin_port = admin_port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """The admin listener (/metrics, detailed /healthz); the config must have turned it on."""
        assert self.admin_port, "this daemon was configured without an admin port"
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/api/whatsapp/webhook"

    def start(self, *, wait: bool = True, max_open_files: int | None = None) -> DaemonProcess:
        """`max_open_files` lowers the process's RLIMIT_NOFILE, as a smaller LimitNOFILE= would."""
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - held open for the process's life, closed in stop()
        env = dict(os.environ, PYTHONUNBUFFERED="1")

        def limit_files() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(self.config_path)],
            cwd=REPO,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_files if max_open_files else None,
        )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.logs_text()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"daemon not healthy after {timeout}s:\n{self.logs_text()}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the daemon has used so far (Linux /proc)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self._log_file:
                self._log_file.close()

    def logs_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self) -> list[dict]:
        events = []
        for line in self.logs_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events


def wait_until(
    predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.1, what: str = ""
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
