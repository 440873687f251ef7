"""A WSGI server: one intake thread buffers whole requests, a fixed pool runs wsgiref on them.

wsgiref stays the WSGI implementation (request parsing, environ, response framing); what
changes is what a worker is given: the complete bytes of one request, already received, and
a socket to answer on. A worker is therefore never held by a slow or silent client (see
`bot.http.intake`), and on shutdown every request already received is answered.
"""

from __future__ import annotations

import io
import queue
import resource
import socket
import sys
import threading
import time
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler

from bot.http.intake import Intake
from bot.logs import get_logger

log = get_logger(__name__)

WORKERS = 16
"""Requests served at once. Each holds a thread (and a database connection); complete requests
wait in a queue. Our answers take about a millisecond of one interpreter's CPU, so more
threads only contend for the GIL: 4, 8, 16 and 32 measured within noise of each other at 16
concurrent clients (tests/benchmarks/bench.py)."""
REQUEST_TIMEOUT_SECONDS = 10.0
"""A whole request, headers and body, must arrive within this; then the connection is closed."""
MAX_CONNECTIONS = 4096
"""Open connections at most (also bounded by the descriptor limit, below)."""
DESCRIPTOR_RESERVE = 256
"""Descriptors left for everything else: database, Jira, Graph and OpenAI connections, SQLite's
files, the journal. Connections beyond RLIMIT_NOFILE minus this are not accepted."""


def connection_limit(max_connections: int = MAX_CONNECTIONS) -> int:
    """How many client connections this process may hold, given its RLIMIT_NOFILE."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(16, min(max_connections, soft - DESCRIPTOR_RESERVE))


class _ServerHandler(ServerHandler):
    # Set by the request handler, as wsgiref's own does; `close` logs through it.
    request_handler: WSGIRequestHandler

    def log_exception(self, exc_info) -> None:
        # wsgiref would print a multi-line traceback to stderr, past our JSON and our scrubber.
        log.error("http_response_failed", exc_info=exc_info)


class _BufferedRequestHandler(WSGIRequestHandler):
    """wsgiref's handler, reading the request from bytes the intake already received."""

    def __init__(self, sock: socket.socket, address: tuple, server: _Serving, raw: bytes) -> None:
        self._raw = raw
        self._serving = server
        # wsgiref asks its server for get_app() and base_environ only, which _Serving provides.
        super().__init__(sock, address, server)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = io.BytesIO(self._raw)
        self.wfile = _SocketWriter(self.request)

    def finish(self) -> None:
        pass

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():  # it has answered 400 (or similar) itself
            return
        handler = _ServerHandler(
            self.rfile,
            # wsgiref's stub wants IO[bytes]; it only writes and flushes, as with wsgiref's own writer.
            self.wfile,  # type: ignore[arg-type]
            sys.stderr,
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self
        handler.run(self._serving.get_app())

    # Access lines would carry query strings (verify tokens); wsgiref writes them to stderr.
    def log_message(self, format: str, *args: object) -> None:
        pass


class _SocketWriter(io.BufferedIOBase):
    """Blocking writes of whole buffers (with the socket's timeout), as wsgiref expects."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._sock.sendall(data)
        return len(data)


class _Serving:
    """What wsgiref's handler asks of its server: the app and the base environ."""

    def __init__(self, app, host: str, port: int) -> None:
        self._app = app
        self.base_environ = {
            "SERVER_NAME": host,
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PORT": str(port),
            "REMOTE_HOST": "",
            "CONTENT_LENGTH": "",
            "SCRIPT_NAME": "",
        }

    def get_app(self):
        return self._app


class HttpServer:
    """Serves `app` on host:port (port 0 picks a free one) from background threads."""

    def __init__(
        self,
        app,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        max_body_bytes: int = 3 * 1024 * 1024,
        workers: int | None = None,
        max_connections: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Bind now (serve from `start()`).

        Args:
            reuse_port: bind with SO_REUSEPORT, so several processes listen on the same port
                and the kernel spreads connections across them (`[server] workers`).
        """
        self._listener = _listen(host, port, reuse_port=reuse_port)
        self._timeout = request_timeout
        self._serving = _Serving(app, host, self.port)
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._intake = Intake(
            self._listener,
            self._requests_put,
            request_timeout=request_timeout,
            max_body_bytes=max_body_bytes,
            max_connections=max_connections or connection_limit(),
            # Room for every worker's request and as many more waiting, at the largest size.
            max_buffered_bytes=max(64 * 1024 * 1024, 2 * (workers or WORKERS) * max_body_bytes),
        )
        self._workers = [
            threading.Thread(target=self._work, name=f"http-{n}", daemon=True)
            for n in range(workers or WORKERS)
        ]
        self._intake_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        host = self._listener.getsockname()[0]
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def start(self) -> str:
        for worker in self._workers:
            worker.start()
        self._intake_thread = threading.Thread(target=self._intake.run, name="http-intake", daemon=True)
        self._intake_thread.start()
        return self.url

    def stop(self, grace_seconds: float | None = None) -> None:
        """Stop accepting, drop requests still arriving, answer every one already received.

        Returns within about `grace_seconds` (default: the request timeout) even if an answer
        hangs, so a service manager's stop timeout is never reached on our account.
        """
        deadline = time.monotonic() + (self._timeout if grace_seconds is None else grace_seconds)
        self._intake.stop()
        if self._intake_thread:
            self._intake_thread.join(timeout=max(0.0, deadline - time.monotonic()))
        else:
            self._listener.close()
        for _ in self._workers:
            self._requests.put(None)  # behind every received request: those are answered first
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout=max(0.0, deadline - time.monotonic()))

    # -- workers -----------------------------------------------------------------------------

    def _requests_put(self, sock: socket.socket, address: tuple, raw: bytes) -> None:
        self._requests.put((sock, address, raw))

    def _work(self) -> None:
        while (item := self._requests.get()) is not None:
            sock, address, raw = item
            try:
                sock.settimeout(self._timeout)  # for writing the answer: the request is all here
                _BufferedRequestHandler(sock, address, self._serving, raw)
            except Exception:
                log.error("http_request_failed", exc_info=True)
            finally:
                _close(sock)
                self._intake.finished()


def _listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128, reuse_port=reuse_port)
    sock.setblocking(False)
    return sock


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)  # the answer is complete: tell the client before closing
    except OSError:
        pass
    sock.close()
