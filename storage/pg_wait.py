"""A time limit on every wait of a PostgreSQL connection (storage.db installs it).

libpq waits for the server without one: connect_timeout covers only its blocking handshake,
statement_timeout is enforced by a server that may be the very thing that hung, and TCP
keepalives and tcp_user_timeout notice a dead peer only once its kernel stops answering too
(a frozen server, or a firewall that drops only one direction, keeps acknowledging). psycopg2
lets one callback do every wait instead (its "green" mode); ours polls the socket and gives
up when the connection's `round_trip_seconds` has passed.
"""

from __future__ import annotations

import functools
import os
import select
import socket
import time

try:
    import psycopg2
    import psycopg2.extensions
except ImportError:  # pragma: no cover - psycopg2-binary is a pinned dependency
    psycopg2 = None


@functools.cache
def connection_class(seconds: float) -> type:
    """A psycopg2 connection class (`connection_factory`) whose handshake waits `seconds` at
    most; each instance may set its own `round_trip_seconds` for the statements after it."""
    return type("BoundedConnection", (psycopg2.extensions.connection,), {"round_trip_seconds": seconds})


def install() -> None:
    """Make `wait` psycopg2's wait callback (process-wide; nothing else here sets one)."""
    if psycopg2.extensions.get_wait_callback() is None:
        psycopg2.extensions.set_wait_callback(wait)


def wait(conn: psycopg2.extensions.connection) -> None:
    """Poll `conn`'s socket until libpq is done, or its bound has passed.

    Connections made elsewhere (no `round_trip_seconds`) wait as long as it takes, as they
    would without a callback.

    Raises:
        psycopg2.OperationalError: no answer within the bound; the connection is dead now.
    """
    seconds = getattr(conn, "round_trip_seconds", None)
    deadline = None if seconds is None else time.monotonic() + seconds
    poller = select.poll()  # not select(): a busy daemon may hold descriptors past 1024
    registered = None
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        events = select.POLLIN if state == psycopg2.extensions.POLL_READ else select.POLLOUT
        if events != registered:
            poller.register(conn.fileno(), events)  # registering again modifies
            registered = events
        if deadline is None:
            poller.poll()
            continue
        left = deadline - time.monotonic()
        if (left <= 0 or not poller.poll(left * 1000)) and time.monotonic() >= deadline:
            _hang_up(conn.fileno())
            raise psycopg2.OperationalError(f"the database did not answer within {seconds:g}s")


def _hang_up(fd: int) -> None:
    """End the connection at the socket, under libpq: whatever it does next fails at once
    (its rollback too) instead of waiting on the same silent server again."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
