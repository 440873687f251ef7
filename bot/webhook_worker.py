"""One webhook worker process (`[server] workers` > 1): the public port, nothing else.

Started by `bot.workers.WebhookWorkers` with the "spawn" method, so this module is the
process's first code: it binds host:port with SO_REUSEPORT, builds the public app over a
storage connection of its own (`bot.bootstrap.build_worker_web`, for routing and /healthz),
serves, and tells the main process it does. Deliveries are committed by the main process
(`bot.store_channel`), which then nudges its jobs.

Signals: SIGTERM (from the main process, or from systemd to the whole unit) stops it
gracefully: it stops accepting and answers every request already received, within
`[server] request_timeout_seconds`. SIGINT is ignored: Ctrl-C in a terminal reaches the whole
process group, and the main process, which gets it too, stops the workers in order. If the
main process dies without stopping it, the worker notices within a second and stops too, so
no orphan keeps answering webhooks whose messages no job would ever handle.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time

from bot import logs
from bot.bootstrap import build_worker_web
from bot.config import ConfigError
from bot.http.app import LateApp
from bot.http.server import HttpServer
from bot.metrics import Metrics, use_multiprocess_dir
from bot.store_channel import StoreClient
from bot.workers import WorkerSpec
from storage.db import StorageUnavailable
from storage.engines import lock_wait
from storage.schema import SchemaTooNew

log = logs.get_logger(__name__)

# systemd's variables are for the main process alone (NotifyAccess=main would drop ours anyway).
_SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
_PARENT_CHECK_SECONDS = 1.0


def _commit_wait(timeout_seconds: float | None) -> float:
    # The main process's commit is bounded by the storage round trip (its group commit's
    # wait, the lock wait); a second more covers the hop, so its own 503 arrives first.
    return lock_wait(timeout_seconds) + 1.0


def serve_webhooks(spec: WorkerSpec) -> None:
    """The worker's main function: serve until SIGTERM or the main process is gone.

    Exits with 1 (logged as `webhook_worker_failed`) when it cannot start: the port cannot
    be bound, storage cannot be opened; and (`webhook_worker_channel_lost`) when its channel
    to the main process ends while it serves.
    """
    for name in _SYSTEMD_VARIABLES:
        os.environ.pop(name, None)
    stop = threading.Event()
    channel_lost: list[str] = []

    def lose_channel(reason: str) -> None:
        channel_lost.append(reason)
        stop.set()

    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    s = spec.settings
    logs.configure(s.logging.level, s.logging.format, s.secrets())
    use_multiprocess_dir(spec.metrics_dir)
    app = LateApp()
    try:
        http = HttpServer(
            app,
            s.server.host,
            s.server.port,
            request_timeout=s.server.request_timeout_seconds,
            max_body_bytes=s.server.max_body_bytes,
            reuse_port=True,
        )
        assert spec.store_channel is not None, "the supervisor gives each worker its own channel"
        committer = StoreClient(
            spec.store_channel, wait_seconds=_commit_wait(s.storage.timeout_seconds), on_closed=lose_channel
        )
        web = build_worker_web(
            s,
            commit=committer.store,
            scheduler=spec.heartbeat,
            metrics=Metrics(),
            clock=time.time,
        )
    except (OSError, ConfigError, StorageUnavailable, SchemaTooNew) as exc:
        log.error("webhook_worker_failed", worker=spec.index, error=str(exc))
        sys.exit(1)
    app.app = web.public
    # As in the main process: what lives as long as the process is kept out of full collections.
    gc.collect()
    gc.freeze()
    http.start()
    committer.ready(os.getpid())
    log.info("webhook_worker_started", worker=spec.index, pid=os.getpid(), url=http.url)
    while not stop.wait(_PARENT_CHECK_SECONDS):
        if os.getppid() != spec.parent_pid:
            log.warning("webhook_worker_orphaned", worker=spec.index, reason="the main process is gone")
            break
    http.stop()
    committer.close()
    web.storage.close()
    if channel_lost:
        # Nothing could be stored any more: exit, and the supervisor starts a worker with a
        # fresh channel (or, if the main process is gone, nobody does).
        log.error("webhook_worker_channel_lost", worker=spec.index, pid=os.getpid(), reason=channel_lost[0])
        sys.exit(1)
    log.info("webhook_worker_stopped", worker=spec.index, pid=os.getpid())
