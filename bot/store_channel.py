"""Webhook workers store through the main process: one group commit for every process.

With `[server] workers` > 1 each worker verifies, parses and routes its deliveries, then hands
the parsed batch to the main process over a Unix stream socket of its own, and answers Meta
only once the main process says the batch is committed. The main process runs the one group
commit (`storage.group_commit`) for all of them.

Why not a group commit in each worker: a database has one writer at a time (SQLite's lock; on
the servers, the index rows every delivery merges into). Writers in several processes take
turns, each transaction is held longer while its process's interpreter serves HTTP on the
other threads, and each turn starts with a cache the other process made stale. Measured
(`tests.benchmarks.ingest_workers`): workers without storage serve about 2.5 times what
workers that each commit do. In the main process, whose threads otherwise run the jobs, the
commits of every worker fold into one stream of transactions.

The protocol, both ways: frames of a 12-byte header (payload length, request id; big-endian)
and a JSON payload. Requests carry the parsed batch, record by record and field by field (not
a pickle: a pickle can do more than build the records, and the main process must not trust a
worker that far). Replies: `{"ok": [five counts]}`, `{"unavailable": reason}` (the webhook
answers 503, Meta redelivers) or `{"failed": reason}`. Request id 0 is a notice that needs no
reply: `{"ready": pid}`, sent once the worker serves, so the main process tells systemd
READY=1 only when the port answers.

Nothing is weakened: the reply comes after the commit. A worker that hears nothing within its
bound answers 503, and its batch may still commit; Meta's redelivery then adds nothing, as
after any group commit a caller gave up on.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from bot.logs import get_logger
from bot.rules import events
from storage.db import StorageUnavailable
from storage.ingest import StoreResult

log = get_logger(__name__)

_HEADER = struct.Struct(">IQ")
_NOTICE = 0
"""The request id of a notice (no reply); requests count from 1."""
MAX_FRAME_BYTES = 64 * 1024 * 1024
"""A parsed 3 MB body encodes to a few MB; a frame past this is a broken peer."""
MAX_PENDING = 4096
"""Batches the main process holds for commit at once; past it (a database that stopped
answering) workers hear "unavailable" at once instead of queueing without end."""

StoreBatch = Callable[[events.ParsedBatch], StoreResult]
StoreAsync = Callable[[events.ParsedBatch, Callable[[StoreResult | None, BaseException | None], None]], None]


class ChannelClosed(ConnectionError):
    """The other end closed the channel."""


class FrameTooLarge(ValueError):
    """A header announced more than MAX_FRAME_BYTES: the peer is broken; the channel ends."""


# -- framing -------------------------------------------------------------------------------


def _send(sock: socket.socket, lock: threading.Lock, request_id: int, payload: bytes) -> None:
    with lock:
        sock.sendall(_HEADER.pack(len(payload), request_id) + payload)


def _receive(sock: socket.socket) -> tuple[int, bytes]:
    length, request_id = _HEADER.unpack(_exactly(sock, _HEADER.size))
    if length > MAX_FRAME_BYTES:
        raise FrameTooLarge(f"a frame of {length} bytes (at most {MAX_FRAME_BYTES})")
    return request_id, _exactly(sock, length)


def _exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = sock.recv(min(size - len(buffer), 1 << 20))
        if not chunk:
            raise ChannelClosed("the other end closed the channel")
        buffer += chunk
    return bytes(buffer)


def encode_batch(batch: events.ParsedBatch) -> bytes:
    """JSON of the batch's records, field by field (their `raw` parts came from JSON)."""
    return json.dumps(
        {kind: [_fields(record) for record in getattr(batch, kind)] for kind in _RECORDS},
        separators=(",", ":"),
    ).encode()


def decode_batch(payload: bytes) -> events.ParsedBatch:
    """The batch `encode_batch` made.

    Raises:
        ValueError: not JSON, or not records of exactly the fields each kind has.
    """
    document = json.loads(payload)
    if not isinstance(document, dict) or set(document) != set(_RECORDS):
        raise ValueError("not a parsed batch")
    parts: dict[str, tuple[Any, ...]] = {}
    for kind, record in _RECORDS.items():
        items = document[kind]
        if not isinstance(items, list):
            raise ValueError(f"{kind} is not a list")
        parts[kind] = tuple(_record(record, item) for item in items)
    return events.ParsedBatch(**parts)


