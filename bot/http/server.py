"""A threaded stdlib WSGI server that finishes the requests it has accepted before it stops."""

from __future__ import annotations

import socketserver
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer


class _QuietHandler(WSGIRequestHandler):
    # Access lines would carry query strings (verify tokens) to stderr; we log our own way.
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    # Not daemon threads: on shutdown server_close() joins them, so a request that was being
    # stored finishes and gets its answer.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128


class HttpServer:
    """Serves `app` on host:port (port 0 picks a free one) from a background thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadingWSGIServer((host, port), _QuietHandler)
        self._server.set_app(app)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host}:{self.port}"

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop accepting, then wait for in-flight requests."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)
