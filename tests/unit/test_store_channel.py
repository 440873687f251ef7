"""The store channel: workers' batches reach the main process's commit, and each worker thread
hears its own outcome, in time, whatever the other end does."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial

import pytest

import bot.store_channel as store_channel
from bot.rules import events
from bot.store_channel import StoreClient, StoreService, decode_batch, encode_batch
from storage.db import StorageUnavailable
from storage.ingest import StoreResult

Done = Callable[[StoreResult | None, BaseException | None], None]
Plan = Callable[[events.ParsedBatch, Done], None]

HEADER = struct.Struct(">IQ")  # the channel's frame header: payload length, request id


# -- records -------------------------------------------------------------------------------------


def message(wamid: str, text: str = "hola", **raw: object) -> events.InboundMessage:
    return events.InboundMessage(
        wamid=wamid,
        conversation_key="+525512345678",
        wa_id="5215512345678",
        user_id=None,
        phone_number_id="100200300",
        display_phone_number="+1 555 0100",
        profile_name="Ana",
        timestamp=1_700_000_000,
        kind="text",
        raw={"id": wamid, "type": "text", "text": {"body": text}, **raw},
    )


def batch_of(*wamids: str) -> events.ParsedBatch:
    return events.ParsedBatch(messages=tuple(message(w) for w in wamids))


def full_batch() -> events.ParsedBatch:
    """One record of every kind, with raw data as awkward as Meta's."""
    awkward = {
        "nested": [[1, [2, [3, []]]], {"a": [None, True, False]}],
        "unicode": "ñandú — 日本語 — عربى — 🧉👍🏽",
        "surrogate": "half \ud83d pair",
        "numbers": [0, -1, 2**70, 1.5, -0.0],
        "floats": [0.1, 1e300, 5e-324, -2.5e-10],
        "empty": {"": ""},
    }
    return events.ParsedBatch(
        messages=(
            message("wamid.one", "first 🧉", extra=awkward),
            events.InboundMessage(
                wamid="wamid.two",
                conversation_key="user:US.13491208655302741918",
                wa_id=None,
                user_id="US.13491208655302741918",
                phone_number_id="100200300",
                display_phone_number=None,
                profile_name=None,
                timestamp=1_700_000_001,
                kind="unknown_future_kind",
                raw={"type": "unknown_future_kind", "list": [awkward]},
                origin="echo",
                from_business=True,
            ),
        ),
        statuses=(
            events.StatusEvent(
                wamid="wamid.sent",
                status="failed",
                timestamp=1_700_000_002,
                recipient_id="5215512345678",
                phone_number_id="100200300",
                errors=({"code": 131047, "title": "Re-engagement message", "data": awkward},),
                raw={"status": "failed", "x": awkward},
            ),
        ),
        others=(events.OtherEvent(field="history", dedupe_key="ab" * 32, phone_number_id=None, raw=awkward),),
        contacts=(
            events.ContactSync(
                phone_number_id="100200300",
                conversation_key="+525512345678",
                full_name="Zoë Ñ",
                first_name=None,
                action="add",
                timestamp=1_700_000_003,
                raw={"contact": awkward},
            ),
        ),
    )


# -- the main process's storage, faked ----------------------------------------------------------


def answer_later(result_of: Callable[[events.ParsedBatch], StoreResult]) -> Plan:
    """Commits in another thread, as the group commit's committer does."""

    def plan(batch: events.ParsedBatch, done: Done) -> None:
        threading.Thread(target=done, args=(result_of(batch), None)).start()

    return plan


def fail_later(error: BaseException) -> Plan:
    def plan(batch: events.ParsedBatch, done: Done) -> None:
        threading.Thread(target=done, args=(None, error)).start()

    return plan


def raise_now(error: BaseException) -> Plan:
    def plan(batch: events.ParsedBatch, done: Done) -> None:
        raise error

    return plan


RESULT = StoreResult(messages_new=3, messages_duplicate=1, statuses_new=2, others_new=4, contacts_applied=5)


