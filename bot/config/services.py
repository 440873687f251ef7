"""`[[services]]`: each service, its assistant and its Flow definitions, and the rules that
hold between services (unique ids, one owner per business number, one default).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

from bot.config import formats
from bot.config.model import (
    AssistantSettings,
    CsatSettings,
    FlowDefinition,
    HoursSettings,
    NotifySettings,
    ServiceSettings,
)
from bot.config.reader import Table, toml_type
from bot.config.service_accounts import check_accounts, service_jira, service_openai
from bot.rules.hours import WEEKDAYS, check_zone, parse_day
from bot.rules.jql import jql_value_problem
from bot.rules.notices import (
    CSAT_SCALE,
    NOTICE_PLACEHOLDERS,
    STATUS_PLACEHOLDERS,
    check_placeholders,
    same_status,
)

ON_CLOSED = ("new", "reopen", "reuse")


def services(root: Table, default_model: str) -> tuple[ServiceSettings, ...]:
    """Every `[[services]]` table, checked against each other.

    Args:
        root: the whole file.
        default_model: `[openai].model`, for assistants that name none.
    """
    tables = root.tables("services")
    if not tables:
        raise root.error("services", "at least one [[services]] table is required")
    read = [service(t, default_model) for t in tables]
    _check_unique_routing(tables, read)
    check_accounts(tables, read)
    if len(read) == 1:
        # A lone service takes everything, whatever `default` says.
        return (dataclasses.replace(read[0], default=True),)
    defaults = [index for index, svc in enumerate(read) if svc.default]
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
    return tuple(read)


def _check_unique_routing(tables: list[Table], read: list[ServiceSettings]) -> None:
    seen_ids: dict[str, int] = {}
    routed: dict[str, str] = {}
    for index, (t, svc) in enumerate(zip(tables, read, strict=True)):
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


def service(t: Table, default_model: str) -> ServiceSettings:
    service_id = t.string("id", pattern=formats.ID, hint=formats.ID_HINT)
    return ServiceSettings(
        id=service_id,
        project_key=t.string(
            "project_key",
            pattern=r"[A-Z][A-Z0-9_]+",
            hint="must be a Jira project key: an upper-case letter, then upper-case letters, digits or '_'",
        ),
        issue_type=t.string("issue_type", non_empty=True),
        labels=formats.labels(t, "labels"),
        default=t.boolean("default"),
        phone_number_ids=t.strings(
            "phone_number_ids", pattern=r"\S+", hint="must be non-empty with no whitespace"
        ),
        on_closed=t.string("on_closed", choices=ON_CLOSED),
        reopen_transition=t.string("reopen_transition", non_empty=True),
        assistant=assistant(t.table("assistant"), default_model),
        flows=_flow_definitions(t),
        notify=notify(t.table("notify")),
        hours=hours(t.table("hours")) if t.has("hours") else None,
        csat=csat(t.table("csat")),
        jira=service_jira(t, service_id),
        openai=service_openai(t, service_id),
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
        outside_hours=t.boolean("outside_hours"),
        knowledge_files=_knowledge_files(t),
        resolved_examples=t.integer("resolved_examples", lo=0, hi=10),
        reference_chars=t.integer("reference_chars", lo=500, hi=100_000),
        hand_over=t.boolean("hand_over"),
        hand_over_message=_customer_text(
            t,
            "hand_over_message",
            t.string("hand_over_message", non_empty=True),
            NOTICE_PLACEHOLDERS,
            TEXT_MAX_CHARS,
        ),
        hand_over_label=_label(t, "hand_over_label"),
    )


def _knowledge_files(t: Table) -> tuple[str, ...]:
    """Absolute paths; a relative one is read from config.toml's directory, not the working one
    (systemd starts the daemon in /). A file that is not there stops the start, naming the key."""
    found: list[str] = []
    for index, name in enumerate(t.strings("knowledge_files", pattern=r".*\S.*", hint="must not be empty")):
        path = t.source_dir() / pathlib.Path(name).expanduser()
        if not path.is_file():
            raise t.error(f"knowledge_files[{index}]", f"{str(path)!r} is not a readable file")
        found.append(str(path.resolve()))
    return tuple(found)


def _label(t: Table, name: str) -> str:
    value = t.string(name)
    if value and jql_value_problem(value):
        rule = "a label must have no whitespace, quote, backslash or control character"
        raise t.error(name, f"{value!r} {jql_value_problem(value)}; {rule}")
    return value


# WhatsApp's limits on what a customer is sent (Cloud API: text body, interactive list parts).
TEXT_MAX_CHARS = 4096
LIST_BODY_MAX_CHARS = 1024
LIST_BUTTON_MAX_CHARS = 20
LIST_ROW_TITLE_MAX_CHARS = 24


def notify(t: Table) -> NotifySettings:
    on_status: dict[str, str] = {}
    for name, text in t.mapping("on_status").items():
        key = f"on_status.{name}"
        if not name.strip():
            raise t.error("on_status", "a status name cannot be empty")
        if not isinstance(text, str):
            raise t.error(key, f"expected a string (the text sent), got {toml_type(text)}")
        _customer_text(t, key, text, STATUS_PLACEHOLDERS, TEXT_MAX_CHARS)
        if any(same_status(name, earlier) for earlier in on_status):
            raise t.error(key, "names the same status as another entry (names ignore case)")
        on_status[name] = text
    return NotifySettings(
        on_create=_customer_text(t, "on_create", t.string("on_create"), NOTICE_PLACEHOLDERS, TEXT_MAX_CHARS),
        on_status=on_status,
        out_of_hours=_customer_text(
            t, "out_of_hours", t.string("out_of_hours"), NOTICE_PLACEHOLDERS, TEXT_MAX_CHARS
        ),
    )


def hours(t: Table) -> HoursSettings:
    zone = t.string("timezone", non_empty=True)
    try:
        check_zone(zone)
    except ValueError as exc:
        raise t.error("timezone", str(exc)) from None
    days = {day: t.string(day) for day in WEEKDAYS}
    for day, text in days.items():
        try:
            parse_day(text)
        except ValueError as exc:
            raise t.error(day, str(exc)) from None
    return HoursSettings(timezone=zone, **days)


def csat(t: Table) -> CsatSettings:
    labels = t.strings("labels")
    if len(labels) != CSAT_SCALE:
        raise t.error(
            "labels", f"needs exactly {CSAT_SCALE} titles (ratings 1 to {CSAT_SCALE}), got {len(labels)}"
        )
    for index, label in enumerate(labels):
        if not label.strip() or len(label) > LIST_ROW_TITLE_MAX_CHARS:
            reason = f"each title must have 1 to {LIST_ROW_TITLE_MAX_CHARS} characters (WhatsApp's list rows)"
            raise t.error(f"labels[{index}]", reason)
    button = t.string("button", non_empty=True)
    if len(button) > LIST_BUTTON_MAX_CHARS:
        raise t.error("button", f"at most {LIST_BUTTON_MAX_CHARS} characters (WhatsApp's list button)")
    return CsatSettings(
        enabled=t.boolean("enabled"),
        on_status=t.string("on_status", non_empty=True),
        question=_customer_text(
            t, "question", t.string("question", non_empty=True), NOTICE_PLACEHOLDERS, LIST_BODY_MAX_CHARS
        ),
        button=button,
        labels=labels,
    )


def _customer_text(t: Table, key: str, text: str, allowed: tuple[str, ...], max_chars: int) -> str:
    """A text customers receive: known placeholders only, and within WhatsApp's length limit."""
    try:
        check_placeholders(text, allowed)
    except ValueError as exc:
        raise t.error(key, str(exc)) from None
    if len(text) > max_chars:
        raise t.error(key, f"at most {max_chars} characters (WhatsApp's limit), got {len(text)}")
    return text


def _flow_definitions(service: Table) -> tuple[FlowDefinition, ...]:
    definitions: list[FlowDefinition] = []
    for t in service.tables("flows"):
        definition = FlowDefinition(
            id=t.string("id", pattern=formats.ID, hint=formats.ID_HINT),
            flow_token_prefix=t.string("flow_token_prefix", non_empty=True),
            summary=formats.template(t, "summary"),
            description_fields=t.strings(
                "description_fields", pattern=formats.FLOW_NAME, hint=formats.FLOW_NAME_HINT
            ),
            labels=formats.label_templates(t, "labels"),
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


def _custom_fields(t: Table) -> dict[str, str]:
    fields = t.mapping("custom_fields")
    for field_id, template in fields.items():
        key = f"custom_fields.{field_id}"
        if not re.fullmatch(r"customfield_\d+", field_id):
            raise t.error(key, "must be a Jira custom field id like customfield_10010")
        if not isinstance(template, str):
            raise t.error(key, f"expected a string (a template), got {toml_type(template)}")
        formats.check_template(t, key, template)
    return fields
