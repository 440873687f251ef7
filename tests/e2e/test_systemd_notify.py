"""`wajira run` under a stand-in for systemd's notification socket (Type=notify, WatchdogSec=)."""

from __future__ import annotations

import signal
import socket
import time

import pytest
import requests

pytestmark = pytest.mark.e2e


class NotifySocket:
    """What PID 1 listens on: a datagram socket; collects every assignment received."""

    def __init__(self, path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.received: list[str] = []
        self.ever: list[str] = []  # never cleared: a status sent once may come before a clear

    def wait_for(self, assignment: str, timeout: float = 30.0, *, ever: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while assignment not in (self.ever if ever else self.received):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {assignment} within {timeout}s; got {self.received}")
            self.sock.settimeout(remaining)
            assignments = self.sock.recv(4096).decode().split("\n")
            self.received += assignments
            self.ever += assignments


@pytest.fixture
def notify(tmp_path, monkeypatch):
    listener = NotifySocket(tmp_path / "notify")
    # The daemon inherits these, as it would from systemd with WatchdogSec=0.6.
    monkeypatch.setenv("NOTIFY_SOCKET", listener.path)
    monkeypatch.setenv("WATCHDOG_USEC", "600000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield listener
    listener.sock.close()


def test_ready_only_when_serving_then_watchdog_then_stopping(make_daemon, notify):
    daemon = make_daemon().start(wait=False)

    notify.wait_for("READY=1")
    # READY=1 comes after HTTP is up: the very next request is answered.
    assert requests.get(f"{daemon.url}/healthz", timeout=5).status_code == 200
    assert any(a.startswith("STATUS=serving http://127.0.0.1:") for a in notify.received)

    notify.received.clear()
    notify.wait_for("WATCHDOG=1", timeout=5)
    notify.received.clear()
    notify.wait_for("WATCHDOG=1", timeout=5)  # fed repeatedly, every WatchdogSec/3
    notify.wait_for("STATUS=healthy", timeout=10, ever=True)  # sent once, when it changes

    daemon.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert daemon.proc.poll() is None
    assert "STOPPING=1" not in notify.received

    assert daemon.terminate() == 0
    notify.wait_for("STOPPING=1", timeout=5)
    hup = [e for e in daemon.log_events() if e.get("event") == "reload_not_supported"]
    assert hup and hup[0]["reason"] == "config changes need a restart"
