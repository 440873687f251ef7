"""The validated configuration's sections, as frozen dataclasses.

The dataclasses are the schema: their field names are the only keys config.toml may use
(the loader rejects anything else), and their defaults are the documented defaults, kept
in this one place. Field metadata marks secrets (`secret`) and the environment variable
that may supply a value instead of the file (`env`). `bot.config.settings.Settings` is the
root that holds one of each.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from bot.rules.hours import WEEKDAYS, Week, week

DEFAULT_SYSTEM_PROMPT = (
    "You are the support assistant of this business on WhatsApp. Answer the customer "
    "briefly and politely, in the language they write in. Use only what this conversation "
    "tells you; never invent prices, dates, policies or ticket states. When you are unsure, "
    "or the customer asks for a person, say that a support agent will follow up."
)

HAND_OVER_MESSAGE = "I am passing your conversation to a member of our team; they will reply here shortly."


def _secret(env: str | None = None, **kwargs: Any) -> Any:
    """A field whose value is never printed and is scrubbed from logs."""
    return field(metadata={"secret": True, "env": env}, **kwargs)


def _from_env(env: str, **kwargs: Any) -> Any:
    """A non-secret field the environment may supply instead of the file."""
    return field(metadata={"secret": False, "env": env}, **kwargs)


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    """0 binds a free port (tests); otherwise 1..65535."""
    webhook_path: str = "/api/whatsapp/webhook"
    max_body_bytes: int = 3145728
    """Larger webhook bodies get 413; Meta's batches stay under 3 MB."""
    instance_id: str = ""
    """Names this daemon in leases and claims; "" means the daemon derives hostname:port."""
    request_timeout_seconds: float = 10.0
    """A whole request, headers and body, must arrive within this; then the connection closes."""
    admin_host: str = "127.0.0.1"
    admin_port: int = 9464
    """The admin listener (/metrics, detailed /healthz); 0 turns it off."""
    workers: int = 1
    """Processes accepting webhooks on `port` (SO_REUSEPORT); the jobs still run once per instance."""


@dataclass(frozen=True)
class StorageSettings:
    url: str = "sqlite:///var/lib/wajira/wajira.db"
    """sqlite://, postgresql:// (or postgres://) or mysql:// URL, passed to storage untouched."""
    timeout_seconds: float = 5.0
    """The longest one database round trip may take (connect, statement, lock wait); then the
    webhook answers 503 and jobs back off. 0.5..3600."""
    retention_days: int = 30
    """Finished rows older than this are deleted by housekeeping; 0 keeps them for ever."""


@dataclass(frozen=True)
class WhatsAppSettings:
    verify_token: str = _secret("WHATSAPP_VERIFY_TOKEN")
    app_secret: str = _secret("WHATSAPP_APP_SECRET")
    """At least 16 characters; like every secret, never a placeholder ("change-me", "<…>", …)."""
    access_token: str = _secret("WHATSAPP_ACCESS_TOKEN")
    phone_number_id: str = _from_env("WHATSAPP_PHONE_NUMBER_ID")
    graph_url: str = "https://graph.facebook.com"
    """No trailing slash."""
    api_version: str = "v23.0"
    template_name: str = ""
    """Approved template sent when the 24-hour window has closed; "" = none (an internal note
    on the ticket says the reply was not sent)."""
    template_language: str = "en"
    template_parameters: tuple[str, ...] = ("{name}",)
    """Body parameters, in order. Placeholders: {name} (customer) and {issue_key}."""


@dataclass(frozen=True)
class JiraSettings:
    url: str
    """No trailing slash."""
    email: str = ""
    api_token: str = _secret("JIRA_API_TOKEN", default="")
    token: str = _secret("JIRA_TOKEN", default="")
    """Server/Data Center personal access token; exclusive with email + api_token."""
    timeout_seconds: float = 30.0

    @property
    def cloud(self) -> bool:
        """True for Jira Cloud (basic auth with email + API token), False for a bearer PAT."""
        return bool(self.email and self.api_token)


@dataclass(frozen=True)
class OpenAISettings:
    api_key: str = _secret("OPENAI_API_KEY", default="")
    """Required only when some service's assistant is enabled."""
    base_url: str = "https://api.openai.com/v1"
    """No trailing slash."""
    model: str = "gpt-4o-mini"
    timeout_seconds: float = 60.0
    turn_lease_seconds: float = 90.0
    """How long an instance owns an AI turn it claimed before another may take it over (its
    worker died). Renewed before every call the turn makes, so it covers one call: at least
    timeout_seconds + TURN_LEASE_MARGIN_SECONDS."""


TURN_LEASE_MARGIN_SECONDS = 30.0
"""What a turn's lease must cover beyond one OpenAI call: the storage and Jira work around it."""


