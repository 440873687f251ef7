"""The process lifecycle of `wajira run` (and the demo): listen, build, start, serve, stop.

Every part comes from the composition root, `bot.bootstrap`; this module only binds the HTTP
listeners, starts and stops the scheduler, handles signals and talks to systemd (sd_notify).
Tests pass their own `jira`, `graph` or `ai` (a fake or an adapter pointed at the sandbox).
Nothing here runs at import time.
"""

from __future__ import annotations

import gc
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from bot.bootstrap import Server, bootstrap_server
from bot.config import Settings
from bot.http.server import HttpServer
from bot.logs import get_logger
from bot.ports import AiPort, GraphPort, JiraPort
from bot.sdnotify import Notifier

log = get_logger(__name__)


class _LateApp:
    """A WSGI app filled in after the port is bound: with port 0 the port names the instance,
    and the parts need that name. Requests are served only after `app` is set."""

    app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self.app is not None, "HttpServer.start() runs after the parts are built"
        return self.app(environ, start_response)


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
        self._public_app, self._admin_app = _LateApp(), _LateApp()
        self.http: HttpServer | None = None
        self.admin_http: HttpServer | None = None
        self.parts: Server | None = None

    def start(self) -> None:
        """Build everything, start the schedule, then serve; READY=1 once all of it is up."""
        s = self.settings
        parts = self.parts = bootstrap_server(
            s, owner=self._listen, clock=self._clock, jira=self._jira, graph=self._graph, ai=self._ai
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
        assert self.http is not None  # bound by _listen
        self.http.start()
        if self.admin_http:
            self.admin_http.start()
        log.info(
            "daemon_started",
            url=self.http.url,
            admin_url=self.admin_http.url if self.admin_http else None,
            webhook_path=s.server.webhook_path,
            instance=core.owner,
            schema_version=core.storage.schema_version,
            # What JiraAdapter.connect decides from the same settings: a PAT means Server/DC.
            jira="server" if s.jira.token else "cloud",
        )
        # Only now are storage, the scheduler and the webhook all up: systemd marks the unit
        # active and starts what is ordered after it.
        self.notifier.ready(f"serving {self.http.url}{s.server.webhook_path} as {core.owner}")

    def _listen(self) -> str:
        """Bind the HTTP listeners (not serving yet) and name this instance."""
        s = self.settings
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
        return s.server.instance_id or f"{socket.gethostname()}:{self.http.port}"

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
        if self.parts:
            self.parts.components.jobs.scheduler.stop(wait=True)
            try:
                self.parts.components.close()
            except Exception:  # shutting down: a failing close must not stop the exit
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
