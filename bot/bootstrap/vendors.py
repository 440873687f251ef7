"""Vendor parts: the Jira, WhatsApp (Graph API) and OpenAI clients, built from the settings.

Building a client touches no network: the first call does. When some service has its own Jira
or AI account (`[services.jira]`, `[services.openai]`), the jobs get a directory routing each
call to the right account (`bot.jira_api.directory`, `bot.ai.directory`); otherwise the one
client, exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.ai.client import OpenAIAdapter
from bot.ai.directory import AiDirectory
from bot.config import Settings
from bot.config.model import ServiceJiraSettings, ServiceOpenAISettings
from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.directory import DEFAULT_ACCOUNT, build_directory, has_own_accounts, plan_accounts
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
    jira_accounts: tuple[JiraClient, ...] = ()
    """Every distinct Jira account some service uses, `[jira]`'s first when one does."""
    ai_accounts: dict[str, OpenAIAdapter] = field(default_factory=dict)
    """Service id → its own AI account's client (`[services.openai]`)."""


@dataclass(frozen=True)
class JiraClient:
    """One Jira account as `wajira check` reaches it."""

    name: str
    """"jira" for `[jira]`, else "jira:" + the ids of the services using it."""
    adapter: JiraAdapter
    url: str
    service_ids: tuple[str, ...]
    config_keys: str
    """Where its credentials are set, for a failure's hint ("[jira] token", "services[1].jira …")."""


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
        jira=jira or connect_jira_accounts(settings, observe=metrics.observer("jira")),
        graph=graph or connect_graph(settings, observe=metrics.observer("graph")),
        ai=ai or connect_ai_accounts(settings, observe=metrics.observer("openai")),
    )


def connect_jira_accounts(settings: Settings, *, observe: Observe | None = None) -> JiraPort:
    """`[jira]`'s client, or a directory over every account when a service has its own."""
    if not has_own_accounts(settings):
        return connect_jira(settings, observe=observe)

    def connect(own: ServiceJiraSettings | None) -> tuple[JiraPort, str]:
        client = connect_jira(settings, own=own, observe=observe)
        return client, (own or settings.jira).url

    return build_directory(settings, connect)


def connect_ai_accounts(settings: Settings, *, observe: Observe | None = None) -> AiPort:
    """`[openai]`'s client, or a directory giving services with their own account theirs."""
    default = connect_ai(settings, observe=observe)
    own = {s.id: connect_ai(settings, own=s.openai, observe=observe) for s in settings.services if s.openai}
    return AiDirectory(default, own) if own else default


def connect_clients(settings: Settings, *, max_timeout: float) -> Clients:
    """Real adapters whose every request gives up after `max_timeout` seconds (or sooner, if
    the settings say so)."""
    default = connect_jira(settings, max_timeout=max_timeout)
    accounts: list[JiraClient] = []
    if has_own_accounts(settings):
        index = {s.id: n for n, s in enumerate(settings.services)}
        for plan in plan_accounts(settings):
            if not plan.services:
                continue  # [jira] serves no service: nothing uses it to check
            ids = tuple(s.id for s in plan.services)
            if plan.settings is None:
                accounts.append(
                    JiraClient(DEFAULT_ACCOUNT, default, settings.jira.url, ids, _jira_keys(settings))
                )
                continue
            adapter = connect_jira(settings, own=plan.settings, max_timeout=max_timeout)
            keys = _own_jira_keys(index[ids[0]], plan.settings)
            accounts.append(JiraClient(plan.name, adapter, plan.settings.url, ids, keys))
    return Clients(
        jira=default,
        graph=connect_graph(settings, max_timeout=max_timeout),
        ai=connect_ai(settings, max_timeout=max_timeout),
        jira_accounts=tuple(accounts),
        ai_accounts={
            s.id: connect_ai(settings, own=s.openai, max_timeout=max_timeout)
            for s in settings.services
            if s.openai
        },
    )


def _jira_keys(settings: Settings) -> str:
    return "[jira] email and api_token" if settings.jira.cloud else "[jira] token"


def _own_jira_keys(index: int, own: ServiceJiraSettings) -> str:
    return f"services[{index}].jira email and api_token" if own.cloud else f"services[{index}].jira token"


def connect_jira(
    settings: Settings,
    *,
    own: ServiceJiraSettings | None = None,
    max_timeout: float | None = None,
    observe: Observe | None = None,
) -> JiraAdapter:
    """`[jira]`'s client, or with `own` that account's (timeouts stay `[jira]`'s)."""
    s = settings.jira
    account = own or s
    return JiraAdapter.connect(
        account.url,
        email=account.email,
        api_token=account.api_token,
        token=account.token,
        timeout=_bounded(s.timeout_seconds, max_timeout),
        observe=observe,
        # Every inbox worker, plus the jobs' threads (the scheduler runs up to 8), at once.
        pool_size=settings.inbox.workers + 8,
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
    settings: Settings,
    *,
    own: ServiceOpenAISettings | None = None,
    max_timeout: float | None = None,
    observe: Observe | None = None,
) -> OpenAIAdapter:
    """`[openai]`'s client, or with `own` that account's (model and timeouts stay as configured)."""
    s = settings.openai
    return OpenAIAdapter.connect(
        # Without an enabled assistant the key may be empty (the config requires it otherwise);
        # the client still wants one, and it is never used.
        api_key=(own.api_key if own else s.api_key) or "unused",
        base_url=(own.base_url if own else "") or s.base_url,
        timeout=_bounded(s.timeout_seconds, max_timeout),
        observe=observe,
    )


def _bounded(configured: float, max_timeout: float | None) -> float:
    return configured if max_timeout is None else min(max_timeout, configured)