class FakeStore:
    """`store_async` of the main process: follows `plan`, or holds the callbacks when told to."""

    def __init__(self) -> None:
        self.plan: Plan = answer_later(lambda batch: RESULT)
        self.batches: list[events.ParsedBatch] = []
        self.held: list[tuple[events.ParsedBatch, Done]] = []
        self.holding = False
        self.changed = threading.Condition()

    def __call__(self, batch: events.ParsedBatch, done: Done) -> None:
        with self.changed:
            self.batches.append(batch)
            if self.holding:
                self.held.append((batch, done))
                self.changed.notify_all()
                return
        self.plan(batch, done)

    def wait_held(self, count: int, timeout: float = 5.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.held) >= count, timeout), self.held

    def release(self, result: StoreResult = RESULT) -> None:
        with self.changed:
            held, self.held = self.held, []
        for _, done in held:
            done(result, None)


class Channel:
    def __init__(
        self, fake: FakeStore, wait_seconds: float, worker: int, service: StoreService | None
    ) -> None:
        self.fake = fake
        self.stored: list[StoreResult] = []
        self.ready: list[int] = []
        self.service = service or StoreService(fake, on_stored=self.stored.append, on_ready=self.ready.append)
        self.theirs, self.ours = socket.socketpair()
        self.service.attach(self.ours, worker=worker)
        self.client = StoreClient(self.theirs, wait_seconds=wait_seconds)


