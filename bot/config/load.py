"""Finding, reading and validating config.toml.

Nothing here runs at import time: the CLI calls `load_config` once and hands the
`Settings` to the composition root.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tomllib
from collections.abc import Mapping
from typing import Any

from bot.config import sections
from bot.config.errors import ConfigError
from bot.config.model import (
    FlowsSettings,
    InboxSettings,
    JiraSettings,
    LoggingSettings,
    MediaSettings,
    OpenAISettings,
    OutboxSettings,
    PollerSettings,
    ServerSettings,
    ServiceSettings,
    Settings,
    StorageSettings,
    WhatsAppSettings,
)
from bot.config.reader import SecretSource, Table

# Served by the daemon itself; a webhook or flows path there would shadow them.
RESERVED_PATHS = ("/healthz", "/metrics")


def resolve_config_path(arg: str | None, env: Mapping[str, str] = os.environ) -> pathlib.Path:
    """The config file to read: `--config`, else `$WAJIRA_CONFIG`, else ./config.toml."""
    chosen = arg or env.get("WAJIRA_CONFIG") or "config.toml"
    return pathlib.Path(chosen).expanduser()


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] = os.environ) -> Settings:
    """Read and validate a config file.

    Args:
        path: the TOML file.
        env: where secrets may come from instead of the file (and `$CREDENTIALS_DIRECTORY`).

    Returns:
        The validated settings.

    Raises:
        ConfigError: key "config" when the file is missing, unreadable or not TOML;
            otherwise the dotted key of the first wrong value.
    """
    path = pathlib.Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError("config", f"file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        # The message already carries "(at line L, column C)".
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("config", f"{path} is not UTF-8 text: {exc}") from exc
    return parse_config(data, env, source=str(path))


def parse_config(
    data: dict[str, Any], env: Mapping[str, str] = os.environ, *, source: str = "config.toml"
) -> Settings:
    """Validate parsed TOML (a dict) into `Settings`.

    Args:
        data: what `tomllib` produced.
        env: environment overrides; an empty value counts as unset.
        source: the file's name, used in "missing required value" messages.

    Raises:
        ConfigError: naming the dotted key of the first unknown, missing or wrong value.
    """
    root = Table(data, "", Settings, SecretSource(env), source)
    openai = sections.openai(root.table("openai", OpenAISettings))
    settings = Settings(
        server=sections.server(root.table("server", ServerSettings)),
        storage=sections.storage(root.table("storage", StorageSettings)),
        whatsapp=sections.whatsapp(root.table("whatsapp", WhatsAppSettings)),
        jira=sections.jira(root.table("jira", JiraSettings)),
        openai=openai,
        poller=sections.poller(root.table("poller", PollerSettings)),
        inbox=sections.inbox(root.table("inbox", InboxSettings)),
        outbox=sections.outbox(root.table("outbox", OutboxSettings)),
        services=_services(root, openai.model),
        media=sections.media(root.table("media", MediaSettings)),
        flows=sections.flows(root.table("flows", FlowsSettings)),
        logging=sections.logging(root.table("logging", LoggingSettings)),
    )
    _check_paths(settings)
    _check_openai_key(root, settings)
    return settings


def _services(root: Table, default_model: str) -> tuple[ServiceSettings, ...]:
    tables = root.tables("services", ServiceSettings)
    if not tables:
        raise root.error("services", "at least one [[services]] table is required")
    services = [sections.service(t, default_model) for t in tables]

    seen_ids: dict[str, int] = {}
    routed: dict[str, str] = {}
    for index, (t, svc) in enumerate(zip(tables, services)):
        if svc.id in seen_ids:
            first = seen_ids[svc.id]
            raise t.error("id", f"duplicate service id {svc.id!r} (also services[{first}])")
        seen_ids[svc.id] = index
        for number in svc.phone_number_ids:
            # One number, one service: otherwise routing would depend on file order.
            if routed.get(number, svc.id) != svc.id:
                owner = routed[number]
                reason = f"{number!r} is already routed to service {owner!r}"
                raise t.error("phone_number_ids", reason)
            routed[number] = svc.id

    if len(services) == 1:
        # A lone service takes everything, whatever `default` says.
        return (dataclasses.replace(services[0], default=True),)
    defaults = [index for index, svc in enumerate(services) if svc.default]
    if len(defaults) > 1:
        raise tables[defaults[1]].error(
            "default", f"only one service may be the default (services[{defaults[0]}] already is)"
        )
    if not defaults:
        raise root.error(
            "services",
            "with several services, exactly one needs default = true "
            "(it takes messages to business numbers no service lists)",
        )
    return tuple(services)


def _check_paths(settings: Settings) -> None:
    webhook = settings.server.webhook_path
    endpoint = settings.flows.endpoint_path
    if webhook in RESERVED_PATHS:
        raise ConfigError("server.webhook_path", f"{webhook} is served by the daemon itself")
    if endpoint in RESERVED_PATHS:
        raise ConfigError("flows.endpoint_path", f"{endpoint} is served by the daemon itself")
    if endpoint == webhook:
        raise ConfigError("flows.endpoint_path", "must differ from server.webhook_path")
    server = settings.server
    if server.admin_port and server.admin_port == server.port:
        # Even on different addresses one port for both invites exposing the admin one by mistake.
        raise ConfigError(
            "server.admin_port", f"must differ from server.port ({server.port}); 0 turns it off"
        )


def _check_openai_key(root: Table, settings: Settings) -> None:
    # Only an enabled assistant uses the key: unused, it is neither required nor checked.
    for index, svc in enumerate(settings.services):
        if svc.assistant.enabled:
            openai = root.table("openai", OpenAISettings)
            if settings.openai.api_key:
                openai.refuse_placeholder("api_key")
                return
            error = openai.missing("api_key")
            raise ConfigError(
                error.key,
                f"{error.reason}: services[{index}] ({svc.id}) has its assistant enabled; "
                "set enabled = false in its [services.assistant] to run without one",
            )
