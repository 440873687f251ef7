"""`[[services]]`: each service, its assistant and its Flow definitions, and the rules that
hold between services (unique ids, one owner per business number, one default).
"""

from __future__ import annotations

import dataclasses
import re

from bot.config import formats
from bot.config.model import AssistantSettings, FlowDefinition, ServiceSettings
from bot.config.reader import Table, toml_type

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
    return ServiceSettings(
        id=t.string("id", pattern=formats.ID, hint=formats.ID_HINT),
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
