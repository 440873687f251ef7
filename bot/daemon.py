"""The composition root: the one place real adapters are built and wired together.

Tests pass their own `jira` (a fake or an adapter pointed at the sandbox); everything else
comes from `Settings`. Nothing here runs at import time.
"""

from __future__ import annotations

import gc
import signal
import socket
import threading
import time
from collections.abc import Callable

from bot.ai.client import OpenAIAdapter
from bot.config import ConfigError, Settings
from bot.flows.endpoint import FlowEndpoint
from bot.flows.keys import KeyFileError, load_private_key_file
from bot.http.app import AdminApp, WsgiApp
from bot.http.server import HttpServer
from bot.jira_api.adapter import JiraAdapter
from bot.logs import get_logger
from bot.metrics import Metrics
from bot.rules.routing import route_batch
from bot.sdnotify import Notifier
from bot.whatsapp.graph import GraphAdapter
from bot.whatsapp.webhook import WebhookHandler
from jobs.ai import AiJob
from jobs.inbox import InboxJob
from jobs.lifecycle import IssueStateRecorder
from jobs.media import MediaEnqueuer, MediaJob, MediaPolicy
from jobs.notes import Notes
from jobs.outbox import OutboxJob
from jobs.poll import PollJob
from jobs.scheduler import Scheduler
from jobs.tickets import TicketOpener
from storage.ai_turns import AiTurns
from storage.db import StorageUnavailable, bind, open_database, ping
from storage.inbound import InboundQueue
from storage.issue_states import IssueStates
from storage.leases import Leases
from storage.mappings import Mappings
from storage.media import MediaTasks
from storage.outbound import OutboundQueue, StatusFeed
from storage.polling import HandledComments, PollState
from storage.schema import migrate
from storage.ticket_history import TicketHistory

