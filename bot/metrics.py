"""Prometheus metrics on a registry of our own (so tests can build several daemons in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = Counter(
            "wajira_webhook_requests", "Webhook requests by outcome", ["outcome"], registry=self.registry
        )
        self.calls = Counter(
            "wajira_external_calls", "Calls to Jira, Graph and OpenAI by outcome",
            ["service", "operation", "outcome"], registry=self.registry,
        )
        self.latency = Histogram(
            "wajira_external_call_seconds", "Latency of calls to Jira, Graph and OpenAI",
            ["service", "operation"], registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def observer(self, service: str) -> Callable[[str, str, float], None]:
        def observe(operation: str, outcome: str, seconds: float) -> None:
            self.calls.labels(service, operation, outcome).inc()
            self.latency.labels(service, operation).observe(seconds)

        return observe

    def add_queue_stats(self, stats: Callable[[], dict]) -> None:
        self.registry.register(_QueueCollector(stats))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _QueueCollector:
    """Reads queue depths from storage at scrape time, so every instance reports the shared truth."""

    def __init__(self, stats: Callable[[], dict]) -> None:
        self._stats = stats

    def describe(self):
        return []

    def collect(self):
        try:
            stats = self._stats()
        except Exception:  # storage down: the scrape still answers; /healthz reports the outage
            return
        depth = GaugeMetricFamily("wajira_inbound_queue", "Inbound messages by state", labels=["state"])
        for state in ("pending", "retrying", "dead"):
            depth.add_metric([state], float(stats.get(state, 0)))
        yield depth
        age = stats.get("oldest_pending_age_seconds")
        yield GaugeMetricFamily(
            "wajira_inbound_oldest_pending_seconds", "Age of the oldest pending inbound message",
            value=float(age or 0.0),
        )
