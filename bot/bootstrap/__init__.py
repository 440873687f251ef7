"""The composition root: the one place storage, the vendor clients, the jobs, the web apps and
the health check are built and wired together (Cosmic Python's `bootstrap.py`).

Every command takes its parts from here, and only the parts it needs:

    run, demo              bootstrap_server(settings, owner=...) -> Server (Components, health, web apps)
    catch-up               bootstrap(settings, owner=...) -> Components (storage, vendors, jobs)
    status, queue retry    open_storage(settings) -> Storage (no vendor client is built)
    check                  probes(settings, max_timeout=...) -> Probes (clients; storage deferred)

Real adapters are built unless fakes are passed in (`jira=`, `graph=`, `ai=`). Nothing here
connects or reads configuration at import time; only a call does, and building a client still
touches no network. Processes (HTTP listeners, the scheduler's thread) start in `bot.daemon`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.bootstrap.jobs import Jobs, Runners, Schedule, build_jobs
from bot.bootstrap.storage import Storage, open_storage
from bot.bootstrap.vendors import Clients, Vendors, connect_clients, connect_vendors
from bot.bootstrap.web import Nudges, Web, WorkerWeb, build_web, build_worker_web, flow_routes
from bot.config import Settings
from bot.health import Health
from bot.metrics import Metrics
from bot.ports import AiPort, GraphPort, JiraPort

__all__ = [
    "Clients",
    "Components",
    "Jobs",
    "Nudges",
    "Probes",
    "Runners",
    "Schedule",
    "Server",
    "Storage",
    "Vendors",
    "Web",
    "WorkerWeb",
    "bootstrap",
    "bootstrap_server",
    "build_worker_web",
    "open_storage",
    "probes",
]


@dataclass(frozen=True)
class Components:
    """Storage, the vendors and the jobs, built and wired, nothing started."""

    settings: Settings
    owner: str
    """This instance's name in leases and claims."""
    clock: Callable[[], float]
    metrics: Metrics
    storage: Storage
    vendors: Vendors
    jobs: Jobs

    def close(self) -> None:
        self.storage.close()


@dataclass(frozen=True)
class Server:
    """The components, and what serves them over HTTP (what `wajira run` and the demo run)."""

    components: Components
    health: Health
    web: Web


@dataclass(frozen=True)
class Probes:
    """What `wajira check` reaches. Storage is opened only when asked: opening it is the probe."""

    clients: Clients
    storage: Callable[[], Storage]


def bootstrap(
    settings: Settings,
    *,
    owner: str,
    clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
    jira: JiraPort | None = None,
    graph: GraphPort | None = None,
    ai: AiPort | None = None,
) -> Components:
    """Open storage and build every part over it; real adapters for Jira, Graph and OpenAI
    unless given.

    Raises:
        StorageUnavailable, SchemaTooNew: storage cannot be opened or migrated.
    """
    metrics = metrics or Metrics()
    storage = open_storage(settings, clock=clock)
    metrics.add_storage_gauges(
        {
            "inbound": storage.inbound.stats,
            "outbound": storage.outbound.stats,
            "ai_turns": storage.turns.stats,
            "media": storage.media_tasks.stats,
        },
        lambda: storage.poll_state.get("jira"),
    )
    vendors = connect_vendors(settings, metrics, jira=jira, graph=graph, ai=ai)
    jobs = build_jobs(settings, storage, vendors, owner=owner, clock=clock, metrics=metrics)
    return Components(settings, owner, clock, metrics, storage, vendors, jobs)


def bootstrap_server(
    settings: Settings,
    *,
    owner: str | Callable[[], str],
    clock: Callable[[], float] = time.time,
    jira: JiraPort | None = None,
    graph: GraphPort | None = None,
    ai: AiPort | None = None,
    metrics: Metrics | None = None,
) -> Server:
    """`bootstrap()`, plus the health check and the web apps.

    Args:
        owner: this instance's name, or a function naming it. The daemon passes a function
            that binds its HTTP ports (with port 0 the port is part of the name): it is called
            after the Flows key is loaded and before storage is opened, so a bad key is a
            config error with nothing bound or opened.
        metrics: given when webhook workers share them (`Metrics(multiprocess_dir=...)`).

    Raises:
        ConfigError: the Flows private key cannot be loaded.
        StorageUnavailable, SchemaTooNew: storage cannot be opened or migrated.
    """
    metrics = metrics or Metrics()
    flows = flow_routes(settings, metrics)
    name = owner() if callable(owner) else owner
    parts = bootstrap(settings, owner=name, clock=clock, metrics=metrics, jira=jira, graph=graph, ai=ai)
    health = Health(
        settings=settings,
        db=parts.storage.db,
        poll_state=parts.storage.poll_state,
        scheduler=parts.jobs.scheduler,
        clock=clock,
        started_at=clock(),
    )
    nudges = Nudges(inbox=parts.jobs.schedule.inbox.nudge, outbox=parts.jobs.schedule.outbox.nudge)
    web = build_web(
        settings, storage=parts.storage, nudges=nudges, health=health, metrics=metrics, flows=flows
    )
    return Server(parts, health, web)


def probes(settings: Settings, *, max_timeout: float) -> Probes:
    """The real clients, each request bounded by `max_timeout`, and storage to open on demand."""
    return Probes(
        clients=connect_clients(settings, max_timeout=max_timeout),
        storage=lambda: open_storage(settings),
    )
