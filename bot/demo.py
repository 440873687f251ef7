"""`wajira demo`: sandbox services + the real daemon on loopback, one conversation end to end.

No network and no config: the sandbox plays Jira Cloud, Meta's Graph API and OpenAI, a
temporary SQLite is the storage, and the daemon is the same `Daemon` that `wajira run` starts.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bot import logs
from bot.config import parse_config
from bot.rules.adf import text_from_doc

T = TypeVar("T")

DEMO_SECRET = "demo-app-secret-0123456789"  # >= 16 chars, as the config requires
DEMO_PHONE_NUMBER_ID = "106540352242922"
JIRA_CREDENTIALS = ("bot@example.com", "demo-jira-token")
GRAPH_TOKEN = "demo-access-token"
OPENAI_KEY = "demo-openai-key"
CUSTOMER = ("Ana García", "5215512345678")
DEMO_MEDIA_ID = "1003383421387256"
# A 1×1 PNG: the photo the customer sends, downloaded from "Meta" and attached in Jira.
DEMO_IMAGE = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cf00000301010018dd8db40000000049454e44ae426082"
)
# The delivery note an agent attaches in Jira: read from Jira, uploaded to Graph, sent as a document.
DEMO_PDF = b"%PDF-1.4\n% wajira demo: courier delivery note for order 1042\n%%EOF\n"


def _settings(jira_url: str, graph_url: str, openai_url: str, db_path: Path):
    return parse_config(
        {
            "server": {"host": "127.0.0.1", "port": 0, "admin_port": 0},
            "storage": {"url": f"sqlite:///{db_path}"},
            "whatsapp": {
                "verify_token": "demo-verify-token",
                "app_secret": DEMO_SECRET,
                "access_token": GRAPH_TOKEN,
                "phone_number_id": DEMO_PHONE_NUMBER_ID,
                "graph_url": graph_url,
            },
            "jira": {"url": jira_url, "email": JIRA_CREDENTIALS[0], "api_token": JIRA_CREDENTIALS[1]},
            "openai": {"api_key": OPENAI_KEY, "base_url": openai_url},
            "poller": {"interval_seconds": 2},
            "inbox": {"interval_seconds": 1},
            "outbox": {"interval_seconds": 1},
            "logging": {"level": "warning"},
            "services": [
                {
                    "id": "support",
                    "project_key": "DEMO",
                    "labels": ["whatsapp"],
                    "assistant": {"enabled": True, "debounce_seconds": 1.0},
                }
            ],
        },
        env={},
        source="demo",
    )


def run_demo() -> int:
    from bot.daemon import Daemon
    from sandbox.graph import GraphSandbox
    from sandbox.jira import JiraSandbox
    from sandbox.openai_stub import OpenAISandbox

    logs.configure(level="warning", fmt="console")
    jira = JiraSandbox(email=JIRA_CREDENTIALS[0], api_token=JIRA_CREDENTIALS[1])
    openai = OpenAISandbox(api_key=OPENAI_KEY, latency=0.3)
    with tempfile.TemporaryDirectory(prefix="wajira-demo-") as tmp:
        settings = None
        graph = None
        try:
            jira.start()
            openai.start()
            # The daemon's port is chosen when it starts; Graph's status callbacks are wired after.
            graph = GraphSandbox(access_token=GRAPH_TOKEN)
            graph.start()
            settings = _settings(jira.url, graph.url, openai.url, Path(tmp) / "wajira.db")
            daemon = Daemon(settings)
            daemon.start()
            try:
                return _play(daemon, jira, graph, openai)
            finally:
                daemon.stop()
        finally:
            for sandbox in (graph, openai, jira):
                if sandbox is not None:
                    sandbox.stop()


def _wait(predicate: Callable[[], T], seconds: float = 20.0) -> T | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return None


class _Scene:
    """The demo's cast: the customer on WhatsApp (through Meta's webhook) and the three sandboxes."""

    def __init__(self, daemon, jira, graph, openai) -> None:
        from sandbox import whatsapp_payloads as wa
        from sandbox.meta import MetaSender

        self.wa, self.jira, self.graph, self.openai = wa, jira, graph, openai
        self.name, self.phone = CUSTOMER
        self.sender = MetaSender(daemon.http.url + daemon.settings.server.webhook_path, DEMO_SECRET)
        self.contact = wa.contact(self.name, self.phone)

    def payload(self, message: dict) -> dict:
        return self.wa.message_payload(
            [message], contacts=[self.contact], phone_number_id=DEMO_PHONE_NUMBER_ID
        )

    def customer_says(self, message: dict) -> None:
        payload = self.payload(message)
        self.graph.observe_webhook(payload)  # Meta opens the 24-hour window when the customer writes
        status = self.sender.deliver(payload)
        print(f"  {self.name} → {message['type']:<9} (webhook answered {status})")

    def whatsapp_texts(self) -> list[str]:
        return [m["body"] for m in self.graph.sent() if m.get("type") == "text"]


def _play(daemon, jira, graph, openai) -> int:
    scene = _Scene(daemon, jira, graph, openai)
    print("wajira demo: sandbox Jira, Graph API and OpenAI on loopback; the daemon at", daemon.http.url)
    _customer_writes(scene)
    ok = bool(_wait(lambda: scene.whatsapp_texts()))
    issues = jira.issues()
    if len(issues) != 1:
        print(f"demo failed: expected one ticket, Jira has {len(issues)}")
        return 1
    key = issues[0]["key"]
    ok = _photo_attached(scene, key) and ok
    print("\n2. The AI answers on WhatsApp")
    for body in scene.whatsapp_texts():
        print(f"  WhatsApp → {scene.name}: {body}")
    ok = _agent_writes(scene, key) and ok
    ok = _agent_sends_a_file(scene, key) and ok
    return _verdict(scene, key, ok)


def _customer_writes(scene: _Scene) -> None:
    print("\n1. The customer writes on WhatsApp")
    wa, now = scene.wa, int(time.time())
    first = wa.text(scene.phone, "Hola! My order #1042 has not arrived yet.", timestamp=now)
    scene.customer_says(first)
    scene.graph.add_media(DEMO_MEDIA_ID, DEMO_IMAGE, "image/png")  # what Meta holds for the photo
    scene.customer_says(
        wa.image(
            scene.phone,
            caption="This is the tracking page",
            media_id=DEMO_MEDIA_ID,
            mime_type="image/png",
            timestamp=now + 1,
        )
    )
    scene.sender.deliver(scene.payload(first))
    print("  (Meta redelivers the first message: stored once)")


def _photo_attached(scene: _Scene, key: str) -> bool:
    attachments = _wait(lambda: scene.jira.attachments(key)) or []
    for attachment in attachments:
        print(
            f"  Jira attachment: {attachment['filename']} ({len(attachment['bytes'])} bytes, the photo's own bytes)"
        )
    return any(a["bytes"] == DEMO_IMAGE for a in attachments)


def _agent_writes(scene: _Scene, key: str) -> bool:
    print("\n3. An agent writes a public comment and an internal one in Jira")
    scene.jira.add_agent_comment(
        key,
        "Internal: courier confirmed a delay, refund if not delivered by Friday.",
        internal=True,
        author="Agent Smith",
    )
    scene.jira.add_agent_comment(
        key, "Hi Ana, I checked with the courier: it arrives **tomorrow**.", author="Agent Smith"
    )
    ok = bool(_wait(lambda: len(scene.whatsapp_texts()) >= 2))
    for body in scene.whatsapp_texts()[1:]:
        print(f"  WhatsApp → {scene.name}: {body}")
    time.sleep(1.5)  # a few more polls: the internal comment must still be in Jira only
    return ok


def _agent_sends_a_file(scene: _Scene, key: str) -> bool:
    print("\n4. The agent attaches the delivery note (a PDF) to a public comment")
    scene.jira.add_agent_comment_with_files(
        key,
        "Here is the courier's delivery note.",
        [("delivery-note.pdf", "application/pdf", DEMO_PDF)],
        author="Agent Smith",
    )
    documents = _wait(lambda: [m for m in scene.graph.sent() if m.get("type") == "document"]) or []
    for body in scene.whatsapp_texts()[2:]:
        print(f"  WhatsApp → {scene.name}: {body}")
    same = False
    for message in documents:
        media = message.get("media") or {}
        data = scene.graph.media.get(media.get("id")).data
        same = data == DEMO_PDF
        note = "the same bytes" if same else "NOT the same bytes"
        print(f"  WhatsApp → {scene.name}: document {media.get('filename')} ({len(data)} bytes, {note})")
    return len(documents) == 1 and same


def _verdict(scene: _Scene, key: str, ok: bool) -> int:
    issue = scene.jira.issue(key)
    print(f"\nWhat Jira shows — {key}: {issue['summary']}  (labels: {', '.join(issue['labels'])})")
    for comment in scene.jira.comments(key):
        body = comment["body"]
        text = text_from_doc(body) if isinstance(body, dict) else str(body)
        tag = " (internal)" if not comment.get("jsdPublic", True) else ""
        print(f"  {comment['author']['displayName']}{tag}: {text}")
    sent = scene.whatsapp_texts()
    leaked = any("refund" in body for body in sent) or "refund" in scene.openai.prompts_text()
    comments = len(scene.jira.comments(key))
    ok = ok and len(sent) == 3 and not leaked and comments == 6
    print()
    if ok:
        print(
            "demo finished: 2 customer messages → 2 comments and the photo attached, 1 AI reply, 2 agent replies "
            "and the agent's PDF on WhatsApp; the internal comment stayed in Jira"
        )
        return 0
    print(
        f"demo failed: {comments} comments in Jira, {len(sent)} WhatsApp messages, internal leaked: {leaked}"
    )
    return 1
