"""The one vcrpy set-up: readable cassettes in `tests/cassettes/<module>/`, no secrets in them.

Replay (the default) needs no server, network or secret: `record_mode="none"`, so a request a
cassette does not hold fails the test instead of reaching a network. `WAJIRA_RECORD_CASSETTES=1`
re-records against the loopback sandboxes (`sandbox/`), each cassette from an empty file.

What keeps secrets out, as the OpenTelemetry contrib tests do it: `filter_headers` writes a fake
Authorization and drops cookies; `before_record_response` drops headers naming a session, an
account or a request; the test modules' autouse fixtures give fake keys, so a recording can
never carry a real one.

    recorder = cassette_recorder("graph_adapter", authorization=FAKE_BEARER)
    with open_cassette(recorder, cassette_name(request.node)) as cassette: ...
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import vcr
import yaml

RECORD = os.environ.get("WAJIRA_RECORD_CASSETTES") == "1"
CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"
# Replay needs some URL; nothing listens here and vcr answers before a socket is opened.
REPLAY_URL = "http://127.0.0.1:9"
FAKE_BEARER = "Bearer fake-token-for-cassettes"
# No host or port: a sandbox listens on a fresh port at every recording.
MATCH_ON_ANY_HOST = ("method", "scheme", "path", "query", "body")
# Response headers naming a session, an account or a request (Jira Cloud's and Server's).
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "set-cookie",
        "set-cookie2",
        "x-aaccountid",
        "x-ausername",
        "x-asessionid",
        "x-arequestid",
        "atl-traceid",
        "atl-request-id",
    }
)


class _Block(str):
    """A string YAML writes as a `|` block, so pretty JSON keeps its lines."""


class _CassetteDumper(yaml.SafeDumper):
    pass


_CassetteDumper.add_representer(
    _Block, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
)


class ReadableYaml:
    """vcr serializer: YAML whose JSON bodies are indented, so a cassette reads like the API call.

    Indenting changes a body's length, so Content-Length follows it (on save, and again on load
    for hand-edited cassettes and for those saved before it did); the body matcher compares
    parsed JSON, so request bodies still match what the adapter sends.
    """

    @staticmethod
    def serialize(cassette: dict) -> str:
        for interaction in cassette["interactions"]:
            request, response = interaction["request"], interaction["response"]
            request["body"] = _pretty(request["body"])
            _set_content_length(request["headers"], request["body"])
            response["body"]["string"] = _pretty(response["body"]["string"])
            _set_content_length(response["headers"], response["body"]["string"])
        return yaml.dump(cassette, Dumper=_CassetteDumper, allow_unicode=True, sort_keys=False, width=110)

    @staticmethod
    def deserialize(text: str) -> dict:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        cassette = yaml.load(text, Loader=loader) or {"interactions": []}  # a safe loader
        for interaction in cassette.get("interactions", []):
            response = interaction["response"]
            _set_content_length(response["headers"], response["body"]["string"])
        return cassette


def _pretty(body: Any) -> Any:
    try:
        value = json.loads(body) if isinstance(body, str) and body.strip() else None
    except ValueError:
        return body
    return _Block(json.dumps(value, indent=2, ensure_ascii=False)) if isinstance(value, dict | list) else body


def _set_content_length(headers: dict, body: str | bytes | None) -> None:
    size = len(body.encode() if isinstance(body, str) else body or b"")
    for name in [n for n in headers if n.lower() == "content-length"]:
        headers[name] = [str(size)]


def cassette_recorder(
    module: str,
    *,
    authorization: str,
    match_on: tuple[str, ...] = MATCH_ON_ANY_HOST,
    origin: tuple[str, str] | None = None,
) -> vcr.VCR:
    """The recorder for `tests/cassettes/<module>/`.

    Args:
        authorization: the fake value every recorded Authorization header gets.
        match_on: vcr matchers; the default ignores host and port.
        origin: (live, stored) base URLs while recording: each stored URI and response body
            names `stored` instead of the sandbox's fresh port, so replay can match whole URLs.
    """

    def rewrite_request(request: Any) -> Any:
        if origin:
            request.uri = request.uri.replace(origin[0], origin[1], 1)
        return request

    def scrub_response(response: dict) -> dict:
        headers = response["headers"]
        for name in [n for n in headers if n.lower() in DROPPED_RESPONSE_HEADERS]:
            del headers[name]
        body = response["body"]["string"]
        if origin and isinstance(body, bytes):
            response["body"]["string"] = body.replace(origin[0].encode(), origin[1].encode())
            _set_content_length(headers, response["body"]["string"])
        return response

    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTES / module),
        serializer="readable-yaml",
        record_mode="all" if RECORD else "none",
        match_on=match_on,
        filter_headers=[("authorization", authorization), ("cookie", None)],
        before_record_request=rewrite_request,
        before_record_response=scrub_response,
        decode_compressed_response=True,
        record_on_exception=False,  # a failed recording must not leave half a cassette behind
    )
    recorder.register_serializer("readable-yaml", ReadableYaml)
    return recorder


def cassette_name(node: pytest.Item) -> str:
    """A file name from the test's name, without its `test_` prefix."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", node.name.removeprefix("test_")).strip("_") + ".yaml"


@contextmanager
def open_cassette(recorder: vcr.VCR, name: str) -> Iterator[Any]:
    """One cassette. Recording starts from an empty file (vcr's "all" mode would otherwise keep
    old interactions it cannot match, such as sends whose body quoted an older wamid); replay
    fails when the test made fewer calls than the cassette holds."""
    if RECORD:
        (Path(recorder.cassette_library_dir or "") / name).unlink(missing_ok=True)
    with recorder.use_cassette(name) as cassette:
        yield cassette
    if not RECORD:
        assert cassette.all_played, f"{name} holds requests the test no longer makes"


def cassette_files(module: str) -> list[Path]:
    return sorted((CASSETTES / module).glob("*.yaml"))


def read_cassette(path: Path) -> dict:
    """A cassette file as vcr replays it."""
    return ReadableYaml.deserialize(path.read_text(encoding="utf-8"))


def recorded(cassette: Any) -> list[tuple[Any, dict[str, Any]]]:
    """(request, response) pairs of a cassette, recorded or replayed alike."""
    return list(zip(cassette.requests, cassette.responses, strict=True))


def json_of(body: Any) -> Any:
    return json.loads(body.decode() if isinstance(body, bytes) else body)
