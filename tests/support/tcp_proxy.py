"""A loopback TCP forwarder a test can break on demand: a database outage, or a hung network.

`cut` is an outage the client notices (connections reset, new ones refused). `blackhole` is
one it does not: every socket stays open and accepts bytes, and nothing comes back, as when
a firewall starts dropping packets or the server's host freezes. `resume` lets the held
bytes through in order (TCP would have retransmitted them), so what a client wrote during
the hang reaches the server late, as it would over a real network that heals.
"""

from __future__ import annotations

import socket
import struct
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False

    def start(self) -> TcpProxy:
        self._listener.listen(64)
        self._up.set()
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if not self._up.is_set():
                    client.close()  # cut: the server is "down"
                    continue
                self._conns.append(client)
            threading.Thread(target=self._open, args=(client,), daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        # Blackholed, a new connection is accepted and then hears nothing: the client's
        # handshake waits in the socket until the network "heals".
        self._flowing.wait()
        try:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)  # an idle connection is not a dead one
        except OSError:
            self._close_quietly(client)
            return
        with self._lock:
            if not self._up.is_set() or client not in self._conns:  # cut meanwhile
                self._close_quietly(client)
                self._close_quietly(upstream)
                return
            self._conns.append(upstream)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                # Blackholed: hold what was read (the rest waits in the kernel), and hold an
                # end of stream too, so the far side never learns that this side gave up.
                self._flowing.wait()
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @staticmethod
    def _close_quietly(s: socket.socket) -> None:
        try:
            s.close()
        except OSError:
            pass

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        with self._lock:
            self._up.clear()
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv(); close() alone does not
            except OSError:
                pass
            self._close_quietly(s)

    def restore(self) -> None:
        """Undo `cut`: accept and forward new connections again."""
        self._up.set()

    def blackhole(self) -> None:
        """Stop forwarding bytes both ways, closing nothing: a hung network or server."""
        self._flowing.clear()

    def resume(self) -> None:
        """Undo `blackhole`: forward what was held, then everything as before."""
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._flowing.set()  # release held threads; their sockets are closed now
        self._listener.close()
