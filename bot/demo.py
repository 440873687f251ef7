"""`wajira demo`: sandbox services + the real daemon on loopback, one conversation end to end.

No network and no config: the sandbox plays Jira Cloud and Meta, a temporary SQLite is the
storage, and the daemon is the same `Daemon` that `wajira run` starts.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bot import logs
from bot.config import parse_config
from bot.rules.adf import text_from_doc

DEMO_SECRET = "demo-app-secret"
DEMO_PHONE_NUMBER_ID = "106540352242922"
CUSTOMER = ("Ana García", "5215512345678")


def _settings(jira_url: str, db_path: Path):
    return parse_config(
        {
            "server": {"host": "127.0.0.1", "port": 0},
            "storage": {"url": f"sqlite:///{db_path}"},
            "whatsapp": {
                "verify_token": "demo-verify-token",
                "app_secret": DEMO_SECRET,
                "access_token": "demo-access-token",
                "phone_number_id": DEMO_PHONE_NUMBER_ID,
            },
            "jira": {"url": jira_url, "email": "bot@example.com", "api_token": "demo-jira-token"},
            "inbox": {"interval_seconds": 1},
            "logging": {"level": "warning"},
            "services": [
                {"id": "support", "project_key": "DEMO", "labels": ["whatsapp"], "assistant": {"enabled": False}}
            ],
        },
        env={},
        source="demo",
    )


def run_demo() -> int:
    from bot.daemon import Daemon
    from sandbox import whatsapp_payloads as wa
    from sandbox.jira import JiraSandbox
    from sandbox.meta import MetaSender

    logs.configure(level="warning", fmt="console")
    jira = JiraSandbox(email="bot@example.com", api_token="demo-jira-token")
    jira_url = jira.start()
    with tempfile.TemporaryDirectory(prefix="wajira-demo-") as tmp:
        daemon = Daemon(_settings(jira_url, Path(tmp) / "wajira.db"))
        daemon.start()
        try:
            return _play(daemon, jira, wa, MetaSender)
        finally:
            daemon.stop()
            jira.stop()


def _play(daemon, jira, wa, MetaSender) -> int:
    name, phone = CUSTOMER
    sender = MetaSender(daemon.http.url + daemon.settings.server.webhook_path, DEMO_SECRET)
    contact = wa.contact(name, phone)
    now = int(time.time())
    script = [
        wa.text(phone, "Hola! My order #1042 has not arrived yet.", timestamp=now - 30),
        wa.image(phone, caption="This is the tracking page", timestamp=now - 20),
        wa.location(phone, latitude=19.4326, longitude=-99.1332, name="Home", address="Av. Reforma 1, CDMX", timestamp=now - 10),
    ]
    print("wajira demo: sandbox Jira at", jira.url, "| daemon at", daemon.http.url)
    print()
    print("Customer on WhatsApp:")
    first_batch = wa.message_payload(script[:1], contacts=[contact], phone_number_id=DEMO_PHONE_NUMBER_ID)
    for message in script:
        payload = wa.message_payload([message], contacts=[contact], phone_number_id=DEMO_PHONE_NUMBER_ID)
        status = sender.deliver(payload)
        print(f"  {name} → {message['type']:<9} webhook answered {status}")
    status = sender.deliver(first_batch)
    print(f"  (Meta redelivers the first message: webhook answered {status}, stored once)")

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        issues = jira.issues()
        if issues and len(jira.comments(issues[0]["key"])) >= len(script):
            break
        time.sleep(0.1)
    issues = jira.issues()
    if len(issues) != 1:
        print(f"demo failed: expected one ticket, Jira has {len(issues)}")
        return 1
    issue = issues[0]
    comments = jira.comments(issue["key"])
    print()
    print(f"Jira ticket {issue['key']}: {issue['summary']}  (labels: {', '.join(issue['labels'])})")
    for comment in comments:
        body = comment["body"]
        text = text_from_doc(body) if isinstance(body, dict) else str(body)
        print(f"  comment {comment['id']}: {text}")
    ok = len(comments) == len(script)
    print()
    print("demo finished: every message became exactly one comment" if ok else "demo failed: comments missing or duplicated")
    return 0 if ok else 1
