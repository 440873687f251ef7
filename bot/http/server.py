"""A stdlib WSGI server on a pool of threads that answers the requests it accepted before it stops."""

from __future__ import annotations

import queue
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

WORKERS = 16
"""Requests served at once. Each holds a thread (and a database connection); more wait in
the accept queue. Our answers take about a millisecond of one interpreter's CPU, so more
threads only contend for the GIL: 4, 8, 16 and 32 measured within noise of each other at 16
concurrent clients (tests/benchmarks/bench.py), 16 keeps slow clients from starving the rest."""
REQUEST_TIMEOUT_SECONDS = 15
"""A connection silent this long is dropped (Meta itself gives up well before)."""


class _QuietHandler(WSGIRequestHandler):
    # A client that connects and then sends nothing must not hold a worker for ever.
    timeout = REQUEST_TIMEOUT_SECONDS

    # Access lines would carry query strings (verify tokens) to stderr; we log our own way.
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class PooledWSGIServer(WSGIServer):
    """wsgiref served by a fixed pool of threads instead of a new thread per request.

    A thread per request costs a thread start and, in each new thread, a new database
    connection (peewee keeps one per thread); the pool keeps both. Accepted connections wait
    in a queue for a free worker; on shutdown the workers finish what was queued, so a
    request that was accepted is answered.
    """

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[WSGIRequestHandler],
                 workers: int | None = None) -> None:
        super().__init__(address, handler)
        workers = workers or WORKERS
        self._accepted: queue.SimpleQueue = queue.SimpleQueue()
        self._workers = [threading.Thread(target=self._work, name=f"http-{n}", daemon=True)
                         for n in range(workers)]
        for worker in self._workers:
            worker.start()

    def process_request(self, request, client_address) -> None:
        self._accepted.put((request, client_address))

    def _work(self) -> None:
        while (item := self._accepted.get()) is not None:
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        for _ in self._workers:
            self._accepted.put(None)  # after every accepted request: those are answered first
        for worker in self._workers:
            worker.join(timeout=REQUEST_TIMEOUT_SECONDS)


class HttpServer:
    """Serves `app` on host:port (port 0 picks a free one) from a background thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = PooledWSGIServer((host, port), _QuietHandler)
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
