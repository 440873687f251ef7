"""The composition root: the one place real adapters are built and wired together.

Tests pass their own `jira` (a fake or an adapter pointed at the sandbox); everything else
comes from `Settings`. Nothing here runs at import time.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable

from bot.config import Settings
from bot.http.app import WsgiApp
from bot.http.server import HttpServer
from bot.jira_api.adapter import JiraAdapter
from bot.logs import get_logger
from bot.metrics import Metrics
from bot.whatsapp.webhook import WebhookHandler
from jobs.inbox import InboxJob
from jobs.scheduler import Scheduler
from jobs.tickets import TicketOpener
from storage.db import StorageUnavailable, bind, open_database, ping
from storage.inbound import InboundQueue
from storage.leases import Leases
from storage.mappings import Mappings
from storage.schema import migrate

log = get_logger(__name__)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        jira: JiraAdapter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self._jira = jira
        self._stopped = threading.Event()
        self.http: HttpServer | None = None
        self.scheduler: Scheduler | None = None

    # -- wiring ------------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        self.db = open_database(s.storage.url)
        version = migrate(self.db)
        bind(self.db)
        self.queue = InboundQueue(self.db, clock=self.clock)
        self.mappings = Mappings(self.db)
        self.leases = Leases(self.db, clock=self.clock)
        self.jira = self._jira or JiraAdapter.connect(
            s.jira.url,
            email=s.jira.email,
            api_token=s.jira.api_token,
            token=s.jira.token,
            timeout=s.jira.timeout_seconds,
            observe=self.metrics.observer("jira"),
        )
        self.metrics.add_queue_stats(self.queue.stats)

        self.scheduler = Scheduler(max_workers=4)
        # Bind the HTTP socket first: with port 0 the real port is part of our instance id.
        self.http = HttpServer(self._wsgi_app(), s.server.host, s.server.port)
        self.owner = s.server.instance_id or f"{socket.gethostname()}:{self.http.port}"
        self.inbox = InboxJob(
            settings=s,
            queue=self.queue,
            leases=self.leases,
            jira=self.jira,
            tickets=TicketOpener(self.jira, self.mappings, clock=self.clock),
            owner=self.owner,
            clock=self.clock,
        )
        self.inbox_job = self.scheduler.add("inbox", self.inbox.run, s.inbox.interval_seconds)
        self.scheduler.start()
        self.http.start()
        log.info(
            "daemon_started",
            url=self.http.url,
            webhook_path=s.server.webhook_path,
            instance=self.owner,
            schema_version=version,
            jira="cloud" if self.jira.cloud else "server",
        )

    def _wsgi_app(self) -> WsgiApp:
        s = self.settings
        webhook = WebhookHandler(
            verify_token=s.whatsapp.verify_token,
            app_secret=s.whatsapp.app_secret,
            max_body_bytes=s.server.max_body_bytes,
            store=self.queue.store_batch,
            on_stored=lambda result: self.inbox_job.nudge(),
            observe=lambda outcome: self.metrics.webhooks.labels(outcome).inc(),
        )
        return WsgiApp(
            webhook_path=s.server.webhook_path,
            webhook=webhook,
            health=self.health,
            metrics=self.metrics.render,
        )

    # -- health ------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict]:
        problems: list[str] = []
        try:
            ping(self.db)
        except StorageUnavailable as exc:
            problems.append(f"storage: {exc}")
        if not (self.scheduler and self.scheduler.running):
            problems.append("scheduler is not running")
        job = getattr(self, "inbox_job", None)
        limit = 3 * self.settings.inbox.interval_seconds
        if job is not None and job.last_run_finished is not None:
            if self.clock() - job.last_run_finished > limit and not job._running.locked():
                problems.append(f"inbox job has not run for over {limit:.0f}s")
        detail = {"status": "ok" if not problems else "unhealthy", "problems": problems}
        if job is not None:
            detail["inbox_last_run"] = job.last_run_finished
        return (not problems, detail)

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop accepting webhooks, let running jobs finish, close storage."""
        if self._stopped.is_set():
            return
        self._stopped.set()
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
        """`wajira run`: serve until SIGTERM/SIGINT, then shut down gracefully and return 0."""
        stop_requested = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            log.info("signal_received", signal=signal.Signals(signum).name)
            stop_requested.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not stop_requested.wait(0.5):
            pass
        self.stop()
        return 0
