"""Web parts: the public WSGI app (webhook, Flows endpoint, /healthz) and the admin app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.bootstrap.jobs import Jobs
from bot.bootstrap.storage import Storage
from bot.config import ConfigError, Settings
from bot.flows.endpoint import FlowEndpoint
from bot.flows.keys import KeyFileError, load_private_key_file
from bot.health import Health
from bot.http.app import AdminApp, WsgiApp
from bot.metrics import Metrics
from bot.rules.events import ParsedBatch
from bot.rules.routing import route_batch
from bot.whatsapp.webhook import Reply, WebhookHandler
from storage.ingest import StoreResult

Routes = dict[str, Callable[[dict[str, Any], bytes], Reply]]


@dataclass(frozen=True)
class Web:
    public: WsgiApp
    admin: AdminApp


def flow_routes(settings: Settings, metrics: Metrics) -> Routes:
    """The Flows data-exchange endpoint, served only when a private key is configured.

    Raises:
        ConfigError: the key file cannot be read or decrypted.
    """
    s = settings
    if not s.flows.private_key_file:
        return {}
    try:
        # Checked when the config was read; loaded again here so Settings never holds a key.
        key = load_private_key_file(s.flows.private_key_file, s.flows.private_key_passphrase)
    except KeyFileError as exc:
        raise ConfigError("flows.private_key_file", exc.reason) from None
    endpoint = FlowEndpoint(
        app_secret=s.whatsapp.app_secret,
        private_key=key,
        screens=s.flows.screens,
        unavailable=s.flows.unavailable_message,
        observe=lambda outcome: metrics.webhooks.labels(f"flow_{outcome}").inc(),
    )
    return {
        s.flows.endpoint_path: lambda environ, body: endpoint.handle(
            environ.get("HTTP_X_HUB_SIGNATURE_256"), body
        )
    }


def build_web(
    settings: Settings,
    *,
    storage: Storage,
    jobs: Jobs,
    health: Health,
    metrics: Metrics,
    flows: Routes,
) -> Web:
    s = settings

    def store(batch: ParsedBatch) -> StoreResult:
        return storage.inbound.ingest.store_batch(_routed(batch, settings, storage))

    def on_stored(result: StoreResult) -> None:
        # Called from webhook threads; the jobs exist by then (HTTP serves only once all is built).
        if result.messages_new:
            jobs.schedule.inbox.nudge()
        if result.statuses_new:
            jobs.schedule.outbox.nudge()

    webhook = WebhookHandler(
        verify_token=s.whatsapp.verify_token,
        app_secret=s.whatsapp.app_secret,
        max_body_bytes=s.server.max_body_bytes,
        store=store,
        on_stored=on_stored,
        observe=lambda outcome: metrics.webhooks.labels(outcome).inc(),
    )
    public = WsgiApp(
        webhook_path=s.server.webhook_path, webhook=webhook, health=health.cached, extra_routes=flows
    )
    return Web(public=public, admin=AdminApp(health=health.check, metrics=metrics.render))


def _routed(batch: ParsedBatch, settings: Settings, storage: Storage) -> ParsedBatch:
    """Conversation keys per service, and a user who hid their phone back on their ticket."""

    def service_of(phone_number_id: str) -> tuple[str, bool]:
        service = settings.service_for(phone_number_id)
        return service.id, service.default

    return route_batch(batch, service_of, storage.mappings.key_for_user)