@dataclass(frozen=True)
class PollerSettings:
    interval_seconds: int = 30
    overlap_seconds: int = 120
    """How far before the watermark each JQL pass starts: Jira's search lags behind writes
    and JQL dates have minute precision."""
    hot_interval_seconds: float = 3.0
    """Seconds between searches of the hot tickets (a customer wrote within `hot_minutes`):
    one JQL `issue in (…)` call, only when there is a hot ticket."""
    hot_minutes: float = 15.0
    """How long after the customer's last message a ticket stays hot; 0 turns hot polling off."""


@dataclass(frozen=True)
class InboxSettings:
    workers: int = 4
    interval_seconds: int = 5
    """Fallback sweep; the webhook also nudges the job as soon as a message is stored."""
    max_attempts: int = 10
    """Failures other than Jira being unavailable before a message is dead-lettered."""
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    lease_seconds: int = 60
    """How long a worker owns a conversation before another instance may take it over."""


@dataclass(frozen=True)
class OutboxSettings:
    interval_seconds: int = 5
    """Fallback sweep; replies and agent comments also nudge the job at once."""
    max_attempts: int = 5
    """Send failures (Graph unavailable) before a message is marked failed with a note."""
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    agent_format: str = "*{name}:* {text}"
    """How an agent's Jira comment reads on WhatsApp; needs {text}, may use {name}."""


@dataclass(frozen=True)
class AssistantSettings:
    enabled: bool = True
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    model: str = ""
    """The loader replaces "" with [openai].model, so a parsed value is always a model name."""
    debounce_seconds: float = 1.5
    """A burst of customer messages gets one reply, this long after the last one."""
    max_replies_per_hour: int = 20
    """Per ticket."""
    daily_token_budget: int = 200000
    """Per service, per UTC day; 0 = no limit."""
    handoff_seconds: float = 3600.0
    """After an agent's public comment the AI stays silent on that ticket this long."""
    max_tokens: int = 800
    max_attempts: int = 3
    """OpenAI/Jira failures before the turn is given up with an internal note."""
    mark_read: bool = True
    """Mark the customer's message read, with a typing indicator, while the AI works."""
    outside_hours: bool = True
    """Whether the AI answers outside `[services.hours]` (a service without hours is always open)."""
    knowledge_files: tuple[str, ...] = ()
    """Markdown files, split by heading; the loader makes each path absolute (relative to config.toml)."""
    resolved_examples: int = 3
    """Resolved tickets of the project matching the question (JQL `text ~`) shown to the AI; 0 = off."""
    reference_chars: int = 6000
    """Budget for the reference material (knowledge sections and resolved tickets) in one request."""
    hand_over: bool = True
    """Offer the model the `hand_over` tool; false for an OpenAI-compatible server without tool calling."""
    hand_over_message: str = HAND_OVER_MESSAGE
    """What the customer is sent when the AI hands the conversation over; {name} {issue_key}."""
    hand_over_label: str = "wajira-handover"
    """Added to a ticket the AI handed over, for a JQL filter; "" = none."""


@dataclass(frozen=True)
class FlowDefinition:
    """A completed Flow (`nfm_reply`) → the ticket it opens; `{field}` templates take its answers."""

    id: str
    """Names the definition in logs and errors."""
    flow_token_prefix: str
    """Matches a reply whose `flow_token` starts with it; the longest matching prefix wins."""
    summary: str = ""
    """"" keeps the usual summary."""
    description_fields: tuple[str, ...] = ()
    """Answers listed, in this order, as a table in the description."""
    labels: tuple[str, ...] = ()
    """Added to the service's labels; whitespace in an answer becomes "_"."""
    custom_fields: dict[str, str] = field(default_factory=dict)
    """Jira field id ("customfield_10010") → template; empty results are not sent."""


@dataclass(frozen=True)
class FlowScreen:
    """The data-exchange endpoint's answer to a submitted screen (or to "INIT")."""

    id: str
    next_screen: str
    """"SUCCESS" closes the flow."""
    data: dict[str, Any] = field(default_factory=dict)
    """Top-level strings are `{field}` templates over the submitted data; other values are sent as written."""


@dataclass(frozen=True)
class NotifySettings:
    """Texts wajira sends a customer on its own (shown in Jira as `[Auto] …`); "" = not sent."""

    on_create: str = ""
    """After the first message opened a ticket. Placeholders {name} {issue_key}."""
    on_status: dict[str, str] = field(default_factory=dict)
    """Jira status name → text, sent each time the ticket enters that status. Also {status}."""
    out_of_hours: str = ""
    """Outside `[services.hours]`, at most once a day per conversation."""


