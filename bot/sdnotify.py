"""systemd's service notification protocol (sd_notify(3)), spoken directly.

With `Type=notify`, systemd passes the path of a datagram socket in `$NOTIFY_SOCKET`; the
service sends newline-separated `KEY=VALUE` assignments to it: `READY=1` when it serves,
`STATUS=…` for `systemctl status`, `WATCHDOG=1` as a keep-alive within `WatchdogSec=`, and
`STOPPING=1` when it begins to shut down. A path starting with "@" names a socket in the
abstract namespace (a leading NUL byte on the wire).

Outside systemd (a terminal, the tests, `wajira demo`) `$NOTIFY_SOCKET` is unset and every
call does nothing. A notification is a courtesy to the service manager, never a reason to
fail: no method here raises, and a send that fails is logged once, not on every ping.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

from bot.logs import get_logger

log = get_logger(__name__)


def socket_address(value: str) -> str | bytes | None:
    """The address `sendto` wants for a `$NOTIFY_SOCKET` value, or None if we cannot use it.

    Args:
        value: the variable as systemd set it: an absolute path or "@name".

    Returns:
        The path, the abstract name as bytes with a leading NUL, or None for anything else
        (relative paths, and the `vsock:` addresses newer systemd uses for virtual machines).
    """
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    return None


def watchdog_seconds(env: Mapping[str, str], pid: int) -> float | None:
    """The keep-alive deadline systemd set (`WatchdogSec=`) for process `pid`, in seconds.

    Returns None when no watchdog is armed, or when `$WATCHDOG_PID` names another process
    (the variable was inherited from a parent that systemd supervises, not meant for us).
    """
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


def _one_line(text: str) -> str:
    # A newline would start a new assignment and could forge, say, READY=1.
    return " ".join(text.splitlines())


class Notifier:
    """Sends notifications to the socket named by `$NOTIFY_SOCKET` (read once, at creation)."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        pid: int | None = None,
        timeout: float = 2.0,
    ) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self._address = socket_address(raw) if raw else None
        if raw and self._address is None:
            log.warning("sd_notify_unsupported_socket", notify_socket=raw)
        self.watchdog_interval = watchdog_seconds(env, os.getpid() if pid is None else pid)
        # PID 1 reads the socket promptly; the timeout only keeps a wedged manager from
        # wedging us too (a blocking send on a full datagram queue would otherwise hang).
        self._timeout = timeout
        self._failing = False
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens for notifications."""
        return self._address is not None

    def send(self, *assignments: str) -> bool:
        """Send `KEY=VALUE` assignments in one datagram.

        Returns:
            True when the datagram was sent; False when notifications are off or the send
            failed (logged at the first failure and at recovery, never raised).
        """
        if self._address is None or not assignments:
            return False
        message = "\n".join(assignments).encode()
        try:
            # Python's sockets are close-on-exec already (PEP 446): no child inherits it.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(self._timeout)
                sock.sendto(message, self._address)
        except Exception as exc:  # never let a courtesy message take the daemon down
            with self._lock:
                first, self._failing = not self._failing, True
            if first:
                log.warning("sd_notify_failed", error=f"{type(exc).__name__}: {exc}")
            return False
        with self._lock:
            recovered, self._failing = self._failing, False
        if recovered:
            log.info("sd_notify_recovered")
        return True

    def ready(self, status: str = "") -> bool:
        """Startup is complete: systemd marks the unit active and starts its dependents."""
        return self.send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        """A one-line state shown by `systemctl status`."""
        return self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Keep-alive: without one every `WatchdogSec=`, systemd kills and restarts us."""
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        """Shutdown has begun (so a slow stop is not mistaken for a hang)."""
        return self.send("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))
