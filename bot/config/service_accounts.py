"""`[services.jira]` and `[services.openai]`: a service's own Jira and AI accounts.

A service without these tables uses `[jira]` and `[openai]`. Their secrets may come from the
environment or `$CREDENTIALS_DIRECTORY` under names derived from the service id
(`model.service_env_name`), so two ids that derive the same name are refused, as are two
services sharing a Jira project through different accounts (a ticket key would not say which
account reads it).
"""

from __future__ import annotations

from bot.config import formats
from bot.config.model import (
    ServiceJiraSettings,
    ServiceOpenAISettings,
    ServiceSettings,
    service_env_name,
)
from bot.config.reader import Table
from bot.config.sections import check_jira_auth

JIRA_SECRETS = ("api_token", "token")
OPENAI_SECRETS = ("api_key",)


def service_jira(service: Table, service_id: str) -> ServiceJiraSettings | None:
    """The service's `[services.jira]` table, or None when it has none."""
    if not service.has("jira"):
        return None
    t = service.table("jira", env={f: service_env_name(service_id, f"jira_{f}") for f in JIRA_SECRETS})
    settings = ServiceJiraSettings(
        url=formats.http_url(t, "url", carries_token=True),
        email=t.string("email"),
        api_token=t.secret("api_token"),
        token=t.secret("token"),
    )
    _check_auth(t, settings, service_id)
    return settings


def _check_auth(t: Table, s: ServiceJiraSettings, service_id: str) -> None:
    # Exactly one style, as for [jira]: the adapter never guesses between basic and bearer auth.
    api_token, token = (service_env_name(service_id, f"jira_{f}") for f in JIRA_SECRETS)
    where = f"in config.toml or ${api_token} / ${token}; or remove the table to use [jira]"
    check_jira_auth(t, s.email, s.api_token, s.token, where=where)


def service_openai(service: Table, service_id: str) -> ServiceOpenAISettings | None:
    """The service's `[services.openai]` table, or None when it has none. Its key is required:
    the table exists only to pay with another account."""
    if not service.has("openai"):
        return None
    t = service.table("openai", env={f: service_env_name(service_id, f"openai_{f}") for f in OPENAI_SECRETS})
    return ServiceOpenAISettings(
        api_key=t.secret("api_key", required=True),
        base_url=formats.http_url(t, "base_url", carries_token=True) if t.string("base_url") else "",
    )


def check_accounts(tables: list[Table], read: list[ServiceSettings]) -> None:
    """Refuse ids whose secret variables would collide, and a project two accounts serve."""
    env_ids: dict[str, int] = {}
    project_account: dict[str, tuple[int, ServiceJiraSettings | None]] = {}
    for index, (t, svc) in enumerate(zip(tables, read, strict=True)):
        name = service_env_name(svc.id, "")
        if name in env_ids and read[env_ids[name]].id != svc.id:
            first = read[env_ids[name]].id
            raise t.error(
                "id",
                f"{svc.id!r} and {first!r} (services[{env_ids[name]}]) name the same variables "
                f"({name}…): use ids that differ in more than '-' and '_'",
            )
        env_ids.setdefault(name, index)
        earlier = project_account.get(svc.project_key)
        if earlier is not None and account_identity(earlier[1]) != account_identity(svc.jira):
            raise t.error(
                "jira" if svc.jira is not None else "project_key",
                f"project {svc.project_key} is also served by services[{earlier[0]}] "
                f"({read[earlier[0]].id}) with another Jira account: one project, one account",
            )
        project_account.setdefault(svc.project_key, (index, svc.jira))


def account_identity(jira: ServiceJiraSettings | None) -> tuple[str, str, str, str] | None:
    """What makes two Jira tables the same account (None: `[jira]`'s)."""
    if jira is None:
        return None
    return (jira.url, jira.email, jira.api_token, jira.token)
