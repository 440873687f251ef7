"""One reader per config.toml section of the daemon and its adapters: types, ranges and
formats of single values. `[[services]]` are read in `services`, `[flows]` in `flows`.

Rules that tie sections together (paths that must differ, the OpenAI key an enabled
assistant needs) live in `bot.config.load`, which sees all of them at once.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from bot.config import formats
from bot.config.model import (
    TURN_LEASE_MARGIN_SECONDS,
    InboxSettings,
    JiraSettings,
    LoggingSettings,
    MediaSettings,
    OpenAISettings,
    OutboxSettings,
    PollerSettings,
    ServerSettings,
    StorageSettings,
    WhatsAppSettings,
)
from bot.config.reader import Table

STORAGE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")
# Meta's app secrets are 32 hex digits; a short one is a typo, a test value or a guessable word.
APP_SECRET_MIN_CHARS = 16


def server(t: Table) -> ServerSettings:
    return ServerSettings(
        host=t.string("host", non_empty=True),
        port=t.integer("port", lo=0, hi=65535),
        webhook_path=formats.url_path(t, "webhook_path"),
        max_body_bytes=t.integer("max_body_bytes", lo=1024),
        instance_id=t.string("instance_id"),
        request_timeout_seconds=t.number("request_timeout_seconds", lo=1, hi=300),
        admin_host=t.string("admin_host", non_empty=True),
        admin_port=t.integer("admin_port", lo=0, hi=65535),
        workers=t.integer("workers", lo=1, hi=64),
    )


def storage(t: Table) -> StorageSettings:
    url = t.string("url", non_empty=True)
    # Only the scheme and database name are checked; the storage layer owns the rest.
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced "[" in the host
        raise t.error("url", f"not a valid URL: {exc}") from exc
    if parts.scheme not in STORAGE_SCHEMES:
        allowed = ", ".join(f"{s}://" for s in STORAGE_SCHEMES)
        # Only the scheme is echoed: the rest of the URL may hold a password.
        got = f"{parts.scheme}://" if parts.scheme else "none"
        raise t.error("url", f"scheme must be one of {allowed}, got {got}")
    if not parts.path.strip("/"):
        example = "sqlite:///path/to/file.db, postgresql://host/dbname"
        raise t.error("url", f"names no database ({example})")
    return StorageSettings(
        url=url,
        timeout_seconds=t.number("timeout_seconds", lo=0.5, hi=3600),
        retention_days=t.integer("retention_days", lo=0, hi=36500),
    )


def whatsapp(t: Table) -> WhatsAppSettings:
    return WhatsAppSettings(
        verify_token=t.secret("verify_token", required=True),
        app_secret=t.secret("app_secret", required=True, min_length=APP_SECRET_MIN_CHARS),
        access_token=t.secret("access_token", required=True),
        phone_number_id=_phone_number_id(t),
        graph_url=formats.http_url(t, "graph_url", carries_token=True),
        api_version=t.string("api_version", pattern=r"v\d+\.\d+", hint='must look like "v23.0"'),
        template_name=t.string(
            "template_name",
            pattern=r"[a-z0-9_]*",
            hint="must be a template name: lower-case letters, digits, '_'",
        ),
        template_language=t.string(
            "template_language",
            pattern=r"[a-z]{2,3}(_[A-Z]{2})?",
            hint='must be a language code like "en" or "pt_BR"',
        ),
        template_parameters=formats.format_strings(t, "template_parameters", ("name", "issue_key")),
    )


def _phone_number_id(t: Table) -> str:
    # Not a secret, but "<phone id>" left from an example would send every reply nowhere.
    value = t.env_string("phone_number_id", required=True)
    t.refuse_placeholder("phone_number_id")
    return value


def outbox(t: Table) -> OutboxSettings:
    settings = OutboxSettings(
        interval_seconds=t.integer("interval_seconds", lo=1),
        max_attempts=t.integer("max_attempts", lo=1),
        retry_base_seconds=t.number("retry_base_seconds", lo=0.1),
        retry_max_seconds=t.number("retry_max_seconds", lo=0.1),
        agent_format=t.string("agent_format", non_empty=True),
    )
    if "{text}" not in settings.agent_format:
        raise t.error("agent_format", "must contain {text}")
    formats.check_format(t, "agent_format", settings.agent_format, ("name", "text"))
    formats.check_retry_window(t, settings.retry_base_seconds, settings.retry_max_seconds)
    return settings


def jira(t: Table) -> JiraSettings:
    settings = JiraSettings(
        url=formats.http_url(t, "url", carries_token=True),
        email=t.string("email"),
        # Whichever is set is the one in use: _check_jira_auth refuses both at once.
        api_token=t.secret("api_token"),
        token=t.secret("token"),
        timeout_seconds=t.number("timeout_seconds", lo=0.1),
    )
    _check_jira_auth(t, settings)
    return settings


def _check_jira_auth(t: Table, s: JiraSettings) -> None:
    check_jira_auth(t, s.email, s.api_token, s.token, where="in config.toml or $JIRA_API_TOKEN / $JIRA_TOKEN")


def check_jira_auth(t: Table, email: str, api_token: str, token: str, *, where: str) -> None:
    """Exactly one style, so the adapter never has to guess between basic and bearer auth.

    Args:
        where: how to supply a missing token, ending the error message.
    """
    if token and api_token:
        raise t.error(
            "token",
            "set either token (Server/Data Center) or email + api_token (Cloud), not both",
        )
    if token and email:
        raise t.error("email", "not used with token (Server/Data Center); remove it or use api_token")
    if api_token and not email:
        raise t.error("email", "missing required value: Jira Cloud authenticates with email + api_token")
    if not token and not api_token:
        if email:
            raise t.missing("api_token")
        raise t.error(
            "api_token",
            f"missing: set email + api_token (Jira Cloud) or token (Server/Data Center), {where}",
        )


def openai(t: Table) -> OpenAISettings:
    settings = OpenAISettings(
        # Required or not depends on the services; parse_config decides once it has them.
        api_key=t.env_string("api_key"),
        base_url=formats.http_url(t, "base_url", carries_token=True),
        model=t.string("model", non_empty=True),
        timeout_seconds=t.number("timeout_seconds", lo=0.1),
        turn_lease_seconds=t.number("turn_lease_seconds", lo=1),
    )
    # The lease is renewed before each call a turn makes; shorter than one call plus the work
    # around it, a second instance would take the turn over mid-call and both would answer.
    least = settings.timeout_seconds + TURN_LEASE_MARGIN_SECONDS
    if settings.turn_lease_seconds < least:
        raise t.error(
            "turn_lease_seconds",
            f"must be at least openai.timeout_seconds + "
            f"{TURN_LEASE_MARGIN_SECONDS:g} ({least:g}): a turn holds it across one OpenAI call",
        )
    return settings


def poller(t: Table) -> PollerSettings:
    return PollerSettings(
        interval_seconds=t.integer("interval_seconds", lo=1),
        overlap_seconds=t.integer("overlap_seconds", lo=0),
        hot_interval_seconds=t.number("hot_interval_seconds", lo=0.5),
        hot_minutes=t.number("hot_minutes", lo=0),
    )


def inbox(t: Table) -> InboxSettings:
    settings = InboxSettings(
        workers=t.integer("workers", lo=1, hi=64),
        interval_seconds=t.integer("interval_seconds", lo=1),
        max_attempts=t.integer("max_attempts", lo=1),
        retry_base_seconds=t.number("retry_base_seconds", lo=0.1),
        retry_max_seconds=t.number("retry_max_seconds", lo=0.1),
        lease_seconds=t.integer("lease_seconds", lo=5),
    )
    formats.check_retry_window(t, settings.retry_base_seconds, settings.retry_max_seconds)
    return settings


def media(t: Table) -> MediaSettings:
    return MediaSettings(max_bytes=t.integer("max_bytes", lo=1))


def logging(t: Table) -> LoggingSettings:
    # Operators write "INFO" as often as "info"; the stored value is always lower case.
    level = t.string("level").lower()
    if level not in LOG_LEVELS:
        allowed = ", ".join(f'"{v}"' for v in LOG_LEVELS)
        raise t.error("level", f"must be one of {allowed}, got {level!r}")
    return LoggingSettings(level=level, format=t.string("format", choices=LOG_FORMATS))