@dataclass(frozen=True)
class HoursSettings:
    """Opening hours per weekday in one IANA zone: "HH:MM-HH:MM" ranges, comma-separated; "" = closed.
    A service without this table is always open."""

    timezone: str = "UTC"
    mon: str = "09:00-18:00"
    tue: str = "09:00-18:00"
    wed: str = "09:00-18:00"
    thu: str = "09:00-18:00"
    fri: str = "09:00-18:00"
    sat: str = ""
    sun: str = ""

    def week(self) -> Week:
        """The parsed week (checked when the config was read, so this cannot fail then)."""
        return _week(self)


@functools.lru_cache(maxsize=64)
def _week(hours: HoursSettings) -> Week:
    return week(hours.timezone, {day: getattr(hours, day) for day in WEEKDAYS})


@dataclass(frozen=True)
class CsatSettings:
    """The satisfaction survey: a WhatsApp list (rows `csat:1` … `csat:5`) when a ticket enters `on_status`."""

    enabled: bool = False
    on_status: str = "Done"
    question: str = "How did we do?"
    """The list's body (≤ 1024 characters). Placeholders {name} {issue_key}."""
    button: str = "Rate us"
    """The button that opens the list (≤ 20 characters)."""
    labels: tuple[str, ...] = ("Very poor", "Poor", "Okay", "Good", "Excellent")
    """Titles of ratings 1 … 5 (five, each ≤ 24 characters)."""


@dataclass(frozen=True)
class ServiceJiraSettings:
    """`[services.jira]`: the Jira account (possibly on another site) this service's tickets use
    instead of `[jira]`. Its secrets may come from `WAJIRA_SERVICE_<ID>_JIRA_API_TOKEN` and
    `WAJIRA_SERVICE_<ID>_JIRA_TOKEN` (see `service_env_name`); timeouts are `[jira]`'s."""

    url: str
    """No trailing slash."""
    email: str = ""
    api_token: str = _secret(default="")
    token: str = _secret(default="")
    """Server/Data Center personal access token; exclusive with email + api_token."""

    @property
    def cloud(self) -> bool:
        return bool(self.email and self.api_token)


@dataclass(frozen=True)
class ServiceOpenAISettings:
    """`[services.openai]`: the AI account this service's assistant uses instead of `[openai]`'s
    key (`WAJIRA_SERVICE_<ID>_OPENAI_API_KEY` may supply it); model and timeouts stay
    `[services.assistant]`'s and `[openai]`'s."""

    api_key: str = _secret(default="")
    base_url: str = ""
    """No trailing slash; "" = `[openai] base_url`."""


def service_env_name(service_id: str, field_name: str) -> str:
    """The variable (or systemd credential) that may hold a service's secret:
    `WAJIRA_SERVICE_<ID>_<FIELD>`, the id upper-cased with every other character as `_`."""
    ident = "".join(c if c.isascii() and c.isalnum() else "_" for c in service_id).upper()
    return f"WAJIRA_SERVICE_{ident}_{field_name.upper()}"


@dataclass(frozen=True)
class ServiceSettings:
    id: str
    project_key: str
    issue_type: str = "Task"
    labels: tuple[str, ...] = ("whatsapp",)
    default: bool = False
    """Takes messages to business numbers no service lists; the loader sets it on a lone service."""
    phone_number_ids: tuple[str, ...] = ()
    on_closed: str = "new"
    """"new" | "reopen" | "reuse": what a message does when the phone's ticket is done."""
    reopen_transition: str = "Reopen"
    assistant: AssistantSettings = field(default_factory=AssistantSettings)
    flows: tuple[FlowDefinition, ...] = ()
    """How completed WhatsApp Flows fill the tickets they open (`[[services.flows]]`)."""
    notify: NotifySettings = field(default_factory=NotifySettings)
    hours: HoursSettings | None = None
    """None (no `[services.hours]` table): always open."""
    csat: CsatSettings = field(default_factory=CsatSettings)
    jira: ServiceJiraSettings | None = None
    """None (no `[services.jira]` table): the `[jira]` account."""
    openai: ServiceOpenAISettings | None = None
    """None (no `[services.openai]` table): the `[openai]` account."""


@dataclass(frozen=True)
class MediaSettings:
    max_bytes: int = 16777216


FLOW_UNAVAILABLE = "Sorry, this step is not available right now. Please try again later."


@dataclass(frozen=True)
class FlowsSettings:
    endpoint_path: str = "/api/whatsapp/flows"
    private_key_file: str = ""
    private_key_passphrase: str = _secret(default="")
    screens: tuple[FlowScreen, ...] = ()
    """`[[flows.screens]]`: what the endpoint answers."""
    unavailable_message: str = FLOW_UNAVAILABLE
    """Shown in the flow for a request no screen answers; the customer reads it."""


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "info"
    format: str = "auto"
    """"auto" means JSON when stderr is not a terminal, pretty console output when it is."""