_RECORDS: dict[str, type] = {
    "messages": events.InboundMessage,
    "statuses": events.StatusEvent,
    "others": events.OtherEvent,
    "contacts": events.ContactSync,
}
_TUPLE_FIELDS = {"errors"}
"""Fields the records hold as tuples (JSON brings them back as lists)."""


def _fields(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _record(record: type, item: object) -> Any:
    names = {f.name for f in dataclasses.fields(record)}
    if not isinstance(item, dict) or set(item) != names:
        raise ValueError(f"not a {record.__name__}")
    for name in _TUPLE_FIELDS & names:
        if not isinstance(item[name], list):
            raise ValueError(f"{record.__name__}.{name} is not a list")
        item[name] = tuple(item[name])
    return record(**item)


def _reply(result: StoreResult | None, error: BaseException | None) -> bytes:
    if error is None and result is not None:
        counts = [
            result.messages_new,
            result.messages_duplicate,
            result.statuses_new,
            result.others_new,
            result.contacts_applied,
        ]
        return json.dumps({"ok": counts}).encode()
    if isinstance(error, StorageUnavailable):
        return json.dumps({"unavailable": str(error)}).encode()
    return json.dumps({"failed": f"{type(error).__name__}: {error}"}).encode()


def _result(payload: bytes) -> StoreResult:
    reply = json.loads(payload)
    if "ok" in reply:
        return StoreResult(*(int(n) for n in reply["ok"]))
    if "unavailable" in reply:
        raise StorageUnavailable(str(reply["unavailable"]))
    raise RuntimeError(f"the main process could not store the delivery: {reply.get('failed')}")


# -- the worker's end ----------------------------------------------------------------------


class StoreClient:
    """A worker's `store`: sends each batch to the main process and waits for its commit.

    Safe from every HTTP thread at once: requests are numbered, and one reader thread hands
    each reply to the thread that waits for it.

    Args:
        sock: the worker's end of its channel.
        wait_seconds: the longest a request waits for its reply; then StorageUnavailable.
        on_closed: told why, once, if the channel ends without `close()`: the worker can
            store nothing more, and should exit so that its supervisor starts a fresh one.
    """

    def __init__(
        self, sock: socket.socket, wait_seconds: float, on_closed: Callable[[str], None] | None = None
    ) -> None:
        self._sock = sock
        self._wait = wait_seconds
        self._on_closed = on_closed
        self._closing = False
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, Future[StoreResult]] = {}
        self._lock = threading.Lock()
        self._closed: str | None = None
        self._reader = threading.Thread(target=self._read, name="store-channel", daemon=True)
        self._reader.start()

    def store(self, batch: events.ParsedBatch) -> StoreResult:
        """Raises:
        StorageUnavailable: the main process said so, did not answer in time, or is gone.
        RuntimeError: the main process failed to store it for another reason.
        """
        if batch.empty:
            return StoreResult(0, 0, 0, 0)
        payload = encode_batch(batch)
        request_id = next(self._ids)
        answer: Future[StoreResult] = Future()
        with self._lock:
            if self._closed is not None:
                raise StorageUnavailable(f"the main process is not answering: {self._closed}")
            self._waiting[request_id] = answer
        try:
            _send(self._sock, self._send_lock, request_id, payload)
            return answer.result(timeout=self._wait)
        except FutureTimeout:
            raise StorageUnavailable(f"the main process did not commit within {self._wait:g}s") from None
        except OSError as exc:
            raise StorageUnavailable(f"the main process is not answering: {exc}") from exc
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)

    def ready(self, pid: int) -> None:
        """Tell the main process this worker serves (a notice: no reply)."""
        _send(self._sock, self._send_lock, _NOTICE, json.dumps({"ready": pid}).encode())

    def close(self) -> None:
        self._closing = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    def _read(self) -> None:
        reason = "closed"
        try:
            while True:
                request_id, payload = _receive(self._sock)
                with self._lock:
                    answer = self._waiting.get(request_id)
                if answer is None:  # its thread gave up already
                    continue
                try:
                    answer.set_result(_result(payload))
                except Exception as exc:
                    answer.set_exception(exc)
        except (OSError, ValueError, struct.error) as exc:
            reason = str(exc) or type(exc).__name__
        with self._lock:
            self._closed = reason
            waiting, self._waiting = list(self._waiting.values()), {}
        for answer in waiting:
            if not answer.done():
                answer.set_exception(StorageUnavailable(f"the main process is not answering: {reason}"))
        if self._on_closed is not None and not self._closing:
            self._on_closed(reason)


