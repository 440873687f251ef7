"""One reader per config.toml section: types, ranges and formats of single values.

Rules that tie sections together (default service, paths that must differ, the OpenAI key
an enabled assistant needs) live in `bot.config.load`, which sees all of them at once.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from bot.config.model import (
    TURN_LEASE_MARGIN_SECONDS,
    AssistantSettings,
    FlowDefinition,
    FlowScreen,
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
from bot.config.reader import Table, toml_type
from bot.config.urls import clear_text_credentials
from bot.flows.keys import KeyFileError, load_private_key_file
from bot.flows.templates import placeholders
from bot.rules.jql import jql_value_problem

STORAGE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
ON_CLOSED = ("new", "reopen", "reuse")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")
# Meta's app secrets are 32 hex digits; a short one is a typo, a test value or a guessable word.
APP_SECRET_MIN_CHARS = 16


def _path(t: Table, name: str) -> str:
    # wsgiref compares PATH_INFO exactly, so a query string or a space could never match.
    return t.string(
        name,
        pattern=r"/[^\s?#]*",
        hint="must be a URL path starting with '/' (no spaces, '?' or '#')",
    )


def _http_url(t: Table, name: str, *, carries_token: bool = False) -> str:
    value = t.string(name)
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unbalanced "[" in the host
        ok = False
    if not ok:
        # Echo the value to show the typo, unless it might carry a password.
        shown = "" if "@" in value else f", got {value!r}"
        raise t.error(name, f"must be an http:// or https:// URL{shown}")
    if carries_token and clear_text_credentials(parts.scheme, parts.hostname or ""):
        raise t.error(name, "must be https:// unless the host is loopback: the token would travel in clear")
    # Callers append paths ("/rest/api/3/..."); one form avoids "//" in every request.
    return value.rstrip("/")


def server(t: Table) -> ServerSettings:
    return ServerSettings(
        host=t.string("host", non_empty=True),
        port=t.integer("port", lo=0, hi=65535),
        webhook_path=_path(t, "webhook_path"),
        max_body_bytes=t.integer("max_body_bytes", lo=1024),
        instance_id=t.string("instance_id"),
        request_timeout_seconds=t.number("request_timeout_seconds", lo=1, hi=300),
        admin_host=t.string("admin_host", non_empty=True),
        admin_port=t.integer("admin_port", lo=0, hi=65535),
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
    return StorageSettings(url=url, timeout_seconds=t.number("timeout_seconds", lo=0.5, hi=3600))


def whatsapp(t: Table) -> WhatsAppSettings:
    return WhatsAppSettings(
        verify_token=t.secret("verify_token", required=True),
        app_secret=t.secret("app_secret", required=True, min_length=APP_SECRET_MIN_CHARS),
        access_token=t.secret("access_token", required=True),
        phone_number_id=_phone_number_id(t),
        graph_url=_http_url(t, "graph_url", carries_token=True),
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
        template_parameters=_placeholders(t, "template_parameters", ("name", "issue_key")),
    )


def _phone_number_id(t: Table) -> str:
    # Not a secret, but "<phone id>" left from an example would send every reply nowhere.
    value = t.env_string("phone_number_id", required=True)
    t.refuse_placeholder("phone_number_id")
    return value


def _placeholders(t: Table, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = t.strings(name)
    for value in values:
        _placeholders_in(t, name, value, allowed)
    return values


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
    _placeholders_in(t, "agent_format", settings.agent_format, ("name", "text"))
    if settings.retry_max_seconds < settings.retry_base_seconds:
        raise t.error("retry_max_seconds", "must be at least retry_base_seconds")
    return settings


def _placeholders_in(t: Table, name: str, value: str, allowed: tuple[str, ...]) -> None:
    try:
        value.format(**{key: "" for key in allowed})
    except (KeyError, IndexError, ValueError) as exc:
        raise t.error(
            name, f"unknown placeholder {exc} (allowed: {', '.join('{' + a + '}' for a in allowed)})"
        ) from None


def jira(t: Table) -> JiraSettings:
    settings = JiraSettings(
        url=_http_url(t, "url", carries_token=True),
        email=t.string("email"),
        # Whichever is set is the one in use: _check_jira_auth refuses both at once.
        api_token=t.secret("api_token"),
        token=t.secret("token"),
        timeout_seconds=t.number("timeout_seconds", lo=0.1),
    )
    _check_jira_auth(t, settings)
    return settings


def _check_jira_auth(t: Table, s: JiraSettings) -> None:
    # Exactly one style, so the adapter never has to guess between basic and bearer auth.
    if s.token and s.api_token:
        raise t.error(
            "token",
            "set either token (Server/Data Center) or email + api_token (Cloud), not both",
        )
    if s.token and s.email:
        raise t.error("email", "not used with token (Server/Data Center); remove it or use api_token")
    if s.api_token and not s.email:
        raise t.error("email", "missing required value: Jira Cloud authenticates with email + api_token")
    if not s.token and not s.api_token:
        if s.email:
            raise t.missing("api_token")
        raise t.error(
            "api_token",
            "missing: set email + api_token (Jira Cloud) or token (Server/Data Center), "
            "in config.toml or $JIRA_API_TOKEN / $JIRA_TOKEN",
        )


def openai(t: Table) -> OpenAISettings:
    settings = OpenAISettings(
        # Required or not depends on the services; parse_config decides once it has them.
        api_key=t.env_string("api_key"),
        base_url=_http_url(t, "base_url", carries_token=True),
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
    if settings.retry_max_seconds < settings.retry_base_seconds:
        raise t.error("retry_max_seconds", "must be at least retry_base_seconds")
    return settings


def service(t: Table, default_model: str) -> ServiceSettings:
    return ServiceSettings(
        id=t.string("id", pattern=r"[a-z0-9_-]+", hint="must be lower-case letters, digits, '_' or '-'"),
        project_key=t.string(
            "project_key",
            pattern=r"[A-Z][A-Z0-9_]+",
            hint="must be a Jira project key: an upper-case letter, then upper-case letters, digits or '_'",
        ),
        issue_type=t.string("issue_type", non_empty=True),
        labels=_labels(t, "labels"),
        default=t.boolean("default"),
        phone_number_ids=t.strings(
            "phone_number_ids", pattern=r"\S+", hint="must be non-empty with no whitespace"
        ),
        on_closed=t.string("on_closed", choices=ON_CLOSED),
        reopen_transition=t.string("reopen_transition", non_empty=True),
        assistant=assistant(t.table("assistant", AssistantSettings), default_model),
        flows=_flow_definitions(t),
    )


def assistant(t: Table, default_model: str) -> AssistantSettings:
    return AssistantSettings(
        enabled=t.boolean("enabled"),
        system_prompt=t.string("system_prompt", non_empty=True),
        model=t.string("model") or default_model,
        debounce_seconds=t.number("debounce_seconds", lo=0),
        max_replies_per_hour=t.integer("max_replies_per_hour", lo=1),
        daily_token_budget=t.integer("daily_token_budget", lo=0),
        handoff_seconds=t.number("handoff_seconds", lo=0),
        max_tokens=t.integer("max_tokens", lo=16),
        max_attempts=t.integer("max_attempts", lo=1),
        mark_read=t.boolean("mark_read"),
    )


def media(t: Table) -> MediaSettings:
    return MediaSettings(max_bytes=t.integer("max_bytes", lo=1))


def flows(t: Table) -> FlowsSettings:
    settings = FlowsSettings(
        endpoint_path=_path(t, "endpoint_path"),
        private_key_file=t.string("private_key_file"),
        private_key_passphrase=t.secret("private_key_passphrase"),
        screens=_flow_screens(t),
    )
    if settings.private_key_file:
        # Loaded here, not first at daemon start: `wajira check` and `wajira run` then exit 2
        # on a bad key, like on any other config error, instead of failing later.
        try:
            load_private_key_file(settings.private_key_file, settings.private_key_passphrase)
        except KeyFileError as exc:
            raise t.error(
                "private_key_passphrase" if exc.passphrase else "private_key_file", exc.reason
            ) from None
    return settings


# Flow JSON names: screen ids and the fields a screen submits.
FLOW_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_FLOW_NAME_HINT = "must be a Flow JSON name (letters, digits, '_'; not starting with a digit)"


def _flow_definitions(service: Table) -> tuple[FlowDefinition, ...]:
    definitions: list[FlowDefinition] = []
    for t in service.tables("flows", FlowDefinition):
        definition = FlowDefinition(
            id=t.string("id", pattern=r"[a-z0-9_-]+", hint="must be lower-case letters, digits, '_' or '-'"),
            flow_token_prefix=t.string("flow_token_prefix", non_empty=True),
            summary=_template(t, "summary"),
            description_fields=t.strings("description_fields", pattern=FLOW_NAME, hint=_FLOW_NAME_HINT),
            labels=_templates(t, "labels"),
            custom_fields=_custom_fields(t),
        )
        for earlier in definitions:
            if definition.id == earlier.id:
                raise t.error("id", f"duplicate flow id {definition.id!r} in this service")
            if definition.flow_token_prefix == earlier.flow_token_prefix:
                reason = f"{definition.flow_token_prefix!r} is already the prefix of flow {earlier.id!r}"
                raise t.error("flow_token_prefix", reason)
        definitions.append(definition)
    return tuple(definitions)


def _template(t: Table, name: str) -> str:
    value = t.string(name)
    _check_template(t, name, value)
    return value


def _check_template(t: Table, name: str, value: str) -> None:
    try:
        placeholders(value)
    except ValueError as exc:
        raise t.error(name, str(exc)) from None


def _labels(t: Table, name: str) -> tuple[str, ...]:
    # The poller searches for these labels in JQL: one rule for both, so a label accepted here
    # can never make a poll pass fail. It also keeps out whitespace, which Jira splits labels at.
    values = t.strings(name)
    for index, value in enumerate(values):
        problem = jql_value_problem(value)
        if problem:
            rule = "a label must be non-empty, with no whitespace, quote, backslash or control character"
            raise t.error(name, f"item {index} {value!r} {problem}; {rule}")
    return values


def _templates(t: Table, name: str) -> tuple[str, ...]:
    # Literal text of a label template must already be a label; answers are cleaned when filled.
    values = _labels(t, name)
    for value in values:
        _check_template(t, name, value)
    return values


def _custom_fields(t: Table) -> dict[str, str]:
    fields = t.mapping("custom_fields")
    for field_id, template in fields.items():
        key = f"custom_fields.{field_id}"
        if not re.fullmatch(r"customfield_\d+", field_id):
            raise t.error(key, "must be a Jira custom field id like customfield_10010")
        if not isinstance(template, str):
            raise t.error(key, f"expected a string (a template), got {toml_type(template)}")
        _check_template(t, key, template)
    return fields


def _flow_screens(flows: Table) -> tuple[FlowScreen, ...]:
    screens: list[FlowScreen] = []
    for t in flows.tables("screens", FlowScreen):
        screen = FlowScreen(
            id=t.string("id", pattern=FLOW_NAME, hint=_FLOW_NAME_HINT + ', or "INIT"'),
            next_screen=t.string("next_screen", pattern=FLOW_NAME, hint=_FLOW_NAME_HINT + ', or "SUCCESS"'),
            data=t.mapping("data"),
        )
        if screen.id == "SUCCESS":
            raise t.error("id", '"SUCCESS" ends a flow; no request comes from it')
        if any(screen.id == earlier.id for earlier in screens):
            raise t.error("id", f"duplicate screen id {screen.id!r}")
        for name, value in screen.data.items():
            _check_json(t, f"data.{name}", value)
            if isinstance(value, str):
                _check_template(t, f"data.{name}", value)
        screens.append(screen)
    return tuple(screens)


def _check_json(t: Table, key: str, value: object) -> None:
    # The answer is JSON: TOML dates and times have no JSON form.
    if isinstance(value, dict):
        for name, item in value.items():
            _check_json(t, f"{key}.{name}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(t, f"{key}[{index}]", item)
    elif not isinstance(value, (str, int, float, bool)):
        raise t.error(key, f"{toml_type(value)} has no JSON form; write it as a string")
    elif isinstance(value, float) and not math.isfinite(value):
        raise t.error(key, f"{value} has no JSON form")


def logging(t: Table) -> LoggingSettings:
    # Operators write "INFO" as often as "info"; the stored value is always lower case.
    level = t.string("level").lower()
    if level not in LOG_LEVELS:
        allowed = ", ".join(f'"{v}"' for v in LOG_LEVELS)
        raise t.error("level", f"must be one of {allowed}, got {level!r}")
    return LoggingSettings(level=level, format=t.string("format", choices=LOG_FORMATS))
