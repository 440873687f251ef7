"""The HTTP server: whole requests buffered by the intake loop, answered by a fixed pool.

Slow, silent and trickling clients must never hold a worker or delay anyone else; every
request already received is answered on shutdown; the server's own errors are log events.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest
from structlog.testing import capture_logs

from bot.http.server import HttpServer, connection_limit


def _app_waiting_for(gate: threading.Event, entered: list[str]):
    def app(environ, start_response):
        entered.append(environ["PATH_INFO"])
        gate.wait(10)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["PATH_INFO"].encode() + environ["wsgi.input"].read(length)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def _open_gate():
    gate = threading.Event()
    gate.set()
    return gate


def _get(port: int, path: str, out: dict, body: bytes | None = None) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST" if body is not None else "GET", path, body=body)
        resp = conn.getresponse()
        out[path] = (resp.status, resp.read())
    except OSError as exc:
        out[path] = ("error", exc)
    finally:
        conn.close()


def _timed_get(port: int, path: str, body: bytes | None = None) -> tuple[object, float]:
    out: dict = {}
    t0 = time.monotonic()
    _get(port, path, out, body)
    return out[path], time.monotonic() - t0


@pytest.fixture
def serve():
    servers: list[HttpServer] = []

    def start(app, **options) -> HttpServer:
        server = HttpServer(app, **options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(grace_seconds=2)


def test_requests_are_served_concurrently_by_the_pool(serve):
    gate, entered = threading.Event(), []
    server = serve(_app_waiting_for(gate, entered))
    out: dict = {}
    clients = [threading.Thread(target=_get, args=(server.port, f"/r{n}", out)) for n in range(6)]
    try:
        for c in clients:
            c.start()
        deadline = time.monotonic() + 5
        while len(entered) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(entered) == 6  # all six inside the app at once: none waits for another
    finally:
        gate.set()
        for c in clients:
            c.join(10)
    assert out == {f"/r{n}": (200, f"/r{n}".encode()) for n in range(6)}


def test_a_body_arriving_in_pieces_reaches_the_app_whole(serve):
    server = serve(_app_waiting_for(_open_gate(), []))
    body = b"0123456789" * 1000
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        for start in range(0, len(body), 3000):
            time.sleep(0.05)
            sock.sendall(body[start : start + 3000])
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"/p" + body)


def test_stop_answers_every_request_already_received(serve):
    gate, entered = threading.Event(), []
    server = HttpServer(_app_waiting_for(gate, entered), workers=2)
    server.start()
    out: dict = {}
    clients = [threading.Thread(target=_get, args=(server.port, f"/q{n}", out)) for n in range(5)]
    for c in clients:
        c.start()
    deadline = time.monotonic() + 5
    while len(entered) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the other three are received and queued behind the two busy workers
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    time.sleep(0.2)
    gate.set()
    stopper.join(15)
    for c in clients:
        c.join(10)
    assert out == {f"/q{n}": (200, f"/q{n}".encode()) for n in range(5)}


def test_stop_returns_within_its_grace_even_if_the_app_hangs():
    gate = threading.Event()
    server = HttpServer(_app_waiting_for(gate, []), workers=1)
    server.start()
    threading.Thread(target=_get, args=(server.port, "/hang", {}), daemon=True).start()
    time.sleep(0.3)
    t0 = time.monotonic()
    server.stop(grace_seconds=0.5)
    assert time.monotonic() - t0 < 1.5
    gate.set()


def test_a_silent_client_never_holds_the_only_worker_and_is_closed_at_the_deadline(serve):
    server = serve(_app_waiting_for(_open_gate(), []), workers=1, request_timeout=1.0)
    silent = socket.create_connection(("127.0.0.1", server.port))
    try:
        time.sleep(0.1)
        result, took = _timed_get(server.port, "/after")
        assert result == (200, b"/after") and took < 0.5  # not after the silent client's deadline
        silent.settimeout(3)
        t0 = time.monotonic()
        assert _read_all(silent).startswith(b"HTTP/1.0 408")
        assert 0.5 < time.monotonic() - t0 < 2.5
    finally:
        silent.close()


def test_a_trickling_client_is_closed_at_the_deadline_however_busy_it_looks(serve):
    server = serve(_app_waiting_for(_open_gate(), []), request_timeout=1.0)
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /slow HTTP/1.1\r\n")
    t0 = time.monotonic()
    closed = False
    try:
        while time.monotonic() - t0 < 4:
            try:
                sock.sendall(b"X-Drip: 1\r\n")
            except OSError:
                closed = True
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(100) is not None:
                    closed = True
                    break
            except TimeoutError:
                pass
    finally:
        sock.close()
    assert closed and time.monotonic() - t0 < 2.5


def test_idle_and_trickling_crowds_do_not_delay_a_request(serve):
    server = serve(_app_waiting_for(_open_gate(), []), workers=4, request_timeout=5.0)
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(64)]
    tricklers = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(16)]
    try:
        for sock in tricklers:
            sock.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):
            for sock in tricklers:
                sock.sendall(b"X-Drip: 1\r\n")
            result, took = _timed_get(server.port, "/webhook", body=b"{}")
            assert result == (200, b"/webhook{}") and took < 0.5
            time.sleep(0.3)
    finally:
        for sock in idle + tricklers:
            sock.close()


def test_past_the_connection_limit_the_longest_waiting_is_dropped(serve):
    server = serve(_app_waiting_for(_open_gate(), []), max_connections=8, request_timeout=30)
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(8)]
    try:
        time.sleep(0.2)
        result, took = _timed_get(server.port, "/in")
        assert result == (200, b"/in") and took < 1
        idle[0].settimeout(2)
        assert _read_all(idle[0]).startswith(b"HTTP/1.0 408")  # the oldest made room
    finally:
        for sock in idle:
            sock.close()


def test_a_declared_body_over_the_limit_is_not_buffered(serve):
    seen: list[int] = []

    def app(environ, start_response):
        seen.append(len(environ["wsgi.input"].read()))
        start_response("413 Content Too Large", [("Content-Length", "0")])
        return [b""]

    server = serve(app, max_body_bytes=1024)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /big HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n" + b"x" * 100)
        assert _read_all(sock).startswith(b"HTTP/1.0 413")
    assert seen == [0]


def test_headers_over_64_kib_get_431(serve):
    server = serve(_app_waiting_for(_open_gate(), []))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 70000)
        assert _read_all(sock).startswith(b"HTTP/1.0 431")


def test_a_malformed_request_line_gets_400_from_wsgiref(serve):
    server = serve(_app_waiting_for(_open_gate(), []))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET / / HTTP/1.1\r\n\r\n")
        assert _read_all(sock).split(b" ")[1] == b"400"


def test_expect_100_continue_is_answered_before_the_body(serve):
    server = serve(_app_waiting_for(_open_gate(), []))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /e HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        sock.settimeout(2)
        assert sock.recv(100).startswith(b"HTTP/1.1 100")
        sock.sendall(b"ok")
        assert _read_all(sock).endswith(b"/eok")


def test_a_failing_response_is_one_log_event_not_a_traceback_on_stderr(serve, capfd):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        raise RuntimeError("boom")

    server = serve(app)
    with capture_logs() as logs:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            _read_all(sock)
        time.sleep(0.2)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["http_response_failed"]
    assert "Traceback" not in capfd.readouterr().err


def test_the_connection_limit_leaves_descriptors_for_everything_else(monkeypatch):
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    assert connection_limit() == 1024 - 256
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (65536, 65536))
    assert connection_limit() == 4096
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (100, 100))
    assert connection_limit() == 16


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(sock.gettimeout() or 5)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
