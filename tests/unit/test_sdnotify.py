"""sd_notify against real AF_UNIX datagram sockets standing in for systemd's."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
from structlog.testing import capture_logs

from bot.sdnotify import Notifier, socket_address, watchdog_seconds


def _receive(sock: socket.socket) -> list[str]:
    sock.settimeout(2.0)
    return sock.recv(4096).decode().split("\n")


@pytest.fixture
def path_socket(tmp_path):
    """A listening socket on a filesystem path: what NOTIFY_SOCKET names under systemd."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield str(path), sock


@pytest.fixture
def abstract_socket():
    """A listening socket in the abstract namespace: NOTIFY_SOCKET="@name"."""
    name = f"wajira-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        yield f"@{name}", sock


def test_lifecycle_messages_reach_a_path_socket(path_socket):
    address, sock = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})

    assert notifier.enabled
    assert notifier.ready("serving on 127.0.0.1:8080")
    assert _receive(sock) == ["READY=1", "STATUS=serving on 127.0.0.1:8080"]
    assert notifier.watchdog()
    assert _receive(sock) == ["WATCHDOG=1"]
    assert notifier.status("polling Jira")
    assert _receive(sock) == ["STATUS=polling Jira"]
    assert notifier.stopping("finishing running jobs")
    assert _receive(sock) == ["STOPPING=1", "STATUS=finishing running jobs"]


def test_lifecycle_messages_reach_an_abstract_socket(abstract_socket):
    address, sock = abstract_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})

    assert notifier.ready()
    assert _receive(sock) == ["READY=1"]
    assert notifier.watchdog()
    assert _receive(sock) == ["WATCHDOG=1"]
    assert notifier.status("up")
    assert _receive(sock) == ["STATUS=up"]
    assert notifier.stopping()
    assert _receive(sock) == ["STOPPING=1"]


def test_a_newline_in_a_status_cannot_forge_another_assignment(path_socket):
    address, sock = path_socket
    Notifier({"NOTIFY_SOCKET": address}).status("jira down\nREADY=1")
    assert _receive(sock) == ["STATUS=jira down READY=1"]


def test_without_notify_socket_every_call_is_a_no_op():
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert not any([notifier.ready("x"), notifier.status("x"), notifier.watchdog(), notifier.stopping()])


def test_a_dead_socket_never_raises_and_is_logged_once_then_recovery(tmp_path):
    path = tmp_path / "gone"
    notifier = Notifier({"NOTIFY_SOCKET": str(path)})
    with capture_logs() as logs:
        assert notifier.ready() is False
        assert notifier.watchdog() is False
        assert notifier.stopping() is False
    assert [e["event"] for e in logs] == ["sd_notify_failed"]

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        with capture_logs() as logs:
            assert notifier.watchdog() is True
        assert _receive(sock) == ["WATCHDOG=1"]
    assert [e["event"] for e in logs] == ["sd_notify_recovered"]


def test_a_socket_nobody_reads_any_more_never_raises(tmp_path):
    path = tmp_path / "closed"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.close()  # the path stays, the listener is gone: ECONNREFUSED
    with capture_logs():
        assert Notifier({"NOTIFY_SOCKET": str(path)}).ready() is False


def test_an_unusable_address_is_a_logged_no_op():
    with capture_logs() as logs:
        notifier = Notifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled and notifier.ready() is False
    assert [e["event"] for e in logs] == ["sd_notify_unsupported_socket"]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@/org/freedesktop/systemd1/notify/123", b"\0/org/freedesktop/systemd1/notify/123"),
        ("@", None),
        ("relative/path", None),
        ("vsock:2:1234", None),
    ],
)
def test_socket_address(value, expected):
    assert socket_address(value) == expected


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 30.0),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_seconds(env, expected):
    assert watchdog_seconds(env, 42) == expected


def test_notifier_reads_the_watchdog_for_its_own_process():
    env = {"WATCHDOG_USEC": "15000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(env).watchdog_interval == 15.0
