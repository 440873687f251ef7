"""Fuzz Meta's webhook and the Flows endpoint through the real WSGI app, always correctly signed.

Invariants, whatever the body:
- never a 5xx (storage is up) and never an exception out of the app;
- nothing half-stored: a 400 adds no row to any table; a 200 holds every message (and status)
  of the batch, each wamid exactly once.

CI runs WAJIRA_FUZZ_EXAMPLES (default 300) examples per property; by hand, run e.g.

    WAJIRA_FUZZ_EXAMPLES=10000 python -m pytest tests/fuzz -m fuzz -q
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.rules.events import PayloadError
from bot.rules.payload import parse_webhook
from sandbox import whatsapp_payloads as wa
from sandbox.flows_client import new_key_pair
from storage.models import InboundMessageRow, StatusRow
from storage.text import utf8_safe
from tests.fuzz import FLOWS_PATH, WEBHOOK_PATH, build_daemon, call

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("WAJIRA_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
# Heavier bodies (deep nesting, huge arrays) get a tenth of the budget.
HEAVY = settings(FUZZ, max_examples=max(10, EXAMPLES // 10))
OBJECT = "whatsapp_business_account"


# -- the world ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    pem, public = new_key_pair()
    key_file = tmp / "flows.pem"
    key_file.write_bytes(pem)
    daemon, app = build_daemon(tmp, flows_key_file=key_file)

    class World:
        pass

    w = World()
    w.daemon, w.app, w.public = daemon, app, public
    yield w
    daemon.storage.db.close()


def table_counts(db) -> dict[str, int]:
    return {t: db.execute_sql(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in db.get_tables()}


def rows_for(wamid: str) -> int:
    # Stored as the database can hold it: a lone surrogate in an id becomes U+FFFD.
    return InboundMessageRow.select().where(InboundMessageRow.wamid == utf8_safe(wamid)).count()


def declared_message_ids(doc: Any) -> set[str]:
    """Independently of the parser: the ids of messages and echoes, the records a 200 promises."""
    ids: set[str] = set()
    if not isinstance(doc, dict) or not isinstance(doc.get("entry"), list):
        return ids
    for entry in doc["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else ():
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                continue
            field = change.get("field")
            key = (
                {"messages": "messages", "smb_message_echoes": "message_echoes"}.get(field)
                if isinstance(field, str)
                else None
            )
            items = change["value"].get(key) if key else None
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    ids.add(item["id"])
    return ids


def deliver(world, body: bytes) -> int:
    """POST a signed body and check the storage invariants; returns the status."""
    db = world.daemon.storage.db
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        doc = None
    try:
        batch = parse_webhook(doc) if doc is not None else None
    except PayloadError:
        batch = None
    wamids = declared_message_ids(doc) | ({m.wamid for m in batch.messages} if batch else set())
    before = table_counts(db)
    status, answer = call(world.app, WEBHOOK_PATH, body)
    assert status < 500, (status, answer[:300])
    assert status in (200, 400), (status, answer[:300])
    if status == 400:
        assert table_counts(db) == before, "a refused delivery stored something"
    else:
        missing = sorted(w for w in wamids if rows_for(w) != 1)
        assert not missing, f"200 but not stored exactly once: {missing[:3]}"
        for s in batch.statuses:
            where = (StatusRow.wamid == utf8_safe(s.wamid)) & (StatusRow.status == utf8_safe(s.status))
            assert StatusRow.select().where(where).count() == 1
    return status


def dumps(doc: Any) -> bytes:
    # ASCII with \u escapes, as Meta sends it: lone surrogates stay valid JSON.
    return json.dumps(doc).encode()


# -- strategies --------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(
        ["", " ", "0", "wamid.", OBJECT, "messages", "history", "text", "\u0000", "\U0001f44d", "\ud800"]
    )
)  # a lone surrogate: valid JSON, not UTF-8
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(
            st.sampled_from(
                [
                    "object",
                    "entry",
                    "changes",
                    "field",
                    "value",
                    "messages",
                    "statuses",
                    "metadata",
                    "phone_number_id",
                    "id",
                    "from",
                    "timestamp",
                    "type",
                    "text",
                    "body",
                    "contacts",
                    "message_echoes",
                    "history",
                    "threads",
                    "state_sync",
                    "to",
                    "errors",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=30,
)


def _builders() -> list:
    contacts = [wa.contact("Ana", wa.DEFAULT_WA_ID, "US.1")]
    msgs = [m for _, m in wa.ALL_KINDS]
    out = [lambda m=m: wa.message_payload([copy.deepcopy(m)], contacts=contacts) for m in msgs]
    return out + [
        lambda: wa.message_payload([copy.deepcopy(m) for m in msgs[:5]]),
        lambda: wa.status_payload(wa.new_wamid(), "delivered", wa.DEFAULT_WA_ID),
        lambda: wa.status_payload(
            wa.new_wamid(), "failed", wa.DEFAULT_WA_ID, errors=[{"code": 131047, "title": "x"}]
        ),
        lambda: wa.errors_payload(),
        lambda: wa.echo_payload(wa.DEFAULT_WA_ID, "from the app"),
        lambda: wa.history_payload(
            wa.DEFAULT_WA_ID,
            [
                wa.history_message(wa.DEFAULT_WA_ID, "old"),
                wa.history_message(wa.DEFAULT_WA_ID, "re", from_business=True),
            ],
        ),
        lambda: wa.history_declined_payload(),
        lambda: wa.state_sync_payload(
            [wa.contact_sync("16505550000", "Bo Li"), wa.contact_sync("16505550001", action="remove")]
        ),
    ]


BUILDERS = _builders()


def real_payload(i: int) -> dict[str, Any]:
    """Body `i` of every shape `sandbox.whatsapp_payloads` builds, with fresh wamids."""
    body = BUILDERS[i]()
    _refresh_ids(body)
    return body


def real_payloads() -> list[dict[str, Any]]:
    return [real_payload(i) for i in range(len(BUILDERS))]


def _refresh_ids(node: Any) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "id" and isinstance(v, str) and v.startswith("wamid."):
                node[k] = wa.new_wamid()
            else:
                _refresh_ids(v)
    elif isinstance(node, list):
        for v in node:
            _refresh_ids(v)


def json_paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path to a value (the root excluded), containers and leaves alike."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield prefix + (k,)
        yield from json_paths(v, prefix + (k,))


def replaced(doc: Any, path: tuple, value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return out


def wrong_types(value: Any) -> list[Any]:
    """Values of every JSON type but `value`'s own (plus the edge values of its own type)."""
    pool = [
        None,
        True,
        0,
        -1,
        2**63,
        1.5,
        math.nan,
        math.inf,
        "",
        "x" * 300,
        "\ud800",
        [],
        [None],
        {},
        {"id": 1},
    ]
    return [v for v in pool if type(v) is not type(value) or v in ("", "\ud800")]


