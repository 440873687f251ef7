"""The root of the validated configuration: one of each section, and what is asked of all of them.

Routing (which service owns a business number), the secrets to scrub from logs, and the
redacted form `wajira check` may print.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

# Imported at run time, not only for mypy: `bot.config.reader` resolves the annotations of
# `Settings` to know which dataclass each table of config.toml is read into.
from bot.config import model

REDACTED = "***"


@dataclass(frozen=True)
class Settings:
    server: model.ServerSettings
    storage: model.StorageSettings
    whatsapp: model.WhatsAppSettings
    jira: model.JiraSettings
    openai: model.OpenAISettings
    poller: model.PollerSettings
    inbox: model.InboxSettings
    outbox: model.OutboxSettings
    services: tuple[model.ServiceSettings, ...]
    media: model.MediaSettings
    flows: model.FlowsSettings
    logging: model.LoggingSettings

    @property
    def default_service(self) -> model.ServiceSettings:
        for service in self.services:
            if service.default:
                return service
        # A hand-built Settings with one service behaves as the loader's would.
        if len(self.services) == 1:
            return self.services[0]
        raise LookupError("no default service")

    def service_for(self, phone_number_id: str) -> model.ServiceSettings:
        """The service owning messages sent to this business number (listed, else the default)."""
        for service in self.services:
            if phone_number_id in service.phone_number_ids:
                return service
        return self.default_service

    def service(self, service_id: str) -> model.ServiceSettings:
        """The service with this id; KeyError when none has it (e.g. a removed service)."""
        for service in self.services:
            if service.id == service_id:
                return service
        raise KeyError(service_id)

    def service_of_ticket(self, ours: dict[str, Any]) -> model.ServiceSettings:
        """The service of a ticket, from our issue property: the service it names, or, when that
        service was removed from config.toml, the one owning the ticket's business number."""
        try:
            return self.service(str(ours.get("service") or ""))
        except KeyError:
            return self.service_for(str(ours.get("phone_number_id") or ""))

    def secrets(self) -> list[str]:
        """Every non-empty secret value, for scrubbing logs and for tests that look for leaks."""
        found: list[str] = []
        for section, f in _secret_fields(self):
            value = getattr(section, f.name)
            if value:
                found.append(value)
        found.extend(_url_password(self.storage.url))
        return list(dict.fromkeys(found))  # dedupe, keep order

    def redacted(self) -> dict[str, Any]:
        """The settings as plain data, fit for printing: secrets shown as "***"."""
        return _plain(self)


def _sections(settings: Settings) -> list[Any]:
    sections: list[Any] = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, tuple):  # services
            for service in value:
                sections += [service, service.assistant]
                sections += [own for own in (service.jira, service.openai) if own is not None]
        else:
            sections.append(value)
    return sections


def _secret_fields(settings: Settings) -> list[tuple[Any, dataclasses.Field[Any]]]:
    return [
        (section, f)
        for section in _sections(settings)
        for f in dataclasses.fields(section)
        if f.metadata.get("secret")
    ]


def _url_password(url: str) -> list[str]:
    # A database URL may carry a password; drivers echo it back both ways in errors.
    password = urlsplit(url).password
    if not password:
        return []
    return list(dict.fromkeys([password, unquote(password)]))


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    return parts._replace(netloc=netloc).geturl()


def _plain(obj: Any) -> Any:
    if isinstance(obj, model.StorageSettings):
        return {"url": _mask_url(obj.url), "timeout_seconds": obj.timeout_seconds}
    if dataclasses.is_dataclass(obj):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("secret"):
                # Keep "" visible: "not set" is useful to an operator, the value is not.
                out[f.name] = REDACTED if value else ""
            else:
                out[f.name] = _plain(value)
        return out
    if isinstance(obj, tuple):
        return [_plain(item) for item in obj]
    return obj
