"""The intake loop: accepts connections and buffers whole requests on one thread.

Why it exists: a thread that reads from a socket is held by whoever is on the other end. A
client that connects and says nothing, or trickles a header line every few seconds, would
hold a request thread for as long as it likes, and 16 such clients would hold them all while
Meta's signed deliveries wait in the accept queue. Here no thread waits on any one client:
a selector watches every connection, each request has one deadline for its headers and body
together, and only a complete request reaches a worker (which then never blocks on reading).

Limits, so that no client can make the loop spin or grow without bound:
- at most `max_connections` open at once, and at most `max_buffered_bytes` held in buffers;
  past either, the connection that has waited longest is dropped to make room;
- when `accept` fails for want of descriptors (EMFILE), the same happens, and if nothing can
  be dropped the listener is paused briefly instead of being polled in a hot loop.
"""

from __future__ import annotations

import errno
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.http.framing import MAX_HEADER_BYTES, header_end, read_head
from bot.logs import get_logger

log = get_logger(__name__)

_RECV_BYTES = 65536
_PAUSE_SECONDS = 0.1
"""How long the listener rests when no descriptor can be had."""
_TICK_SECONDS = 0.5
"""The longest the loop sleeps with nothing to do (deadlines wake it sooner)."""
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

_TIMEOUT_ANSWER = b"HTTP/1.0 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_HEADERS_TOO_LARGE = (
    b"HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Dispatch = Callable[[socket.socket, tuple, bytes], None]


@dataclass
class _Pending:
    """A connection whose request has not fully arrived."""

    address: tuple
    deadline: float
    buffer: bytearray = field(default_factory=bytearray)
    searched: int = 0
    total: int = -1
    """The request's full size once its headers are in; -1 before."""


