"""Prometheus metrics on a registry of our own (so tests can build several daemons in one process).

With `[server] workers` > 1 the webhook's counters live in other processes. prometheus_client's
multiprocess mode then keeps every process's values in memory-mapped files of one directory
(`use_multiprocess_dir`), and a scrape sums them (`Metrics(multiprocess_dir=...)`). Only
counters and histograms live there: every gauge of ours is read from storage at scrape time
(`_StorageCollector`), so no gauge needs a `multiprocess_mode`. With one process nothing of
this is used and the registry is exactly what it always was.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from storage.queue import OLDEST_PENDING_AGE

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_dir(path: str | None) -> None:
    """Make metrics created from now on in this process write to `path` (None: back to memory).

    prometheus_client picks its value class when it is first imported, from the environment;
    by then our modules have imported it, so the class is swapped here as well. Call it before
    any `Metrics` is built, in the main process and in each webhook worker. The environment
    variable is set too, for what prometheus_client reads from it later (the collector).
    """
    if path is None:
        os.environ.pop(MULTIPROC_ENV, None)
        values.ValueClass = values.MutexValue
        return
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.MultiProcessValue()


def mark_process_dead(pid: int, path: str) -> None:
    """A webhook worker ended: drop its live-gauge files (its counters stay in the totals)."""
    multiprocess.mark_process_dead(pid, path)


class Metrics:
    """Args:
    multiprocess_dir: the directory every process of this daemon writes its values to
        (after `use_multiprocess_dir`); `render` then sums them all. None: this process only.
    """

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # What a scrape reads: the registry itself, or every process's files plus the gauges.
        self._exposed = self.registry
        if multiprocess_dir is not None:
            self._exposed = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._exposed, path=multiprocess_dir)
        self.webhooks = Counter(
            "wajira_webhook_requests", "Webhook requests by outcome", ["outcome"], registry=self.registry
        )
        self.calls = Counter(
            "wajira_external_calls",
            "Calls to Jira, Graph and OpenAI by outcome",
            ["service", "operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wajira_external_call_seconds",
            "Latency of calls to Jira, Graph and OpenAI",
            ["service", "operation"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.ai_tokens = Counter(
            "wajira_ai_tokens", "OpenAI tokens spent on replies", ["service"], registry=self.registry
        )
        self.housekeeping_deleted = Counter(
            "wajira_housekeeping_deleted_rows",
            "Finished rows housekeeping deleted, by table",
            ["table"],
            registry=self.registry,
        )

    def observer(self, service: str) -> Callable[[str, str, float], None]:
        def observe(operation: str, outcome: str, seconds: float) -> None:
            self.calls.labels(service, operation, outcome).inc()
            self.latency.labels(service, operation).observe(seconds)

        return observe

    def add_storage_gauges(
        self, queues: dict[str, Callable[[], dict[str, Any]]], poll_record: Callable[[], object]
    ) -> None:
        """Gauges read at scrape time: each queue's `stats()` (every queue reports the same
        `storage.queue` keys) and the poll record's last success."""
        collector = _StorageCollector(queues, poll_record)
        self.registry.register(collector)
        if self._exposed is not self.registry:
            self._exposed.register(collector)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self._exposed), CONTENT_TYPE_LATEST


class _StorageCollector:
    """Reads queue depths and the poll state from storage at scrape time, so every instance
    reports the shared truth rather than what it alone did."""

    def __init__(
        self, queues: dict[str, Callable[[], dict[str, Any]]], poll_record: Callable[[], object]
    ) -> None:
        self._queues = queues
        self._poll_record = poll_record

    def describe(self):
        return []

    def collect(self):
        depth = GaugeMetricFamily(
            "wajira_queue_rows", "Rows in each queue by state", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "wajira_queue_oldest_pending_seconds", "Age of the oldest pending row", labels=["queue"]
        )
        for name, stats_of in self._queues.items():
            try:
                stats = stats_of()
            except Exception:  # storage down: the scrape still answers; /healthz reports the outage
                continue
            for state, value in stats.items():
                if isinstance(value, int) and not state.endswith("seconds"):
                    depth.add_metric([name, state], float(value))
            age = stats.get(OLDEST_PENDING_AGE)
            oldest.add_metric([name], float(age or 0.0))
        yield depth
        yield oldest
        try:
            record = self._poll_record()
        except Exception:
            return
        last = getattr(record, "last_success_at", None)
        yield GaugeMetricFamily(
            "wajira_poll_lag_seconds",
            "Seconds since the last successful JQL poll (any instance)",
            value=(time.time() - last) if last else float("nan"),
        )
