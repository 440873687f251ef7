"""Vendor parts: the Jira, WhatsApp (Graph API) and OpenAI clients, built from the settings.

Building a client touches no network: the first call does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.ai.client import OpenAIAdapter
from bot.config import Settings
from bot.jira_api.adapter import JiraAdapter
from bot.metrics import Metrics
from bot.ports import AiPort, GraphPort, JiraPort
from bot.whatsapp.graph import GraphAdapter

Observe = Callable[[str, str, float], None]


@dataclass(frozen=True)
class Vendors:
    """The three services as the jobs see them: real adapters, or the fakes a test passes in."""

    jira: JiraPort
    graph: GraphPort
    ai: AiPort


@dataclass(frozen=True)
class Clients:
    """The real adapters, with the calls no job makes (projects, permissions, phone numbers,
    models): what `wajira check` probes with."""

    jira: JiraAdapter
    graph: GraphAdapter
    ai: OpenAIAdapter


def connect_vendors(
    settings: Settings,
    metrics: Metrics,
    *,
    jira: JiraPort | None = None,
    graph: GraphPort | None = None,
    ai: AiPort | None = None,
) -> Vendors:
    """Real adapters reporting to `metrics`, except those given."""
    return Vendors(
        jira=jira or connect_jira(settings, observe=metrics.observer("jira")),
        graph=graph or connect_graph(settings, observe=metrics.observer("graph")),
        ai=ai or connect_ai(settings, observe=metrics.observer("openai")),
    )


def connect_clients(settings: Settings, *, max_timeout: float) -> Clients:
    """Real adapters whose every request gives up after `max_timeout` seconds (or sooner, if
    the settings say so)."""
    return Clients(
        jira=connect_jira(settings, max_timeout=max_timeout),
        graph=connect_graph(settings, max_timeout=max_timeout),
        ai=connect_ai(settings, max_timeout=max_timeout),
    )


def connect_jira(
    settings: Settings, *, max_timeout: float | None = None, observe: Observe | None = None
) -> JiraAdapter:
    s = settings.jira
    return JiraAdapter.connect(
        s.url,
        email=s.email,
        api_token=s.api_token,
        token=s.token,
        timeout=_bounded(s.timeout_seconds, max_timeout),
        observe=observe,
    )


def connect_graph(
    settings: Settings, *, max_timeout: float | None = None, observe: Observe | None = None
) -> GraphAdapter:
    s = settings.whatsapp
    # [whatsapp] has no timeout key: the adapter's own default, unless a bound is asked for.
    timeout: dict[str, Any] = {} if max_timeout is None else {"timeout": max_timeout}
    return GraphAdapter.connect(
        base_url=s.graph_url,
        api_version=s.api_version,
        access_token=s.access_token,
        observe=observe,
        **timeout,
    )


def connect_ai(
    settings: Settings, *, max_timeout: float | None = None, observe: Observe | None = None
) -> OpenAIAdapter:
    s = settings.openai
    return OpenAIAdapter.connect(
        # Without an enabled assistant the key may be empty (the config requires it otherwise);
        # the client still wants one, and it is never used.
        api_key=s.api_key or "unused",
        base_url=s.base_url,
        timeout=_bounded(s.timeout_seconds, max_timeout),
        observe=observe,
    )


def _bounded(configured: float, max_timeout: float | None) -> float:
    return configured if max_timeout is None else min(max_timeout, configured)