log = get_logger(__name__)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        jira: JiraAdapter | None = None,
        graph: GraphAdapter | None = None,
        ai: OpenAIAdapter | None = None,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        # systemd's Type=notify socket; a no-op outside systemd (tests, demo, a terminal).
        self.notifier = notifier or Notifier()
        self._health_status = ""
        self.clock = clock
        self.metrics = Metrics()
        self._jira = jira
        self._graph = graph
        self._ai = ai
        self._stopped = threading.Event()
        self.http: HttpServer | None = None
        self.admin_http: HttpServer | None = None
        self._health_cache: tuple[float, tuple[bool, dict]] | None = None
        self._health_lock = threading.Lock()
        self.scheduler: Scheduler | None = None

    # -- wiring ------------------------------------------------------------------------------

    def build(self, owner: str) -> None:
        """Storage, adapters and jobs, without HTTP or a schedule (what `catch-up` needs)."""
        self.db = open_database(
            self.settings.storage.url, timeout_seconds=self.settings.storage.timeout_seconds
        )
        self.schema_version = migrate(self.db)
        bind(self.db)
        self.started_at = self.clock()
        self._build_storage()
        self._build_adapters()
        self.owner = owner
        self._build_jobs()

    def start(self) -> None:
        s = self.settings
        # Bind the HTTP socket first: with port 0 the real port is part of our instance id.
        self.http = HttpServer(
            self._wsgi_app(),
            s.server.host,
            s.server.port,
            request_timeout=s.server.request_timeout_seconds,
            max_body_bytes=s.server.max_body_bytes,
        )
        if s.server.admin_port:
            self.admin_http = HttpServer(
                self._admin_app(),
                s.server.admin_host,
                s.server.admin_port,
                request_timeout=s.server.request_timeout_seconds,
                max_body_bytes=64 * 1024,
                workers=2,
            )
        self.notifier.status("starting: opening storage, migrating the schema")
        self.build(s.server.instance_id or f"{socket.gethostname()}:{self.http.port}")
        self._schedule_watchdog()
        # Everything built so far (modules, clients, settings) lives as long as the process.
        # Frozen, the cyclic collector stops walking it on every full collection: under a
        # webhook burst those walks cost more CPU than storing the messages.
        gc.collect()
        gc.freeze()
        self.scheduler.start()
        self.http.start()
        if self.admin_http:
            self.admin_http.start()
        log.info(
            "daemon_started",
            url=self.http.url,
            admin_url=self.admin_http.url if self.admin_http else None,
            webhook_path=s.server.webhook_path,
            instance=self.owner,
            schema_version=self.schema_version,
            jira="cloud" if self.jira.cloud else "server",
        )
        # Only now are storage, the scheduler and the webhook all up: systemd marks the unit
        # active and starts what is ordered after it.
        self.notifier.ready(f"serving {self.http.url}{s.server.webhook_path} as {self.owner}")

    def _build_storage(self) -> None:
        self.queue = InboundQueue(self.db, clock=self.clock)
        self.mappings = Mappings(self.db, clock=self.clock)
        self.issue_states = IssueStates(self.db, clock=self.clock)
        self.ticket_history = TicketHistory(self.db, clock=self.clock)
        self.leases = Leases(self.db, clock=self.clock)
        self.poll_state = PollState(self.db, clock=self.clock)
        self.handled = HandledComments(self.db, clock=self.clock)
        self.turns = AiTurns(self.db, clock=self.clock)
        self.media_tasks = MediaTasks(self.db, clock=self.clock)
        self.outbound = OutboundQueue(self.db, clock=self.clock)
        self.statuses = StatusFeed(self.db)
        self.metrics.add_storage_gauges(
            {
                "inbound": self.queue.stats,
                "outbound": self.outbound.stats,
                "ai_turns": self.turns.stats,
                "media": self.media_tasks.stats,
            },
            lambda: self.poll_state.get("jira"),
        )

    def _build_adapters(self) -> None:
        s = self.settings
        self.jira = self._jira or JiraAdapter.connect(
            s.jira.url,
            email=s.jira.email,
            api_token=s.jira.api_token,
            token=s.jira.token,
            timeout=s.jira.timeout_seconds,
            observe=self.metrics.observer("jira"),
        )
        self.graph = self._graph or GraphAdapter.connect(
            base_url=s.whatsapp.graph_url,
            api_version=s.whatsapp.api_version,
            access_token=s.whatsapp.access_token,
            observe=self.metrics.observer("graph"),
        )
        self.ai = self._ai or OpenAIAdapter.connect(
            api_key=s.openai.api_key or "unused",
            base_url=s.openai.base_url,
            timeout=s.openai.timeout_seconds,
            observe=self.metrics.observer("openai"),
        )

    def _build_jobs(self) -> None:
        s = self.settings
        # A thread for every interval job, the watchdog and the short nudge_at runs: the
        # watchdog job then starves only when jobs are truly stuck (see _schedule_watchdog).
        self.scheduler = Scheduler(max_workers=8)
        notes = Notes(self.jira)
        self.poll = PollJob(
            settings=s,
            jira=self.jira,
            state=self.poll_state,
            handled=self.handled,
            leases=self.leases,
            owner=self.owner,
            clock=self.clock,
        )
        # The ticket lifecycle learns each issue's status from what the poll reads anyway.
        self.poll.on_issue_seen.append(IssueStateRecorder(self.issue_states))
        self.tickets = TicketOpener(
            self.jira, self.mappings, clock=self.clock, states=self.issue_states, history=self.ticket_history
        )
        self.inbox = InboxJob(
            settings=s,
            queue=self.queue,
            leases=self.leases,
            jira=self.jira,
            tickets=self.tickets,
            owner=self.owner,
            clock=self.clock,
            after_write=self._after_inbox_write,
        )
        self.ai_job = AiJob(
            settings=s,
            jira=self.jira,
            ai=self.ai,
            graph=self.graph,
            turns=self.turns,
            handled=self.handled,
            inbound=self.queue,
            notes=notes,
            owner=self.owner,
            clock=self.clock,
            on_tokens=lambda service_id, tokens: self.metrics.ai_tokens.labels(service_id).inc(tokens),
        )
        self.outbox = OutboxJob(
            settings=s,
            graph=self.graph,
            outbound=self.outbound,
            statuses=self.statuses,
            inbound=self.queue,
            notes=notes,
            owner=self.owner,
            clock=self.clock,
        )
        self.media_job = MediaJob(
            tasks=self.media_tasks,
            graph=self.graph,
            jira=self.jira,
            notes=notes,
            owner=self.owner,
            policy=MediaPolicy(max_bytes=s.media.max_bytes),
            clock=self.clock,
        )
        self.inbox_job = self.scheduler.add("inbox", self.inbox.run, s.inbox.interval_seconds)
        # Media downloads start once the comment naming them is in Jira, never before.
        self.media_job_handle = self.scheduler.add("media", self.media_job.run, s.inbox.interval_seconds)
        self.inbox.on_delivered.append(
            MediaEnqueuer(self.media_tasks, on_enqueued=self.media_job_handle.nudge)
        )
        self.poll_job = self.scheduler.add("poll", self.poll.run, s.poller.interval_seconds)
        self.ai_job_handle = self.scheduler.add("ai", self.ai_job.run, max(1, s.poller.interval_seconds))
        self.outbox_job = self.scheduler.add("outbox", self.outbox.run, s.outbox.interval_seconds)
        self.poll.on_ai_turn = self.ai_job_handle.nudge_at
        self.ai_job.wake_at = self.ai_job_handle.nudge_at
        self.poll.on_outbound = self.outbox_job.nudge
        self.ai_job.on_outbound = self.outbox_job.nudge

    def _schedule_watchdog(self) -> None:
        """Feed systemd's watchdog (WatchdogSec=) from a job of the scheduler itself.

        That the job runs proves what a restart can cure: the scheduler's loop is alive, its
        worker pool is not exhausted by stuck jobs (the pool has a thread for every job plus
        this one), and the process is not frozen. It deliberately does not wait for the poll
        or inbox job to succeed: a slow or down Jira, Meta or database makes them late, and a
        restart fixes none of those; /healthz, `wajira status` and STATUS= report that instead.
        """
        interval = self.notifier.watchdog_interval
        if interval:
            # Three pings per deadline, so one late run never lets it pass.
            self.scheduler.add("watchdog", self._feed_watchdog, max(interval / 3, 0.1))

    def _feed_watchdog(self) -> None:
        self.notifier.watchdog()
        # `systemctl status` shows the health check's verdict, sent only when it changes.
        healthy, detail = self.health()
        text = "healthy" if healthy else "unhealthy: " + "; ".join(detail["problems"])
        if text != self._health_status:
            self._health_status = text
            self.notifier.status(text)

    def _after_inbox_write(self, issue_key: str) -> None:
        self.poll.note_write(issue_key, self.tickets.created_ids.get(issue_key))
        self.poll_job.nudge()

    def _wsgi_app(self) -> WsgiApp:
        s = self.settings
        webhook = WebhookHandler(
            verify_token=s.whatsapp.verify_token,
            app_secret=s.whatsapp.app_secret,
            max_body_bytes=s.server.max_body_bytes,
            store=lambda batch: self.queue.store_batch(self._route(batch)),
            on_stored=self._on_stored,
            observe=lambda outcome: self.metrics.webhooks.labels(outcome).inc(),
        )
        return WsgiApp(
            webhook_path=s.server.webhook_path,
            webhook=webhook,
            health=self.cached_health,
            extra_routes=self._flow_routes(),
        )

    def _admin_app(self) -> AdminApp:
        return AdminApp(health=self.health, metrics=self.metrics.render)

    def _flow_routes(self) -> dict:
        """The Flows data-exchange endpoint, served only when a private key is configured."""
        s = self.settings
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
            observe=lambda outcome: self.metrics.webhooks.labels(f"flow_{outcome}").inc(),
        )
        return {
            s.flows.endpoint_path: lambda environ, body: endpoint.handle(
                environ.get("HTTP_X_HUB_SIGNATURE_256"), body
            )
        }

    def _route(self, batch):
        """Conversation keys per service, and a user who hid their phone back on their ticket."""

        def service_of(phone_number_id: str) -> tuple[str, bool]:
            service = self.settings.service_for(phone_number_id)
            return service.id, service.default

        return route_batch(batch, service_of, self.mappings.key_for_user)

    def _on_stored(self, result) -> None:
        # Called from webhook threads; the jobs exist by then (HTTP starts after build()).
        if result.messages_new:
            self.inbox_job.nudge()
        if result.statuses_new:
            self.outbox_job.nudge()

    # -- health ------------------------------------------------------------------------------

    def cached_health(self, max_age: float = 1.0) -> tuple[bool, dict]:
        """`health()`, computed at most once a second: the public /healthz is anyone's to call,
        and each computation costs database queries."""
        with self._health_lock:
            now = time.monotonic()
            if self._health_cache is None or now - self._health_cache[0] > max_age:
                self._health_cache = (now, self.health())
            return self._health_cache[1]

    def health(self) -> tuple[bool, dict]:
        """Storage answers and the poll job ran within 3 intervals (by any instance: the
        poll state is shared through storage, and only the lease holder polls)."""
        problems: list[str] = []
        detail: dict = {}
        try:
            ping(self.db)
            record = self.poll_state.get("jira")
        except StorageUnavailable as exc:
            problems.append(f"storage: {exc}")
            record = None
        if not (self.scheduler and self.scheduler.running):
            problems.append("scheduler is not running")
        limit = 3 * self.settings.poller.interval_seconds
        now = self.clock()
        if record is not None:
            last = record.last_run_at
            detail.update(
                last_poll=last, last_poll_success=record.last_success_at, last_poll_error=record.last_error
            )
            if (last is None and now - self.started_at > limit) or (last is not None and now - last > limit):
                problems.append(f"the poll job has not run for over {limit:.0f}s")
        detail = {"status": "ok" if not problems else "unhealthy", "problems": problems, **detail}
        return (not problems, detail)

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop accepting webhooks, let running jobs finish, close storage."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        # First: systemd now runs TimeoutStopSec= and disarms the watchdog, so letting jobs
        # finish is not taken for a hang.
        self.notifier.stopping("stopping: finishing running jobs")
        if self.admin_http:
            self.admin_http.stop(grace_seconds=1)
        if self.http:
            self.http.stop()
        if self.scheduler:
            self.scheduler.stop(wait=True)
        try:
            self.db.close()
        except Exception:
            pass
        log.info("daemon_stopped")

    def wait(self) -> None:
        self._stopped.wait()

    def run_until_signalled(self) -> int:
        """`wajira run`: serve until SIGTERM/SIGINT, then shut down gracefully and return 0.

        SIGHUP does not reload (nothing re-reads the configuration while running): it is
        logged and ignored, where Python's default would end the process.
        """
        stop_requested = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            log.info("signal_received", signal=signal.Signals(signum).name)
            stop_requested.set()

        def on_hangup(_signum: int, _frame: object) -> None:
            log.warning(
                "reload_not_supported",
                signal="SIGHUP",
                reason="config changes need a restart",
                hint="systemctl restart wajira",
            )

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, on_hangup)
        self.start()
        while not stop_requested.wait(0.5):
            pass
        self.stop()
        return 0
