"""A threaded loopback HTTP server for any WSGI app (the sandboxes share it).

Stdlib only: the sandboxes must start in tests and in ``wajira demo`` without
extra dependencies or network access.
"""

from __future__ import annotations

import socketserver
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    # Daemon threads so a hung client connection never blocks interpreter exit,
    # and address reuse so a quick restart on the same port does not hit TIME_WAIT.
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog of 5 resets connections when a test
    # fires a burst of concurrent requests; real services accept far more.
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    # wsgiref logs every request to stderr; tests and the demo want clean output.
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class LoopbackServer:
    """Serve a WSGI app on a loopback port in a background daemon thread.

    Args:
        app: the WSGI callable.
        host: interface to bind; loopback by default.
        port: 0 picks a free port (read it back from ``url``).
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._server: _ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:54321`` (only valid once started)."""
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Bind, start serving in a daemon thread and return the base URL."""
        if self._server is not None:
            return self.url
        self._server = make_server(
            self._host,
            self._port,
            self._app,
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # short poll so stop() returns quickly
            name=f"loopback-{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "LoopbackServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