# -- the main process's end ----------------------------------------------------------------


class StoreService:
    """Commits what every worker sends, through the main process's `Ingest`.

    Args:
        store_async: `Ingest.store_batch_async` of the main process's storage.
        on_stored: told of each committed batch (the main process's inbox and outbox nudges).
        on_ready: told the pid of each worker that says it serves.
    """

    def __init__(
        self,
        store_async: StoreAsync,
        on_stored: Callable[[StoreResult], None],
        on_ready: Callable[[int], None],
    ) -> None:
        self._store_async = store_async
        self._on_stored = on_stored
        self._on_ready = on_ready
        self._lock = threading.Lock()
        self._pending = 0
        self._channels: set[socket.socket] = set()

    def attach(self, sock: socket.socket, worker: int) -> None:
        """Serve one worker's channel from a thread of its own, until the worker closes it."""
        with self._lock:
            self._channels.add(sock)
        threading.Thread(
            target=self._serve, args=(sock, worker), name=f"store-channel-{worker}", daemon=True
        ).start()

    def close(self) -> None:
        with self._lock:
            channels = list(self._channels)
        for sock in channels:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self, sock: socket.socket, worker: int) -> None:
        send_lock = threading.Lock()
        try:
            while True:
                request_id, payload = _receive(sock)
                if request_id == _NOTICE:
                    self._notice(payload, worker)
                else:
                    self._take(sock, send_lock, request_id, payload)
        except ChannelClosed:
            pass
        except (OSError, ValueError, struct.error) as exc:
            log.warning("store_channel_closed", worker=worker, error=str(exc))
        finally:
            with self._lock:
                self._channels.discard(sock)
            sock.close()

    def _notice(self, payload: bytes, worker: int) -> None:
        try:
            pid = json.loads(payload)["ready"]
        except (ValueError, TypeError, KeyError, RecursionError):
            pid = None
        if type(pid) is not int:
            log.warning("store_channel_bad_notice", worker=worker)
            return
        self._on_ready(pid)

    def _take(self, sock: socket.socket, send_lock: threading.Lock, request_id: int, payload: bytes) -> None:
        def answer(result: StoreResult | None, error: BaseException | None) -> None:
            with self._lock:
                self._pending -= 1
            if result is not None and error is None:
                try:
                    self._on_stored(result)
                except Exception:  # a nudge that failed costs a sweep's wait, never the reply
                    log.exception("store_channel_nudge_failed")
            try:
                _send(sock, send_lock, request_id, _reply(result, error))
            except OSError:
                pass  # the worker is gone; Meta redelivers what it did not hear 200 for

        try:
            batch = decode_batch(payload)
        except Exception as exc:
            log.error("store_channel_bad_frame", error=f"{type(exc).__name__}: {exc}")
            _send_quietly(sock, send_lock, request_id, _reply(None, exc))
            return
        with self._lock:
            full = self._pending >= MAX_PENDING
            if not full:
                self._pending += 1
        if full:
            busy = StorageUnavailable(f"{MAX_PENDING} deliveries already wait for the database")
            _send_quietly(sock, send_lock, request_id, _reply(None, busy))
            return
        try:
            self._store_async(batch, answer)
        except Exception as exc:
            answer(None, exc)


def _send_quietly(sock: socket.socket, lock: threading.Lock, request_id: int, payload: bytes) -> None:
    try:
        _send(sock, lock, request_id, payload)
    except OSError:
        pass