# -- the webhook -------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(world, body):
    deliver(world, body)


@FUZZ
@given(json_values)
def test_arbitrary_json(world, doc):
    deliver(world, dumps(doc))


@FUZZ
@given(st.data())
def test_arbitrary_json_inside_a_webhook_skeleton(world, data):
    """Arbitrary values at each level of the envelope, so the fuzz gets past `object`/`entry`."""
    x = data.draw(json_values)
    change = {
        "field": data.draw(
            st.sampled_from(
                ["messages", "smb_message_echoes", "history", "smb_app_state_sync", "account_update"]
            )
        ),
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": wa.DISPLAY_PHONE, "phone_number_id": wa.PHONE_NUMBER_ID},
        },
    }
    level = data.draw(
        st.sampled_from(
            [
                "entry",
                "changes",
                "change",
                "value",
                "messages",
                "statuses",
                "message_echoes",
                "history",
                "state_sync",
                "contacts",
                "metadata",
            ]
        )
    )
    doc = {"object": OBJECT, "entry": [{"id": wa.WABA_ID, "changes": [change]}]}
    if level == "entry":
        doc["entry"] = x
    elif level == "changes":
        doc["entry"][0]["changes"] = x
    elif level == "change":
        doc["entry"][0]["changes"][0] = x
    elif level == "value":
        change["value"] = x
    else:
        change["value"][level] = x if level in ("metadata", "contacts") else [x]
        if level != "messages":
            change["value"].setdefault("messages", [wa.text(wa.DEFAULT_WA_ID, "hi")])
    deliver(world, dumps(doc))


