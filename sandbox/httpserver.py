"""A threaded loopback HTTP server for any WSGI app, and ``SandboxServer``, the sandboxes' base.

Stdlib only: the sandboxes must start in tests and in ``wajira demo`` without
extra dependencies or network access.
"""

from __future__ import annotations

import socketserver
import threading
from typing import TYPE_CHECKING, Self
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


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
    def log_message(self, format: str, *args: object) -> None:
        pass


class LoopbackServer:
    """Serve a WSGI app on a loopback port in a background daemon thread.

    Args:
        app: the WSGI callable.
        host: interface to bind; loopback by default.
        port: 0 picks a free port (read it back from ``url``).
    """

    def __init__(self, app: WSGIApplication, host: str = "127.0.0.1", port: int = 0) -> None:
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
        return f"http://{host!s}:{port}"

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

    def __enter__(self) -> LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SandboxServer:
    """Base of the three sandboxes: serve ``self.app`` on loopback, with start/stop/url/``with``.

    A subclass sets ``app`` (its WSGI callable) in ``__init__`` and may override ``_starting``
    and ``_stopped`` for workers of its own (the Graph sandbox's status callbacks).

    Args:
        host: interface to bind; loopback by default.
        port: 0 picks a free port (read it back from ``url``).
    """

    app: WSGIApplication
    url_path = ""  # appended to the server's base URL (OpenAI's SDK wants ``…/v1``)

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: LoopbackServer | None = None

    def start(self, host: str | None = None, port: int | None = None) -> str:
        """Start serving (on ``host:port`` if given, else the constructor's); return ``url``."""
        self._starting()
        if self._server is None:
            self._server = LoopbackServer(
                self.app, self._host if host is None else host, self._port if port is None else port
            )
        self._server.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self._stopped()

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:54321`` (only valid once started)."""
        if self._server is None:
            raise RuntimeError("sandbox not started")
        return self._server.url + self.url_path

    def _starting(self) -> None:
        """Hook: runs before the server binds."""

    def _stopped(self) -> None:
        """Hook: runs after the server has stopped."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
