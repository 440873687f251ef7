"""A completed Flow (`interactive.nfm_reply`) → the fields of the ticket it opens. Pure.

Which definition applies: Meta's `nfm_reply` names no flow (`name` is always "flow"); the only
value in it the business chose is the `flow_token` it put in the flow message, which comes back
inside `response_json`. So a definition matches by `flow_token_prefix`: send the flow with a
token like "order-issue:8f3a…" and define `flow_token_prefix = "order-issue:"`. When several
prefixes match, the longest wins, so the order of the tables in config.toml does not matter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.config.model import FlowDefinition, ServiceSettings
from bot.flows.templates import as_text, fill

SUMMARY_MAX_CHARS = 255  # Jira rejects longer summaries
LABEL_MAX_CHARS = 255  # and longer labels
TEXT_FIELD_MAX_CHARS = 255  # single-line text custom fields
# C0/C1 controls other than tab and newline: invisible junk, and ADF rejects most of them.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class TicketFields:
    """What a flow definition adds to a new ticket; "" / empty means "keep the default"."""

    summary: str
    description_rows: tuple[tuple[str, str], ...]
    """(field name, answer) in the order of `description_fields`."""
    labels: tuple[str, ...]
    """Labels to add to the service's own, already valid for Jira."""
    custom_fields: dict[str, str] = field(default_factory=dict)
    """Jira field id → text; empty answers are left out rather than sent as ""."""


def parse_response_json(value: object) -> dict[str, Any] | None:
    """`response_json` (a JSON string, or an already parsed object) as a dict; None when it is not one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def flow_response(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answers of a stored WhatsApp message when it is a completed flow, else None."""
    interactive = message.get("interactive")
    if not isinstance(interactive, dict) or interactive.get("type") != "nfm_reply":
        return None
    reply = interactive.get("nfm_reply")
    return parse_response_json(reply.get("response_json")) if isinstance(reply, dict) else None


def definition_for(flows: Sequence[FlowDefinition], flow_token: object) -> FlowDefinition | None:
    """The definition whose `flow_token_prefix` is the longest prefix of `flow_token`."""
    if not isinstance(flow_token, str) or not flow_token:
        return None
    matches = [d for d in flows if d.flow_token_prefix and flow_token.startswith(d.flow_token_prefix)]
    return max(matches, key=lambda d: len(d.flow_token_prefix), default=None)


def ticket_fields_from_flow(definition: FlowDefinition, response_json: object) -> TicketFields:
    """Fill a definition's templates from a flow's answers.

    Args:
        definition: the matching `[[services.flows]]` table.
        response_json: the `nfm_reply.response_json` string (or its parsed object). Anything
            that is not a JSON object counts as no answers: every placeholder becomes "".
    """
    answers = parse_response_json(response_json) or {}
    summary = _one_line(fill(definition.summary, answers))[:SUMMARY_MAX_CHARS]
    rows = tuple((name, _clean(as_text(answers.get(name)))) for name in definition.description_fields)
    labels = tuple(
        dict.fromkeys(label for label in (jira_label(fill(t, answers)) for t in definition.labels) if label)
    )
    custom = {}
    for field_id, template in definition.custom_fields.items():
        value = _one_line(fill(template, answers))[:TEXT_FIELD_MAX_CHARS]
        if value:
            custom[field_id] = value
    return TicketFields(summary=summary, description_rows=rows, labels=labels, custom_fields=custom)


def ticket_fields_for(message: Mapping[str, Any], service: ServiceSettings) -> TicketFields | None:
    """The fields for the ticket a message opens: None unless it is a flow one of the service's
    definitions matches (then the ticket is made as for any other first message)."""
    if not service.flows:
        return None
    answers = flow_response(message)
    if answers is None:
        return None
    definition = definition_for(service.flows, answers.get("flow_token"))
    if definition is None:
        return None
    return ticket_fields_from_flow(definition, answers)


def jira_label(text: str) -> str:
    """`text` as a Jira label: no whitespace (runs become "_"), no controls, at most 255 chars."""
    label = _WHITESPACE.sub("_", _CONTROLS.sub("", text).strip())
    return label[:LABEL_MAX_CHARS]


def description_table(rows: Sequence[tuple[str, str]]) -> str:
    """The rows as plain-text lines `name: answer` under a heading; "" for no rows.

    Plain text because the adapter turns descriptions into ADF (Cloud) or escaped wiki markup
    (Server/DC) and a customer's answer must stay literal text in both. A multi-line answer
    continues on indented lines so it still reads as one row.
    """
    if not rows:
        return ""
    lines = ["Flow answers:"]
    for name, value in rows:
        first, *rest = (value or "(no answer)").split("\n")
        lines.append(f"{name}: {first}")
        lines += [f"    {line}" for line in rest]
    return "\n".join(lines)


def _clean(text: str) -> str:
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", _CONTROLS.sub("", text)).strip()