@FUZZ
@given(st.data())
def test_real_payloads_with_a_wrong_type_in_one_field(world, data):
    body = real_payload(data.draw(st.sampled_from(range(len(BUILDERS)))))
    paths = list(json_paths(body))
    path = data.draw(st.sampled_from(paths))
    node = body
    for k in path:
        node = node[k]
    value = data.draw(st.sampled_from(wrong_types(node)) | json_values)
    deliver(world, dumps(replaced(body, path, value)))


def test_every_field_of_every_real_payload_with_every_wrong_type(world):
    """The exhaustive walk: every JSON path of every real payload, one wrong value at a time."""
    statuses: dict[int, int] = {}
    n = 0
    for body in real_payloads():
        assert deliver(world, dumps(body)) == 200  # the unmodified body is a valid webhook
        for path in json_paths(body):
            node = body
            for k in path:
                node = node[k]
            values = wrong_types(node)
            if EXAMPLES < 1000:  # CI: two values per path, rotating through the pool
                n += 1
                values = [values[n % len(values)], values[(n + 7) % len(values)]]
            for value in values:
                _refresh_ids(body)  # fresh ids, so a 200 really stores
                code = deliver(world, dumps(replaced(body, path, value)))
                statuses[code] = statuses.get(code, 0) + 1
    assert statuses.get(200) and statuses.get(400)  # both outcomes were exercised


@pytest.mark.parametrize(
    "where", ["text_body", "profile_name", "unknown_field", "history_phone_number_id", "contact_sync_name"]
)
def test_lone_surrogate_is_stored_or_refused(world, where):
    # A broken emoji half, e.g. a client that cut a message between the two UTF-16 halves.
    msg = wa.text(wa.DEFAULT_WA_ID, "broken \ud83d emoji")
    name = "Ana \ud83d" if where == "profile_name" else "Ana"
    doc = wa.message_payload([msg], contacts=[wa.contact(name, wa.DEFAULT_WA_ID)])
    if where == "unknown_field":
        doc = wa.errors_payload(title="cut \udc4d")
    elif where == "contact_sync_name":  # found by the 1,000-example run: a 500 before
        doc = wa.state_sync_payload(
            [wa.contact_sync(wa.DEFAULT_WA_ID, "Ana \ud83d")], phone_number_id="106\ud800540352242922"
        )
    elif where == "history_phone_number_id":  # found by the 1,000-example run: a 500 before
        doc = wa.history_payload(
            wa.DEFAULT_WA_ID,
            [wa.history_message(wa.DEFAULT_WA_ID, "old")],
            phone_number_id="106\ud800540352242922",
        )
    elif where == "profile_name":
        msg["text"]["body"] = "fine"
    deliver(world, json.dumps(doc).encode())


@HEAVY
@given(
    depth=st.integers(min_value=1, max_value=3000) | st.integers(min_value=1, max_value=200_000),
    opener=st.sampled_from(["[", '{"a":']),
    where=st.sampled_from(["root", "text_body", "message", "value", "history_item"]),
)
def test_deep_nesting(world, depth, opener, where):
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    if where == "root":
        body = nested
    else:
        msg = wa.text(wa.DEFAULT_WA_ID, "hi")
        placeholder = '"__NESTED__"'
        if where == "text_body":
            msg["text"] = {"body": "__NESTED__"}
            doc = wa.message_payload([msg])
        elif where == "message":
            msg["extra"] = "__NESTED__"
            doc = wa.message_payload([msg])
        elif where == "value":
            doc = wa.errors_payload()
            doc["entry"][0]["changes"][0]["value"]["extra"] = "__NESTED__"
        else:
            doc = wa.history_payload(wa.DEFAULT_WA_ID)
            doc["entry"][0]["changes"][0]["value"]["history"][0]["threads"][0]["messages"][0]["extra"] = (
                "__NESTED__"
            )
        body = json.dumps(doc).replace(placeholder, nested)
    deliver(world, body.encode())


