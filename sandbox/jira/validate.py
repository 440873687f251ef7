"""Request checks with Jira's own wording, so clients meet the same 400s as in production."""

from __future__ import annotations

import json
import re
from typing import Any

from . import adf
from .model import LINK_TYPES, ApiError

MAX_TEXT = 32_767  # Jira's limit for comment bodies and text fields
MAX_PROPERTY_VALUE = 32_768
MAX_PROPERTY_KEY = 255
_SETTABLE = {"project", "issuetype", "summary", "description", "labels"}
_CUSTOM = re.compile(r"^customfield_\d+$")


def rich_text_problem(value: Any, version: int) -> str | None:
    """Why ``value`` is not a valid rich-text value for this API version (None when fine)."""
    if version >= 3:
        return adf.adf_problem(value)
    return None if isinstance(value, str) else "Operation value must be a string"


def check_fields(fields: Any, version: int, *, creating: bool) -> dict[str, str]:
    """Return Jira-style per-field errors for an issue create/edit ``fields`` object."""
    if not isinstance(fields, dict):
        return {"fields": "The 'fields' object must be a JSON object."}
    errors: dict[str, str] = {}
    for name in fields:
        if name not in _SETTABLE and not _CUSTOM.match(name):
            errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
    if creating:
        project = fields.get("project")
        if not isinstance(project, dict) or not (project.get("key") or project.get("id")):
            errors["project"] = "Specify a valid project ID or key"
        issuetype = fields.get("issuetype")
        if not isinstance(issuetype, dict) or not (issuetype.get("name") or issuetype.get("id")):
            errors["issuetype"] = "Specify an issue type"
    if creating or "summary" in fields:
        summary = fields.get("summary")
        if summary is None or (isinstance(summary, str) and not summary.strip()):
            errors["summary"] = "You must specify a summary of the issue."
        elif not isinstance(summary, str):
            errors["summary"] = "Operation value must be a string"
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
    if fields.get("description") is not None:
        problem = rich_text_problem(fields["description"], version)
        if problem:
            errors["description"] = problem
    if "labels" in fields:
        problem = labels_problem(fields["labels"])
        if problem:
            errors["labels"] = problem
    return errors


def labels_problem(labels: Any) -> str | None:
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        return "Operation value must be an array of strings"
    for label in labels:
        if not label or re.search(r"\s", label):
            return f"The label '{label}' contains spaces which is invalid."
        if len(label) > 255:
            return f"The label '{label}' exceeds the maximum length for a single label of 255 characters."
    return None


def check_comment(payload: Any, version: int) -> dict[str, str]:
    """Return Jira-style errors for an add-comment request body."""
    if not isinstance(payload, dict):
        return {"comment": "Comment body can not be empty!"}
    body = payload.get("body")
    if body is None or (isinstance(body, str) and not body.strip()):
        return {"comment": "Comment body can not be empty!"}
    problem = rich_text_problem(body, version)
    if problem:
        return {"comment": problem}
    if version >= 3 and not adf.to_text(body).strip() and not body.get("content"):
        return {"comment": "Comment body can not be empty!"}
    size = len(body) if isinstance(body, str) else len(json.dumps(body, ensure_ascii=False))
    if size > MAX_TEXT:
        return {"comment": "The entered text is too long. It exceeds the allowed limit of 32,767 characters."}
    errors: dict[str, str] = {}
    visibility = payload.get("visibility")
    if visibility is not None and (
        not isinstance(visibility, dict)
        or visibility.get("type") not in ("group", "role")
        or not (visibility.get("value") or visibility.get("identifier"))
    ):
        errors["commentLevel"] = "You are currently not a member of the project role or group specified."
    if "properties" in payload:
        try:
            entity_properties(payload["properties"])
        except ApiError as exc:
            errors.update(exc.errors or {"properties": "; ".join(exc.messages)})
    return errors


def entity_properties(items: Any) -> dict[str, Any]:
    """Validate a list of EntityProperty objects and return them as a dict."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ApiError(400, errors={"properties": "Properties must be a list of {key, value} objects."})
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or "value" not in item:
            raise ApiError(400, errors={"properties": "Each property needs a 'key' and a 'value'."})
        key = item["key"]
        if not key or len(key) > MAX_PROPERTY_KEY:
            raise ApiError(400, errors={"properties": "The property key must be 1 to 255 characters long."})
        if len(json.dumps(item["value"])) > MAX_PROPERTY_VALUE:
            raise ApiError(400, errors={"properties": f"The value of property '{key}' is too long."})
        out[key] = item["value"]
    return out


def property_value(key: str, raw: bytes) -> Any:
    """Parse a PUT property body: a valid, non-empty JSON value of at most 32768 bytes."""
    if not key or len(key) > MAX_PROPERTY_KEY:
        raise ApiError(400, "The property key cannot be longer than 255 characters.")
    if len(raw) > MAX_PROPERTY_VALUE:
        raise ApiError(400, f"The property '{key}' exceeds the maximum length of 32768 characters.")
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        raise ApiError(400, "The property value cannot be empty.")
    try:
        return json.loads(text)
    except ValueError:
        raise ApiError(400, f"The property '{key}' has an invalid JSON value.") from None


def edited_labels(current: list[str], fields: Any, update: Any) -> list[str]:
    """The labels after an edit: ``fields.labels`` replaces, then ``update.labels`` add/remove/set."""
    labels = list(current if "labels" not in fields else fields["labels"] or [])
    for op in update.get("labels", []) if isinstance(update, dict) else []:
        for verb, value in (op or {}).items():
            if verb == "add" and value not in labels:
                labels.append(value)
            elif verb == "remove" and value in labels:
                labels.remove(value)
            elif verb == "set":
                labels = list(value or [])
    return labels


def link_type_id(payload: dict[str, Any]) -> str:
    """The id of the link type an issueLink body names.

    Raises:
        ApiError: 400 when a part of the body is missing, 404 for an unknown type.
    """
    errors = {
        k: f"'{k}' is required"
        for k in ("type", "inwardIssue", "outwardIssue")
        if not isinstance(payload.get(k), dict)
    }
    if errors:
        raise ApiError(400, errors=errors)
    ref = payload["type"]
    type_id = next(
        (
            i
            for i, t in LINK_TYPES.items()
            if i == str(ref.get("id")) or t[0].lower() == str(ref.get("name", "")).lower()
        ),
        None,
    )
    if type_id is None:
        raise ApiError(404, f"No issue link type with name '{ref.get('name') or ref.get('id')}' found.")
    return type_id
