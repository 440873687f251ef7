"""Nudges from the webhook workers to the jobs in the main process (`[server] workers` > 1).

A worker that stored new messages (or statuses) tells the main process, whose inbox (or
outbox) job then runs at once instead of at its next sweep. The channel is one Unix datagram
socket pair: every worker holds a copy of the sending end, a thread in the main process reads
the other. Datagrams keep each note whole however many workers write at once, and need no
framing and no per-worker socket.

A nudge is a hint, never the record: the rows are already committed when it is sent. Sending
never blocks a webhook: when the socket's buffer is full (the main process is busy), the
datagram is dropped, and that loses nothing but time — the main process already has nudges to
read, which run the job; at worst the next sweep (`[inbox] interval_seconds`) picks it up.

Besides nudges, a worker says `ready <pid>` once it serves, so the main process tells systemd
READY=1 only when the port answers.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot.logs import get_logger

log = get_logger(__name__)

INBOX, OUTBOX = b"inbox", b"outbox"
_READY = b"ready "
_MAX_DATAGRAM = 64
_MAX_READ = 1024
"""Datagrams read per wake-up before the jobs are nudged (a burst is one nudge per job)."""


@dataclass(frozen=True)
class Notes:
    """What a burst of datagrams asked for."""

    inbox: bool = False
    outbox: bool = False
    ready: list[int] = field(default_factory=list)


def read_notes(datagrams: Iterable[bytes]) -> Notes:
    """Fold a burst of datagrams into what to do; anything unknown is ignored."""
    inbox = outbox = False
    ready: list[int] = []
    for data in datagrams:
        if data == INBOX:
            inbox = True
        elif data == OUTBOX:
            outbox = True
        elif data.startswith(_READY) and data[len(_READY) :].isdigit():
            ready.append(int(data[len(_READY) :]))
    return Notes(inbox=inbox, outbox=outbox, ready=ready)


def channel() -> tuple[socket.socket, socket.socket]:
    """(receiving end for the main process, sending end for the workers)."""
    receiving, sending = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiving.setblocking(False)
    sending.setblocking(False)
    return receiving, sending


class NudgeSender:
    """A worker's end: `inbox()`, `outbox()`, `ready(pid)`; none of them blocks or raises."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock

    def inbox(self) -> None:
        self._send(INBOX)

    def outbox(self) -> None:
        self._send(OUTBOX)

    def ready(self, pid: int) -> None:
        self._send(_READY + str(pid).encode())

    def _send(self, data: bytes) -> None:
        try:
            self._sock.send(data)
        except OSError:  # buffer full (the reader has nudges pending) or the main process is gone
            pass


class NudgeReceiver:
    """The main process's end: a thread that reads datagrams and calls back.

    Args:
        sock: the receiving end of `channel()`.
        inbox, outbox: run that job now (`NudgeableJob.nudge`).
        ready: a worker serves (its pid).
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        inbox: Callable[[], None],
        outbox: Callable[[], None],
        ready: Callable[[int], None],
    ) -> None:
        self._sock = sock
        self._inbox, self._outbox, self._ready = inbox, outbox, ready
        self._stop_r, self._stop_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="webhook-nudges", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        try:
            self._stop_w.send(b"\0")
        except OSError:
            pass
        self._thread.join(timeout=5)
        self._stop_r.close()
        self._stop_w.close()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._stop_r, selectors.EVENT_READ)
            while True:
                events = selector.select()
                if any(key.fileobj is self._stop_r for key, _ in events):
                    return
                self._act(read_notes(self._drain()))

    def _drain(self) -> list[bytes]:
        burst: list[bytes] = []
        while len(burst) < _MAX_READ:
            try:
                burst.append(self._sock.recv(_MAX_DATAGRAM))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
        return burst

    def _act(self, notes: Notes) -> None:
        # A failing callback must not end the thread: later nudges would be lost for good.
        for call in (
            *((self._inbox,) if notes.inbox else ()),
            *((self._outbox,) if notes.outbox else ()),
        ):
            try:
                call()
            except Exception:
                log.error("webhook_nudge_failed", exc_info=True)
        for pid in notes.ready:
            self._ready(pid)