@HEAVY
@given(n=st.integers(min_value=0, max_value=1000), kind=st.sampled_from(["messages", "statuses", "junk"]))
def test_huge_arrays(world, n, kind):
    if kind == "messages":  # Meta's maximum batch: 1,000 updates
        doc = wa.message_payload(
            [wa.text(wa.DEFAULT_WA_ID if i % 2 else "5215512345678", f"m{i}") for i in range(n)]
        )
    elif kind == "statuses":
        doc = wa.status_payload(wa.new_wamid(), "sent", wa.DEFAULT_WA_ID)
        value = doc["entry"][0]["changes"][0]["value"]
        value["statuses"] = [dict(value["statuses"][0], id=wa.new_wamid()) for _ in range(n)]
    else:
        msg = wa.text(wa.DEFAULT_WA_ID, "hi")
        msg["junk"] = list(range(n * 300))  # up to ~1.9 MB of numbers in one field
        doc = wa.message_payload([msg])
    deliver(world, dumps(doc))


def test_a_thousand_entries_and_a_body_just_under_the_limit(world):
    limit = world.daemon.settings.server.max_body_bytes
    doc = {"object": OBJECT, "entry": [{"id": str(i), "changes": []} for i in range(1000)]}
    assert deliver(world, dumps(doc)) == 200
    msg = wa.text(wa.DEFAULT_WA_ID, "x")
    doc = wa.message_payload([msg])
    size = len(dumps(doc))
    msg["text"]["body"] = "x" * (limit - size + 1)  # exactly max_body_bytes
    body = dumps(wa.message_payload([msg]))
    assert len(body) == limit
    assert deliver(world, body) == 200
    assert call(world.app, WEBHOOK_PATH, body + b" ")[0] == 413


# -- the Flows endpoint ------------------------------------------------------------------------


def flows_status(world, body: bytes) -> int:
    before = table_counts(world.daemon.storage.db)
    status, answer = call(world.app, FLOWS_PATH, body)
    assert status < 500, (status, answer[:300])
    assert status in (200, 400, 421), (status, answer[:300])
    assert table_counts(world.daemon.storage.db) == before  # the endpoint stores nothing
    return status


def seal_raw(public, plaintext: bytes, *, aes_key: bytes | None = None, iv: bytes | None = None) -> dict:
    aes_key = aes_key or os.urandom(16)
    iv = iv if iv is not None else os.urandom(16)
    wrapped = public.encrypt(
        aes_key, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    )

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return {
        "encrypted_flow_data": b64(AESGCM(aes_key).encrypt(iv, plaintext, None)),
        "encrypted_aes_key": b64(wrapped),
        "initial_vector": b64(iv),
    }


@FUZZ
@given(st.binary(max_size=2048) | json_values.map(dumps))
def test_flows_arbitrary_bodies(world, body):
    flows_status(world, body)


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "encrypted_flow_data": scalars
            | st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
            "encrypted_aes_key": scalars,
            "initial_vector": scalars,
        },
    )
)
def test_flows_arbitrary_envelopes(world, envelope):
    assert flows_status(world, dumps(envelope)) in (400, 421)


@FUZZ
@given(
    plaintext=st.binary(max_size=512)
    | json_values.map(dumps)
    | st.fixed_dictionaries(
        {
            "version": scalars,
            "action": st.sampled_from(["ping", "INIT", "data_exchange", "BACK", "navigate"]) | scalars,
            "screen": scalars,
            "data": json_values,
            "flow_token": scalars,
        }
    ).map(dumps),
    iv_len=st.sampled_from([16, 12, 8, 64, 128]),
)
def test_flows_encrypted_arbitrary_requests(world, plaintext, iv_len):
    """Correctly encrypted for our key, any plaintext: the decrypted request is attacker data too."""
    flows_status(world, dumps(seal_raw(world.public, plaintext, iv=os.urandom(iv_len))))
