"""Property-based fuzzing of the HTTP surface, in process (marker `fuzz`).

Shared helpers: a daemon wired like `wajira run` (real WSGI app, real storage on a temporary
SQLite file, fakes for Jira/Graph/OpenAI), and one WSGI call.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from bot.bootstrap import Components, bootstrap_server
from bot.config import parse_config
from bot.rules.signature import sign
from tests.fakes import FakeAI, FakeGraph, FakeJira

APP_SECRET = "fuzz-app-secret-9f2c1b"
VERIFY_TOKEN = "fuzz-verify-token-77aa"
ACCESS_TOKEN = "fuzz-access-token-EAAG1234"
JIRA_API_TOKEN = "fuzz-jira-api-token-ATATT3x"
OPENAI_KEY = "fuzz-openai-key-0123456789"
SECRETS = (APP_SECRET, VERIFY_TOKEN, ACCESS_TOKEN, JIRA_API_TOKEN, OPENAI_KEY)
WEBHOOK_PATH = "/api/whatsapp/webhook"
FLOWS_PATH = "/api/whatsapp/flows"
PHONE_NUMBER_ID = "106540352242922"  # sandbox.whatsapp_payloads.PHONE_NUMBER_ID


def settings_for(tmp: Path, *, flows_key_file: Path | None = None, assistant: bool = False):
    data = {
        "storage": {"url": f"sqlite:///{tmp / 'wajira.db'}"},
        "whatsapp": {
            "verify_token": VERIFY_TOKEN,
            "app_secret": APP_SECRET,
            "access_token": ACCESS_TOKEN,
            "phone_number_id": PHONE_NUMBER_ID,
        },
        "jira": {"url": "http://127.0.0.1:9", "email": "bot@example.com", "api_token": JIRA_API_TOKEN},
        "openai": {"api_key": OPENAI_KEY},
        "services": [
            {"id": "support", "project_key": "WA", "default": True, "assistant": {"enabled": assistant}}
        ],
    }
    if flows_key_file is not None:
        data["flows"] = {
            "private_key_file": str(flows_key_file),
            "screens": [{"id": "INIT", "next_screen": "DETAILS", "data": {"x": "y"}}],
        }
    return parse_config(data, env={})


def build_daemon(tmp: Path, **kwargs) -> tuple[Components, Callable]:
    """The daemon's parts and its public WSGI app, built as `wajira run` builds them (by
    `bot.bootstrap`), without HTTP listeners or a running schedule."""
    server = bootstrap_server(
        settings_for(tmp, **kwargs), owner="fuzz:1", jira=FakeJira(), graph=FakeGraph(), ai=FakeAI()
    )
    return server.components, server.web.public


class _NoRead(io.RawIOBase):
    def read(self, *_args):  # pragma: no cover - only reached by a bug
        raise AssertionError("the body must not be read")


def call(
    app: Callable,
    path: str,
    body: bytes = b"",
    *,
    signature: str | bool | None = True,
    method: str = "POST",
    content_length: str | bool | None = True,
    query: str = "",
    unreadable: bool = False,
) -> tuple[int, bytes]:
    """One request through the WSGI app. `signature=True` signs `body` with APP_SECRET;
    `content_length=True` declares the real length (None: no header)."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": _NoRead() if unreadable else io.BytesIO(body),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "wsgi.url_scheme": "http",
    }
    if content_length is True:
        environ["CONTENT_LENGTH"] = str(len(body))
    elif content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    if signature is True:
        environ["HTTP_X_HUB_SIGNATURE_256"] = sign(APP_SECRET, body)
    elif signature is not None and signature is not False:
        environ["HTTP_X_HUB_SIGNATURE_256"] = signature
    seen: list[str] = []
    chunks = app(environ, lambda status, headers, exc_info=None: seen.append(status))
    out = b"".join(chunks)
    return int(seen[0].split()[0]), out