class Intake:
    """Accept, buffer, and hand complete requests to `dispatch` (which owns the socket then)."""

    def __init__(
        self,
        listener: socket.socket,
        dispatch: Dispatch,
        *,
        request_timeout: float,
        max_body_bytes: int,
        max_connections: int,
        max_buffered_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._listener = listener
        self._dispatch = dispatch
        self._timeout = request_timeout
        self._max_body = max_body_bytes
        self._max_connections = max_connections
        self._max_buffered = max_buffered_bytes
        self._clock = clock
        self._selector = selectors.DefaultSelector()
        self._pending: dict[socket.socket, _Pending] = {}  # insertion order: oldest first
        self._buffered = 0
        self._in_flight = 0  # dispatched, not yet closed by a worker
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._listening = False
        self._paused_until = 0.0
        self._stopping = threading.Event()
        self._warned_at = -1e9

    # -- called from other threads -----------------------------------------------------------

    def finished(self) -> None:
        """A worker closed a dispatched connection: room for another."""
        with self._lock:
            self._in_flight -= 1
            full = not self._listening
        if full:
            self._wake()

    def stop(self) -> None:
        self._stopping.set()
        self._wake()

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._listen(True)
        try:
            while not self._stopping.is_set():
                self._turn()
        finally:
            self._close_all()

    def _turn(self) -> None:
        now = self._clock()
        self._expire(now)
        self._resume_listening(now)
        for key, _ in self._selector.select(self._sleep_for(now)):
            if key.data == "wake":
                self._drain_wakeups()
            elif key.data == "listen":
                self._accept()
            elif isinstance(key.fileobj, socket.socket):  # "client": registered in _accept
                self._receive(key.fileobj)

    def _sleep_for(self, now: float) -> float:
        wait = _TICK_SECONDS
        if self._pending:
            oldest = next(iter(self._pending.values()))
            wait = min(wait, max(0.0, oldest.deadline - now))
        if not self._listening and self._paused_until:
            wait = min(wait, max(0.0, self._paused_until - now))
        return wait

    def _accept(self) -> None:
        # A burst of connections is taken in one go; the selector reports the listener again.
        for _ in range(64):
            if self._open() >= self._max_connections and not self._drop_oldest("connection limit"):
                self._listen(False)
                return
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    self._out_of_descriptors(exc)
                # ECONNABORTED and the like: that client is gone, the next one may not be.
                return
            sock.setblocking(False)
            self._pending[sock] = _Pending(address=address, deadline=self._clock() + self._timeout)
            self._selector.register(sock, selectors.EVENT_READ, "client")

    def _receive(self, sock: socket.socket) -> None:
        pending = self._pending.get(sock)
        if pending is None:
            return
        try:
            data = sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client closed (or reset) before finishing its request
            self._forget(sock, close=True)
            return
        pending.buffer += data
        self._buffered += len(data)
        if pending.total < 0 and not self._read_headers(sock, pending):
            return
        if 0 <= pending.total <= len(pending.buffer):
            self._hand_over(sock, pending)
        elif self._buffered > self._max_buffered:
            self._drop_oldest("buffer limit")

    def _read_headers(self, sock: socket.socket, pending: _Pending) -> bool:
        end = header_end(pending.buffer, pending.searched)
        if end < 0:
            pending.searched = len(pending.buffer)
            if len(pending.buffer) > MAX_HEADER_BYTES:
                self._answer_and_close(sock, _HEADERS_TOO_LARGE)
            return False
        if end > MAX_HEADER_BYTES:
            self._answer_and_close(sock, _HEADERS_TOO_LARGE)
            return False
        head = read_head(bytes(pending.buffer[:end]), max_body_bytes=self._max_body)
        pending.total = head.size + head.body_length
        if head.expects_continue and len(pending.buffer) < pending.total:
            _send_quietly(sock, _CONTINUE)
        return True

    def _hand_over(self, sock: socket.socket, pending: _Pending) -> None:
        self._forget(sock, close=False)
        with self._lock:
            self._in_flight += 1
        self._dispatch(sock, pending.address, bytes(pending.buffer[: pending.total]))

    # -- limits ------------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        while self._pending:
            sock, oldest = next(iter(self._pending.items()))
            if oldest.deadline > now:
                return
            self._answer_and_close(sock, _TIMEOUT_ANSWER)

    def _drop_oldest(self, reason: str) -> bool:
        if not self._pending:
            return False
        sock = next(iter(self._pending))
        self._warn("http_connection_dropped", reason=reason)
        self._answer_and_close(sock, _TIMEOUT_ANSWER)
        return True

    def _out_of_descriptors(self, exc: OSError) -> None:
        if self._drop_oldest("out of file descriptors"):
            return
        self._warn("http_accept_paused", reason="out of file descriptors", errno=exc.errno)
        self._listen(False)
        self._paused_until = self._clock() + _PAUSE_SECONDS

    def _resume_listening(self, now: float) -> None:
        if self._listening or self._stopping.is_set():
            return
        if self._paused_until and now < self._paused_until:
            return
        if self._open() < self._max_connections:
            self._paused_until = 0.0
            self._listen(True)

    def _open(self) -> int:
        with self._lock:
            return len(self._pending) + self._in_flight

    def _warn(self, event: str, **fields: object) -> None:
        # Under attack this could fire thousands of times a second: one line per 10 s.
        now = self._clock()
        if now - self._warned_at >= 10:
            self._warned_at = now
            log.warning(event, open_connections=self._open(), **fields)

    # -- plumbing ----------------------------------------------------------------------------

    def _listen(self, on: bool) -> None:
        if on == self._listening:
            return
        if on:
            self._selector.register(self._listener, selectors.EVENT_READ, "listen")
        else:
            self._selector.unregister(self._listener)
        with self._lock:
            self._listening = on

    def _answer_and_close(self, sock: socket.socket, answer: bytes) -> None:
        _send_quietly(sock, answer)
        self._forget(sock, close=True)

    def _forget(self, sock: socket.socket, *, close: bool) -> None:
        pending = self._pending.pop(sock, None)
        if pending is not None:
            self._buffered -= len(pending.buffer)
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        if close:
            sock.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # the pipe is full (the loop will wake anyway) or already closed
            pass

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _close_all(self) -> None:
        for sock in list(self._pending):
            self._forget(sock, close=True)
        self._listen(False)
        self._listener.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    # Best effort on a non-blocking socket: a few bytes that fit the send buffer, or nothing.
    try:
        sock.send(data)
    except OSError:
        pass