@pytest.fixture
def channels() -> Iterator[Callable[..., Channel]]:
    made: list[Channel] = []

    def make(wait_seconds: float = 5.0, worker: int = 1, like: Channel | None = None) -> Channel:
        """`like`: another worker's channel to the same main process."""
        if like is None:
            made.append(Channel(FakeStore(), wait_seconds, worker, None))
        else:
            made.append(Channel(like.fake, wait_seconds, worker, like.service))
        return made[-1]

    yield make
    for c in made:
        c.client.close()
        c.service.close()


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            out["result"] = call()
        except BaseException as exc:
            out["error"] = exc
        out["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def timed(call: Callable[[], object]) -> tuple[dict[str, object], float]:
    thread, out = in_thread(call)
    thread.join(8)
    assert not thread.is_alive(), "the call never returned"
    return out, float(out["seconds"])  # type: ignore[arg-type]


# -- round trips ---------------------------------------------------------------------------------


def test_a_batch_goes_through_and_its_result_comes_back(channels):
    c = channels()
    batch = full_batch()
    assert c.client.store(batch) == RESULT
    assert c.fake.batches == [batch]  # the main process stores what the worker parsed
    assert c.stored == [RESULT]  # and nudges its jobs for it


def test_an_empty_batch_is_not_sent(channels):
    c = channels()
    assert c.client.store(events.ParsedBatch()) == StoreResult(0, 0, 0, 0)
    assert c.fake.batches == [] and c.stored == []


def test_many_threads_each_hear_their_own_result_even_out_of_order(channels):
    c = channels()
    threads, per_thread = 16, 20
    lock = threading.Lock()
    queued: list[tuple[events.ParsedBatch, Done]] = []
    received: list[str] = []
    answered: list[str] = []
    stop = threading.Event()

    def result_of(batch: events.ParsedBatch) -> StoreResult:
        _, t, i = batch.messages[0].wamid.split(".")
        return StoreResult(
            messages_new=len(batch.messages),
            messages_duplicate=int(t),
            statuses_new=int(i),
            others_new=len(batch.others),
            contacts_applied=len(batch.contacts),
        )

    def hold(batch: events.ParsedBatch, done: Done) -> None:
        with lock:
            queued.append((batch, done))
            received.append(batch.messages[0].wamid)

    def answer_shuffled() -> None:  # a committer that finishes them in any order
        while not stop.is_set():
            time.sleep(0.002)
            with lock:
                taken = queued[:]
                queued.clear()
            random.shuffle(taken)
            for batch, done in taken:
                answered.append(batch.messages[0].wamid)
                done(result_of(batch), None)

    c.fake.plan = hold
    responder = threading.Thread(target=answer_shuffled)
    responder.start()
    out: dict[tuple[int, int], object] = {}
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            size = (t + i) % 4 + 1
            batch = batch_of(*[f"wamid.{t}.{i}"] + [f"wamid.{t}.{i}.{k}" for k in range(size - 1)])
            try:
                out[t, i] = c.client.store(batch)
            except BaseException as exc:
                out[t, i] = exc

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join(20)
    finally:
        stop.set()
        responder.join(5)
    expected = {
        (t, i): StoreResult((t + i) % 4 + 1, t, i, 0, 0) for t in range(threads) for i in range(per_thread)
    }
    assert out == expected
    assert Counter(c.stored) == Counter(expected.values())
    assert answered != received  # the replies did come back out of order


# -- errors --------------------------------------------------------------------------------------


def test_storage_unavailable_in_the_main_process_reaches_the_worker_as_such(channels):
    c = channels()
    c.fake.plan = fail_later(StorageUnavailable("x marks the outage"))
    with pytest.raises(StorageUnavailable, match="x marks the outage"):
        c.client.store(batch_of("wamid.a"))
    assert c.stored == []


def test_another_failure_reaches_the_worker_as_a_runtime_error(channels):
    c = channels()
    c.fake.plan = fail_later(ValueError("boom"))
    with pytest.raises(RuntimeError, match="ValueError: boom"):
        c.client.store(batch_of("wamid.a"))
    assert c.stored == []
    c.fake.plan = answer_later(lambda batch: RESULT)
    assert c.client.store(batch_of("wamid.b")) == RESULT


def test_store_async_raising_at_once_gets_an_error_reply_and_the_channel_goes_on(channels):
    c = channels()
    c.fake.plan = raise_now(ValueError("bad rows"))
    with pytest.raises(RuntimeError, match="bad rows"):
        c.client.store(batch_of("wamid.a"))
    c.fake.plan = raise_now(StorageUnavailable("no connection"))
    with pytest.raises(StorageUnavailable, match="no connection"):
        c.client.store(batch_of("wamid.b"))
    c.fake.plan = answer_later(lambda batch: RESULT)
    assert c.client.store(batch_of("wamid.c")) == RESULT
    assert c.stored == [RESULT]


@pytest.mark.parametrize(
    "bad, error",
    [
        (b"{not json", b"JSONDecodeError"),
        (pickle.dumps(events.ParsedBatch(), protocol=2), b"UnicodeDecodeError"),
        (b'{"messages": []}', b"ValueError: not a parsed batch"),
    ],
    ids=["not-json", "pickle", "json-not-a-batch"],
)
def test_a_frame_that_is_not_a_batch_gets_a_failed_reply_and_the_channel_goes_on(bad, error):
    fake = FakeStore()
    service = StoreService(fake, on_stored=lambda result: None, on_ready=lambda pid: None)
    raw, ours = socket.socketpair()
    raw.settimeout(5)
    service.attach(ours, worker=4)
    try:
        raw.sendall(HEADER.pack(len(bad), 11) + bad)
        length, request_id = HEADER.unpack(recv_exactly(raw, HEADER.size))
        assert request_id == 11
        reply = json.loads(recv_exactly(raw, length))
        assert list(reply) == ["failed"]
        assert error in reply["failed"].encode()
        assert fake.batches == []
        good = encode_batch(batch_of("wamid.a"))
        raw.sendall(HEADER.pack(len(good), 12) + good)
        length, request_id = HEADER.unpack(recv_exactly(raw, HEADER.size))
        assert request_id == 12
        assert recv_exactly(raw, length) == b'{"ok": [3, 1, 2, 4, 5]}'
        assert fake.batches == [batch_of("wamid.a")]
    finally:
        raw.close()
        service.close()


def test_a_frame_that_is_not_json_is_a_runtime_error_at_the_client_and_the_channel_goes_on(
    channels, monkeypatch
):
    c = channels()
    monkeypatch.setattr(store_channel, "encode_batch", lambda batch: b"\x00\x01 not json {")
    with pytest.raises(RuntimeError, match="could not store the delivery"):
        c.client.store(batch_of("wamid.a"))
    assert c.fake.batches == [] and c.stored == []
    monkeypatch.undo()
    assert c.client.store(batch_of("wamid.b")) == RESULT
    assert c.fake.batches == [batch_of("wamid.b")]
    assert c.stored == [RESULT]


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the other end closed the channel"
        data += chunk
    return data


# -- bounded waits -------------------------------------------------------------------------------


def test_a_reply_that_never_comes_is_unavailable_after_the_wait_and_a_late_one_is_ignored(channels):
    c = channels(wait_seconds=0.2)
    c.fake.holding = True
    out, seconds = timed(lambda: c.client.store(batch_of("wamid.late")))
    assert isinstance(out.get("error"), StorageUnavailable), out
    assert "0.2s" in str(out["error"])
    assert 0.2 <= seconds < 1.0
    c.fake.holding = False
    c.fake.release(StoreResult(9, 9, 9, 9, 9))  # the late reply, for a request nobody waits for
    second = StoreResult(1, 0, 0, 0, 0)
    c.fake.plan = answer_later(lambda batch: second)
    assert c.client.store(batch_of("wamid.next")) == second
    assert c.client.store(batch_of("wamid.after")) == second


def test_closing_the_service_fails_waiting_and_later_calls_at_once(channels):
    c = channels(wait_seconds=5)
    c.fake.holding = True
    waiting = [in_thread(partial(c.client.store, batch_of(f"wamid.{n}"))) for n in range(3)]
    c.fake.wait_held(3)
    closed_at = time.monotonic()
    c.service.close()
    for thread, _ in waiting:
        thread.join(5)
    assert time.monotonic() - closed_at < 2.0  # not the 5 s wait
    for _, out in waiting:
        assert isinstance(out.get("error"), StorageUnavailable), out
    out, seconds = timed(lambda: c.client.store(batch_of("wamid.later")))
    assert isinstance(out.get("error"), StorageUnavailable), out
    assert seconds < 1.0
    assert len(c.fake.batches) == 3  # the later call never reached the service
    c.fake.release()  # the commits end after the channel is gone: nothing to answer, no error


def test_a_main_process_that_is_gone_fails_calls_at_once():
    theirs, ours = socket.socketpair()
    client = StoreClient(theirs, wait_seconds=5)
    try:
        ours.close()
        for n in range(3):
            out, seconds = timed(partial(client.store, batch_of(f"wamid.{n}")))
            assert isinstance(out.get("error"), StorageUnavailable), out
            assert seconds < 1.0
    finally:
        client.close()


# -- the channel's bounds ------------------------------------------------------------------------


def test_a_frame_declared_too_long_closes_the_channel_without_reading_its_body():
    fake = FakeStore()
    service = StoreService(fake, on_stored=lambda result: None, on_ready=lambda pid: None)
    raw, ours = socket.socketpair()
    raw.settimeout(5)
    service.attach(ours, worker=9)
    [serving] = [t for t in threading.enumerate() if t.name == "store-channel-9"]
    try:
        # No body follows: a service that tried to read one would wait for ever.
        raw.sendall(HEADER.pack(store_channel.MAX_FRAME_BYTES + 1, 1))
        serving.join(5)
        assert not serving.is_alive()
        assert raw.recv(1) == b""  # closed
        assert fake.batches == []
    finally:
        raw.close()


def test_a_client_whose_frame_is_too_long_hears_unavailable(channels, monkeypatch):
    c = channels(wait_seconds=5)
    monkeypatch.setattr(store_channel, "MAX_FRAME_BYTES", 200)
    big = batch_of(*(f"wamid.{n}" for n in range(20)))
    assert len(encode_batch(big)) > 200
    out, seconds = timed(lambda: c.client.store(big))
    assert isinstance(out.get("error"), StorageUnavailable), out
    assert seconds < 2.0
    assert c.fake.batches == []


def test_past_max_pending_requests_are_unavailable_at_once_until_commits_end(channels, monkeypatch):
    monkeypatch.setattr(store_channel, "MAX_PENDING", 2)
    one = channels(wait_seconds=5, worker=1)
    two = channels(wait_seconds=5, worker=2, like=one)  # the bound is the main process's, shared
    fake = one.fake
    fake.holding = True
    first = in_thread(lambda: one.client.store(batch_of("wamid.1")))
    fake.wait_held(1)
    second = in_thread(lambda: two.client.store(batch_of("wamid.2")))
    fake.wait_held(2)
    for c in (one, two):
        out, seconds = timed(partial(c.client.store, batch_of("wamid.3")))
        assert isinstance(out.get("error"), StorageUnavailable), out
        assert "2 deliveries" in str(out["error"])
        assert seconds < 1.0
    assert len(fake.batches) == 2  # refused before store_async was asked
    fake.release()
    for thread, out in (first, second):
        thread.join(5)
        assert out.get("result") == RESULT, out
    # Room again: two more are held, a third refused, and all is well once they end.
    again = [in_thread(partial(one.client.store, batch_of(f"wamid.again.{n}"))) for n in range(2)]
    fake.wait_held(2)
    with pytest.raises(StorageUnavailable):
        two.client.store(batch_of("wamid.refused"))
    fake.release()
    for thread, out in again:
        thread.join(5)
        assert out.get("result") == RESULT, out
    fake.holding = False
    assert one.client.store(batch_of("wamid.last")) == RESULT


# -- what a frame may hold -----------------------------------------------------------------------

KINDS = {
    "messages": events.InboundMessage,
    "statuses": events.StatusEvent,
    "others": events.OtherEvent,
    "contacts": events.ContactSync,
}
CLASSES = (events.ParsedBatch, *KINDS.values())

RAN: list[object] = []


def mark(what: object) -> None:
    RAN.append(what)


class CallsMark:
    def __reduce__(self):
        return (mark, ("ran",))


class CallsPrint:
    def __reduce__(self):
        return (print, ("printed by a pickle",))


# BUILD with a (None, {name: value}) state sets attributes on whatever object precedes it: here
# the record class itself. Under pickle.loads this sets `ParsedBatch.empty = True`, which would
# make the main process answer "stored" for every later batch while storing nothing.
REWRITE_EMPTY = b"\x80\x02cbot.rules.events\nParsedBatch\nN}X\x05\x00\x00\x00empty\x88s\x86b."

PICKLES = {
    **{f"reduce-mark-{p}": pickle.dumps(CallsMark(), protocol=p) for p in (0, 2, pickle.HIGHEST_PROTOCOL)},
    **{f"reduce-print-{p}": pickle.dumps(CallsPrint(), protocol=p) for p in (0, 2, pickle.HIGHEST_PROTOCOL)},
    "hidden-in-a-batch": pickle.dumps(
        events.ParsedBatch(messages=(message("wamid.a", nested={"deep": [CallsMark()]}),)),
        protocol=pickle.HIGHEST_PROTOCOL,
    ),
    "class-rewrite": REWRITE_EMPTY,
    **{
        f"honest-batch-{p}": pickle.dumps(events.ParsedBatch(), protocol=p)
        for p in (0, 2, pickle.HIGHEST_PROTOCOL)
    },
    "global-eval": b"cbuiltins\neval\n.",
}


@pytest.fixture
def ran() -> Iterator[list[object]]:
    RAN.clear()
    yield RAN
    RAN.clear()


@pytest.fixture
def classes_kept(monkeypatch) -> Iterator[None]:
    """The record classes end as they began (and are put back if a test changed them)."""
    before = [dict(cls.__dict__) for cls in CLASSES]
    for cls, attributes in zip(CLASSES, before, strict=True):
        for name, value in attributes.items():
            if name not in ("__dict__", "__weakref__", "__doc__"):
                monkeypatch.setattr(cls, name, value)
    yield
    after = [dict(cls.__dict__) for cls in CLASSES]
    assert after == before
    assert isinstance(events.ParsedBatch.__dict__["empty"], property)
    assert not batch_of("wamid.a").empty
    assert events.ParsedBatch().empty


def test_the_pickles_refused_below_are_live(ran, capsys, monkeypatch):
    """Under pickle.loads each would do its harm: the refusals below are of real attacks."""
    assert pickle.loads(PICKLES["reduce-mark-2"]) is None and ran == ["ran"]
    pickle.loads(PICKLES["reduce-print-2"])
    assert "printed by a pickle" in capsys.readouterr().out
    monkeypatch.setattr(events.ParsedBatch, "empty", events.ParsedBatch.__dict__["empty"])  # put back after
    pickle.loads(REWRITE_EMPTY)
    assert events.ParsedBatch.__dict__["empty"] is True
    assert batch_of("wamid.a").empty


@pytest.mark.parametrize("payload", list(PICKLES.values()), ids=list(PICKLES))
def test_decode_refuses_any_pickle_without_running_it(payload, ran, capsys, classes_kept):
    with pytest.raises(ValueError):
        decode_batch(payload)
    assert ran == []
    assert "printed by a pickle" not in capsys.readouterr().out


def test_a_pickle_sent_to_the_service_is_refused_without_running_it(ran, capsys, classes_kept):
    fake = FakeStore()
    service = StoreService(fake, on_stored=lambda result: None, on_ready=lambda pid: None)
    raw, ours = socket.socketpair()
    raw.settimeout(5)
    service.attach(ours, worker=5)
    try:
        for request_id, payload in enumerate(PICKLES.values(), start=1):
            raw.sendall(HEADER.pack(len(payload), request_id) + payload)
            length, answered = HEADER.unpack(recv_exactly(raw, HEADER.size))
            assert answered == request_id
            assert list(json.loads(recv_exactly(raw, length))) == ["failed"]
        assert fake.batches == []
    finally:
        raw.close()
        service.close()
    assert ran == []
    assert "printed by a pickle" not in capsys.readouterr().out


def document() -> dict:
    """What encode_batch writes for full_batch(), as Python data to spoil."""
    return json.loads(encode_batch(full_batch()))


def spoiled(change: Callable[[dict], object]) -> bytes:
    doc = document()
    change(doc)
    return json.dumps(doc).encode()


def drop(key: str) -> Callable[[dict], object]:
    return lambda d: d.pop(key)


SPOILED_JSON: dict[str, Callable[[dict], object]] = {
    "missing-kind": drop("contacts"),
    "extra-kind": lambda d: d.update(extras=[]),
    "kind-renamed": lambda d: d.update(message=d.pop("messages")),
    "kind-is-a-dict": lambda d: d.update(messages={"0": d["messages"][0]}),
    "kind-is-null": lambda d: d.update(statuses=None),
    "kind-is-a-string": lambda d: d.update(others="[]"),
    "kind-is-a-number": lambda d: d.update(contacts=0),
    "record-missing-a-field": lambda d: d["messages"][0].pop("wamid"),
    "record-missing-a-defaulted-field": lambda d: d["messages"][1].pop("origin"),
    "record-missing-raw": lambda d: d["others"][0].pop("raw"),
    "record-extra-__class__": lambda d: d["messages"][0].update(__class__="ParsedBatch"),
    "record-extra-__dict__": lambda d: d["statuses"][0].update(__dict__={"empty": True}),
    "record-extra-field": lambda d: d["contacts"][0].update(nickname="Zo"),
    "record-is-a-list": lambda d: d["others"].__setitem__(0, list(d["others"][0].values())),
    "record-is-a-string": lambda d: d["statuses"].append("wamid.sent"),
    "record-is-null": lambda d: d["contacts"].append(None),
    "record-of-another-kind": lambda d: d["messages"].append(d["contacts"][0]),
    "errors-is-a-string": lambda d: d["statuses"][0].update(errors="none"),
    "errors-is-a-dict": lambda d: d["statuses"][0].update(errors={"code": 1}),
    "errors-is-null": lambda d: d["statuses"][0].update(errors=None),
}


def test_the_document_spoiled_below_decodes_when_unspoiled():
    assert decode_batch(json.dumps(document()).encode()) == full_batch()


@pytest.mark.parametrize("change", list(SPOILED_JSON.values()), ids=list(SPOILED_JSON))
def test_decode_refuses_json_that_is_not_exactly_a_batch(change, classes_kept):
    payload = spoiled(change)
    assert json.loads(payload) != document()  # the change did change something
    with pytest.raises(ValueError):
        decode_batch(payload)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"{",
        b'{"messages": [], "statuses": [], "others": [], "contacts": []',
        b"\xff\xfe\x00garbage",
        b"\x80\x05not a pickle at all",
        b"null",
        b"42",
        b'"ParsedBatch"',
        b"[]",
        b'[{"messages": [], "statuses": [], "others": [], "contacts": []}]',
        b"{}",
    ],
)
def test_decode_refuses_anything_but_a_json_object_at_the_top(payload):
    with pytest.raises(ValueError):
        decode_batch(payload)


