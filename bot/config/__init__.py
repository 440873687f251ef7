"""wajira's configuration: config.toml, validated into frozen dataclasses.

    settings = load_config(resolve_config_path(args.config))

Secrets may come from the environment or systemd credentials instead of the file; see
`bot.config.reader.SecretSource`. Every problem is a `ConfigError` naming the dotted key.
"""

from bot.config.errors import ConfigError
from bot.config.load import load_config, parse_config, resolve_config_path
from bot.config.model import (
    DEFAULT_SYSTEM_PROMPT,
    AssistantSettings,
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
    StorageSettings,
    WhatsAppSettings,
)
from bot.config.settings import Settings

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "AssistantSettings",
    "ConfigError",
    "FlowsSettings",
    "InboxSettings",
    "JiraSettings",
    "LoggingSettings",
    "MediaSettings",
    "OpenAISettings",
    "OutboxSettings",
    "PollerSettings",
    "ServerSettings",
    "ServiceSettings",
    "Settings",
    "StorageSettings",
    "WhatsAppSettings",
    "load_config",
    "parse_config",
    "resolve_config_path",
]
