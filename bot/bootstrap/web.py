"""Web parts: the public WSGI app (webhook, Flows endpoint, /healthz) and the admin app.

`build_web` serves them from the daemon's own process; `build_worker_web` builds the public app
alone for a webhook worker process (`[server] workers` > 1, see `bot.workers`), which stores
through the main process (`bot.store_channel`), and the main process nudges its jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.bootstrap.storage import Storage, open_storage
from bot.config import ConfigError, Settings
from bot.flows.endpoint import FlowEndpoint
from bot.flows.keys import KeyFileError, load_private_key_file
from bot.health import Health, SchedulerState
from bot.http.app import AdminApp, WsgiApp
from bot.metrics import Metrics
from bot.rules.events import ParsedBatch
from bot.rules.routing import route_batch
from bot.whatsapp.webhook import Reply, WebhookHandler
from storage.ingest import StoreResult

Routes = dict[str, Callable[[dict[str, Any], bytes], Reply]]
Commit = Callable[[ParsedBatch], StoreResult]
"""Stores a routed batch durably (a worker's: `bot.store_channel.StoreClient.store`)."""


@dataclass(frozen=True)
class Web:
    public: WsgiApp
    admin: AdminApp


@dataclass(frozen=True)
class Nudges:
    """Run a job now (`NudgeableJob.nudge`)."""

    inbox: Callable[[], None]
    outbox: Callable[[], None]


@dataclass(frozen=True)
class WorkerWeb:
    """A webhook worker's parts: its own storage connection, health check and public app."""

    storage: Storage
    health: Health
    public: WsgiApp


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
    nudges: Nudges,
    health: Health,
    metrics: Metrics,
    flows: Routes,
) -> Web:
    public = _public_app(
        settings, storage=storage, nudges=nudges, health=health, metrics=metrics, flows=flows
    )
    return Web(public=public, admin=AdminApp(health=health.check, metrics=metrics.render))


def build_worker_web(
    settings: Settings,
    *,
    commit: Commit,
    scheduler: SchedulerState,
    metrics: Metrics,
    clock: Callable[[], float],
) -> WorkerWeb:
    """Open a storage connection of this process's own and build the public app over it.

    Args:
        commit: stores a routed batch (through the main process, which then nudges its
            jobs); routing, which reads this process's storage, happens here.
        scheduler: whether the main process's jobs run (its heartbeat): /healthz answered by
            a worker says "unavailable" when they stop, as the main process's would.

    Raises:
        ConfigError, StorageUnavailable, SchemaTooNew: as `bootstrap_server`.
    """
    flows = flow_routes(settings, metrics)
    storage = open_storage(settings, clock=clock)
    health = Health(
        settings=settings,
        db=storage.db,
        poll_state=storage.poll_state,
        scheduler=scheduler,
        clock=clock,
        started_at=clock(),
    )
    public = _public_app(
        settings, storage=storage, nudges=None, health=health, metrics=metrics, flows=flows, commit=commit
    )
    return WorkerWeb(storage=storage, health=health, public=public)


def _public_app(
    settings: Settings,
    *,
    storage: Storage,
    nudges: Nudges | None,
    health: Health,
    metrics: Metrics,
    flows: Routes,
    commit: Commit | None = None,
) -> WsgiApp:
    s = settings
    committing = commit or storage.inbound.ingest.store_batch

    def store(batch: ParsedBatch) -> StoreResult:
        return committing(_routed(batch, settings, storage))

    def on_stored(result: StoreResult) -> None:
        # Called from webhook threads; the jobs exist by then (HTTP serves only once all is built).
        if nudges is not None:
            nudge_for(result, nudges)

    webhook = WebhookHandler(
        verify_token=s.whatsapp.verify_token,
        app_secret=s.whatsapp.app_secret,
        max_body_bytes=s.server.max_body_bytes,
        store=store,
        on_stored=on_stored,
        observe=lambda outcome: metrics.webhooks.labels(outcome).inc(),
    )
    return WsgiApp(
        webhook_path=s.server.webhook_path, webhook=webhook, health=health.cached, extra_routes=flows
    )


def nudge_for(result: StoreResult, nudges: Nudges) -> None:
    """Wake the jobs a stored delivery gave work to."""
    if result.messages_new:
        nudges.inbox()
    if result.statuses_new:
        nudges.outbox()


def _routed(batch: ParsedBatch, settings: Settings, storage: Storage) -> ParsedBatch:
    """Conversation keys per service, and a user who hid their phone back on their ticket."""

    def service_of(phone_number_id: str) -> tuple[str, bool]:
        service = settings.service_for(phone_number_id)
        return service.id, service.default

    return route_batch(batch, service_of, storage.mappings.key_for_user)