def test_every_record_round_trips_equal():
    batch = full_batch()
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch
    for kind, record in KINDS.items():
        assert [type(r) for r in getattr(decoded, kind)] == [record] * len(getattr(batch, kind))
    [status] = decoded.statuses
    assert isinstance(status.errors, tuple)
    assert status.errors == batch.statuses[0].errors
    extra = decoded.messages[0].raw["extra"]
    assert extra["surrogate"] == "half \ud83d pair"
    assert extra["unicode"] == "ñandú — 日本語 — عربى — 🧉👍🏽"
    assert extra["numbers"][2] == 2**70 and type(extra["numbers"][2]) is int
    assert math.copysign(1, extra["numbers"][4]) == -1  # -0.0 keeps its sign
    assert extra["floats"] == [0.1, 1e300, 5e-324, -2.5e-10]
    assert decoded.messages[1].from_business is True and decoded.messages[1].origin == "echo"


def test_a_status_without_errors_round_trips_with_an_empty_tuple():
    status = full_batch().statuses[0]
    batch = events.ParsedBatch(
        statuses=(events.StatusEvent(**{**status.__dict__, "errors": ()}),),
    )
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch
    assert decoded.statuses[0].errors == ()


def test_an_empty_batch_round_trips():
    payload = encode_batch(events.ParsedBatch())
    assert json.loads(payload) == {"messages": [], "statuses": [], "others": [], "contacts": []}
    decoded = decode_batch(payload)
    assert decoded == events.ParsedBatch()
    assert decoded.empty


