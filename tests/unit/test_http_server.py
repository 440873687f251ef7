"""The pooled wsgiref server: concurrent requests, answers before shutdown, silent clients dropped."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest

from bot.http import server as server_module
from bot.http.server import HttpServer


def _app_waiting_for(gate: threading.Event, entered: list[str]):
    def app(environ, start_response):
        entered.append(environ["PATH_INFO"])
        gate.wait(10)
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def _get(port: int, path: str, out: dict) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        out[path] = (resp.status, resp.read())
    except OSError as exc:
        out[path] = ("error", exc)
    finally:
        conn.close()


def test_requests_are_served_concurrently_by_the_pool():
    gate, entered = threading.Event(), []
    server = HttpServer(_app_waiting_for(gate, entered))
    server.start()
    out: dict = {}
    clients = [threading.Thread(target=_get, args=(server.port, f"/r{n}", out)) for n in range(6)]
    try:
        for c in clients:
            c.start()
        deadline = time.monotonic() + 5
        while len(entered) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(entered) == 6  # all six inside the app at once: none waits for another
        gate.set()
        for c in clients:
            c.join(10)
    finally:
        gate.set()
        server.stop()
    assert out == {f"/r{n}": (200, f"/r{n}".encode()) for n in range(6)}


def test_stop_answers_every_request_already_accepted(monkeypatch):
    monkeypatch.setattr(server_module, "WORKERS", 2)
    gate, entered = threading.Event(), []
    server = HttpServer(_app_waiting_for(gate, entered))
    server.start()
    out: dict = {}
    clients = [threading.Thread(target=_get, args=(server.port, f"/q{n}", out)) for n in range(5)]
    for c in clients:
        c.start()
    deadline = time.monotonic() + 5
    while len(entered) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the other three are accepted and queued behind the two busy workers
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    time.sleep(0.2)
    gate.set()
    stopper.join(15)
    for c in clients:
        c.join(10)
    assert out == {f"/q{n}": (200, f"/q{n}".encode()) for n in range(5)}


def test_a_client_that_sends_nothing_is_dropped_and_frees_its_worker(monkeypatch):
    monkeypatch.setattr(server_module._QuietHandler, "timeout", 0.3)
    monkeypatch.setattr(server_module, "WORKERS", 1)
    gate, entered = threading.Event(), []
    gate.set()
    server = HttpServer(_app_waiting_for(gate, entered))
    server.start()
    try:
        silent = socket.create_connection(("127.0.0.1", server.port))
        out: dict = {}
        t0 = time.monotonic()
        _get(server.port, "/after", out)  # the only worker is held by the silent client first
        assert out["/after"] == (200, b"/after")
        assert time.monotonic() - t0 < 5
        silent.settimeout(2)
        assert silent.recv(100) == b""  # the server closed it
        silent.close()
    finally:
        server.stop()


@pytest.mark.parametrize("workers", [1, 3])
def test_pool_size_comes_from_workers(monkeypatch, workers):
    monkeypatch.setattr(server_module, "WORKERS", workers)
    server = HttpServer(lambda e, s: [])
    server.start()
    try:
        assert len(server._server._workers) == workers
    finally:
        server.stop()
