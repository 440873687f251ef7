"""Finding, reading and validating config.toml.

Nothing here runs at import time: the CLI calls `load_config` once and hands the
`Settings` to the composition root.
"""

from __future__ import annotations

import os
import pathlib
import tomllib
from collections.abc import Mapping
from typing import Any

from bot.config import flows, sections, services
from bot.config.errors import ConfigError
from bot.config.reader import SecretSource, Table
from bot.config.settings import Settings

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
    openai = sections.openai(root.table("openai"))
    settings = Settings(
        server=sections.server(root.table("server")),
        storage=sections.storage(root.table("storage")),
        whatsapp=sections.whatsapp(root.table("whatsapp")),
        jira=sections.jira(root.table("jira")),
        openai=openai,
        poller=sections.poller(root.table("poller")),
        inbox=sections.inbox(root.table("inbox")),
        outbox=sections.outbox(root.table("outbox")),
        services=services.services(root, openai.model),
        media=sections.media(root.table("media")),
        flows=flows.flows(root.table("flows")),
        logging=sections.logging(root.table("logging")),
    )
    _check_paths(root, settings)
    _check_openai_key(root, settings)
    return settings


def _check_paths(root: Table, settings: Settings) -> None:
    # The root names keys across sections by their dotted path ("server.webhook_path").
    webhook = settings.server.webhook_path
    endpoint = settings.flows.endpoint_path
    for key, path in (("server.webhook_path", webhook), ("flows.endpoint_path", endpoint)):
        if path in RESERVED_PATHS:
            raise root.error(key, f"{path} is served by the daemon itself")
    if endpoint == webhook:
        raise root.error("flows.endpoint_path", "must differ from server.webhook_path")
    server = settings.server
    if server.admin_port and server.admin_port == server.port:
        # Even on different addresses one port for both invites exposing the admin one by mistake.
        raise root.error("server.admin_port", f"must differ from server.port ({server.port}); 0 turns it off")


def _check_openai_key(root: Table, settings: Settings) -> None:
    # Only an enabled assistant uses the key: unused, it is neither required nor checked.
    for index, svc in enumerate(settings.services):
        if svc.assistant.enabled and svc.openai is None:
            openai = root.table("openai")
            if settings.openai.api_key:
                openai.refuse_placeholder("api_key")
                return
            missing = openai.missing("api_key").reason
            raise openai.error(
                "api_key",
                f"{missing}: services[{index}] ({svc.id}) has its assistant enabled; "
                "set enabled = false in its [services.assistant] to run without one",
            )