def test_encode_writes_each_record_as_exactly_its_fields():
    batch = full_batch()
    doc = json.loads(encode_batch(batch))
    assert set(doc) == set(KINDS)
    for kind, record in KINDS.items():
        names = [f.name for f in dataclasses.fields(record)]
        assert [list(item) for item in doc[kind]] == [names] * len(getattr(batch, kind))
    assert doc["statuses"][0]["errors"] == [dict(e) for e in batch.statuses[0].errors]


def test_a_lost_channel_is_told_once_and_a_closed_one_not_at_all():
    lost: list[str] = []
    told = threading.Event()

    def on_closed(reason: str) -> None:
        lost.append(reason)
        told.set()

    ours, theirs = socket.socketpair()
    client = StoreClient(theirs, wait_seconds=2, on_closed=on_closed)
    ours.close()  # the main process's end went away
    assert told.wait(5)
    with pytest.raises(StorageUnavailable):
        client.store(batch_of("wamid.after"))
    time.sleep(0.1)
    assert len(lost) == 1

    quiet: list[str] = []
    ours, theirs = socket.socketpair()
    client = StoreClient(theirs, wait_seconds=2, on_closed=quiet.append)
    client.close()  # the worker stopping: not a loss
    ours.close()
    time.sleep(0.2)
    assert quiet == []
