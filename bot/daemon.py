"""The process lifecycle of `wajira run` (and the demo): listen, build, start, serve, stop.

Every part comes from the composition root, `bot.bootstrap`; this module only binds the HTTP
listeners, starts and stops the scheduler, handles signals and talks to systemd (sd_notify).
Tests pass their own `jira`, `graph` or `ai` (a fake or an adapter pointed at the sandbox).
Nothing here runs at import time.

With `[server] workers` > 1 the public port is served by worker processes (`bot.workers`):
this process then holds the port without accepting on it, runs the jobs, the admin listener
and the systemd notifications, commits what the workers received (`bot.store_channel`) and
serves /metrics summed over every process. With 1 (the default) everything is as it always was: one process.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable

from bot.bootstrap import Server, bootstrap_server
from bot.bootstrap.web import Nudges, nudge_for
from bot.config import Settings
from bot.http.app import LateApp
from bot.http.server import HttpServer
from bot.logs import get_logger
from bot.metrics import Metrics, use_multiprocess_dir
from bot.ports import AiPort, GraphPort, JiraPort
from bot.sdnotify import Notifier
from bot.store_channel import StoreService
from bot.workers import HEARTBEAT_SECONDS, Heartbeat, WebhookWorkers, WorkerSpec

log = get_logger(__name__)

_WORKER_STOP_MARGIN_SECONDS = 5.0
"""Beyond the request timeout, before a worker that has not stopped is killed."""


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        jira: JiraPort | None = None,
        graph: GraphPort | None = None,
        ai: AiPort | None = None,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        # systemd's Type=notify socket; a no-op outside systemd (tests, demo, a terminal).
        self.notifier = notifier or Notifier()
        self._health_status = ""
        self._clock = clock
        self._jira, self._graph, self._ai = jira, graph, ai
        self._stopped = threading.Event()
        self._public_app, self._admin_app = LateApp(), LateApp()
        self.http: HttpServer | None = None
        self.admin_http: HttpServer | None = None
        self.parts: Server | None = None
        # [server] workers > 1: the held port, the metrics directory, the workers, and the
        # channels over which they commit through this process.
        self._held_port: socket.socket | None = None
        self._metrics_dir: str | None = None
        self.workers: WebhookWorkers | None = None
        self.heartbeat: Heartbeat | None = None
        self._store_service: StoreService | None = None

    @property
    def url(self) -> str:
        """The public port's URL (served by this process, or by its webhook workers)."""
        if self.http is not None:
            return self.http.url
        assert self._held_port is not None, "the port is bound in start()"
        host, port = self._held_port.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        """Build everything, start the schedule, then serve; READY=1 once all of it is up."""
        s = self.settings
        metrics = None
        if s.server.workers > 1:
            # Before any metric exists in this process: every process writes its values here.
            self._metrics_dir = tempfile.mkdtemp(prefix="wajira-metrics-")
            use_multiprocess_dir(self._metrics_dir)
            metrics = Metrics(multiprocess_dir=self._metrics_dir)
        parts = self.parts = bootstrap_server(
            s,
            owner=self._listen,
            clock=self._clock,
            jira=self._jira,
            graph=self._graph,
            ai=self._ai,
            metrics=metrics,
        )
        core = parts.components
        self._public_app.app, self._admin_app.app = parts.web.public, parts.web.admin
        self._schedule_watchdog(parts)
        # Everything built so far (modules, clients, settings) lives as long as the process.
        # Frozen, the cyclic collector stops walking it on every full collection: under a
        # webhook burst those walks cost more CPU than storing the messages.
        gc.collect()
        gc.freeze()
        core.jobs.scheduler.start()
        if self.http is not None:
            self.http.start()
        else:
            self._start_workers(parts)
        if self.admin_http:
            self.admin_http.start()
        log.info(
            "daemon_started",
            url=self.url,
            webhook_workers=s.server.workers,
            admin_url=self.admin_http.url if self.admin_http else None,
            webhook_path=s.server.webhook_path,
            instance=core.owner,
            schema_version=core.storage.schema_version,
            # What JiraAdapter.connect decides from the same settings: a PAT means Server/DC.
            jira="server" if s.jira.token else "cloud",
        )
        # Only now are storage, the scheduler and the webhook all up: systemd marks the unit
        # active and starts what is ordered after it.
        self.notifier.ready(f"serving {self.url}{s.server.webhook_path} as {core.owner}")

    def _listen(self) -> str:
        """Bind the HTTP listeners (not serving yet) and name this instance."""
        s = self.settings
        if s.server.workers > 1:
            self._held_port = _hold_port(s.server.host, s.server.port)
        else:
            self.http = HttpServer(
                self._public_app,
                s.server.host,
                s.server.port,
                request_timeout=s.server.request_timeout_seconds,
                max_body_bytes=s.server.max_body_bytes,
            )
        if s.server.admin_port:
            self.admin_http = HttpServer(
                self._admin_app,
                s.server.admin_host,
                s.server.admin_port,
                request_timeout=s.server.request_timeout_seconds,
                max_body_bytes=64 * 1024,
                workers=2,
            )
        self.notifier.status("starting: opening storage, migrating the schema")
        port = self.http.port if self.http else self._held_port_number()
        return s.server.instance_id or f"{socket.gethostname()}:{port}"

    def _held_port_number(self) -> int:
        assert self._held_port is not None
        return int(self._held_port.getsockname()[1])

    def _start_workers(self, parts: Server) -> None:
        """Start the webhook workers and return once every one serves.

        Raises:
            WorkersNotReady: one exited while starting (port, storage), or they took too long.
        """
        s = self.settings
        assert self._metrics_dir is not None
        schedule = parts.components.jobs.schedule
        heartbeat = self.heartbeat = Heartbeat()
        heartbeat.beat()
        parts.components.jobs.scheduler.add("webhook_workers_heartbeat", heartbeat.beat, HEARTBEAT_SECONDS)
        # With port 0 the kernel chose the port this process holds: the workers bind that one.
        server = dataclasses.replace(s.server, port=self._held_port_number())
        spec = WorkerSpec(
            settings=dataclasses.replace(s, server=server),
            index=0,
            parent_pid=os.getpid(),
            metrics_dir=self._metrics_dir,
            heartbeat=heartbeat,
        )
        from bot.webhook_worker import serve_webhooks  # the workers' code; this process never runs it

        ingest = parts.components.storage.inbound.ingest
        nudges = Nudges(inbox=schedule.inbox.nudge, outbox=schedule.outbox.nudge)
        self._store_service = StoreService(
            ingest.store_batch_async,
            on_stored=lambda result: nudge_for(result, nudges),
            on_ready=self._worker_ready,
        )
        self.workers = WebhookWorkers(
            spec,
            s.server.workers,
            target=serve_webhooks,
            attach=self._store_service.attach,
            stop_seconds=s.server.request_timeout_seconds + _WORKER_STOP_MARGIN_SECONDS,
        )
        self.notifier.status(f"starting: {s.server.workers} webhook workers")
        self.workers.start()
        self.workers.wait_ready()

    def _worker_ready(self, pid: int) -> None:
        if self.workers is not None:  # set before any worker starts, so before any says so
            self.workers.ready(pid)

    def _schedule_watchdog(self, parts: Server) -> None:
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
            parts.components.jobs.scheduler.add("watchdog", self._feed_watchdog, max(interval / 3, 0.1))

    def _feed_watchdog(self) -> None:
        self.notifier.watchdog()
        assert self.parts is not None  # the watchdog is scheduled only once they are built
        # `systemctl status` shows the health check's verdict, sent only when it changes.
        healthy, detail = self.parts.health.check()
        text = "healthy" if healthy else "unhealthy: " + "; ".join(detail["problems"])
        if text != self._health_status:
            self._health_status = text
            self.notifier.status(text)

    # -- stopping ----------------------------------------------------------------------------

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
        if self.workers:
            # Each answers what it received (within the request timeout), then exits; their
            # last commits run here meanwhile, so storage closes only after this.
            self.workers.stop()
        if self._store_service:
            self._store_service.close()
        if self._held_port:
            self._held_port.close()
        if self.parts:
            self.parts.components.jobs.scheduler.stop(wait=True)
            try:
                self.parts.components.close()
            except Exception:  # shutting down: a failing close must not stop the exit
                pass
        if self._metrics_dir:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            use_multiprocess_dir(None)
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
        try:
            self.start()
        except BaseException:
            # Webhook workers, the scheduler and storage may be up: take them down before failing.
            self.stop()
            raise
        while not stop_requested.wait(0.5):
            pass
        self.stop()
        return 0


def _hold_port(host: str, port: int) -> socket.socket:
    """Bind host:port with SO_REUSEPORT and never listen: the port is ours (the workers bind
    it too; SO_REUSEPORT admits only sockets of the same user), yet no connection waits here."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
