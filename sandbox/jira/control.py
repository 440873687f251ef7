"""``/_sandbox/…`` routes: steer and inspect the Jira sandbox over HTTP.

For tests that drive the daemon as a subprocess and cannot call JiraSandbox's methods. The
control routes need no auth and bypass the fault plan, so such a test can still inspect and
steer the sandbox mid-outage.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.web import Response, Router

from . import api_servicedesk
from .model import ApiError
from .web import Request

if TYPE_CHECKING:
    from .sandbox import JiraSandbox

# A control handler gets the sandbox and the request's JSON body ({} when empty).
Control = Callable[["JiraSandbox", Any], Response]


def handle(sb: JiraSandbox, req: Request) -> Response:
    """Serve ``/_sandbox/...``: faults, state, calls, reset and a few steering helpers."""
    match = _ROUTES.match(req.method, req.path)
    body = req.json() or {}
    if match.route is None:
        raise ApiError(404, f"No sandbox control route {req.method} {req.path}")
    try:
        return match.route.handler(sb, body)
    except KeyError as exc:  # a missing JSON field or an unknown issue key
        raise ApiError(400, f"Missing or unknown value: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ApiError(400, str(exc)) from None


def _add_faults(sb: JiraSandbox, body: Any) -> Response:
    if not isinstance(body, dict):
        raise ApiError(400, "Expected a JSON object.")
    if "latency" in body:
        sb.faults.set_latency(float(body["latency"]))
    if "status" not in body:
        return Response(204)
    options = {
        "retry_after": body.get("retry_after"),
        "path_regex": body.get("path_regex"),
        "body": body.get("body"),
        "headers": body.get("headers"),
    }
    if body.get("for_seconds") is not None:
        sb.faults.fail_for(float(body["for_seconds"]), int(body["status"]), **options)
    else:
        sb.faults.fail_next(int(body["status"]), int(body.get("count", 1)), **options)
    return Response(204)


def _clear_faults(sb: JiraSandbox, body: Any) -> Response:
    sb.faults.clear()
    return Response(204)


def _state(sb: JiraSandbox, body: Any) -> Response:
    with sb.store.lock:
        issues = [
            dict(i, comments=sb.comments(i["key"]), feedback=sb.feedback(i["key"])) for i in sb.issues()
        ]
    return Response(200, {"issues": issues})


def _calls(sb: JiraSandbox, body: Any) -> Response:
    return Response(200, dict(sb.calls))


def _reset(sb: JiraSandbox, body: Any) -> Response:
    sb.reset()
    return Response(204)


def _agent_comment(sb: JiraSandbox, body: Any) -> Response:
    comment_id = sb.add_agent_comment(
        body["key"],
        body["text"],
        internal=bool(body.get("internal")),
        visibility=body.get("visibility"),
        author=body.get("author", "Agent Smith"),
    )
    return Response(201, {"id": comment_id})


def _agent_files(sb: JiraSandbox, body: Any) -> Response:
    """{issue_key, author, text, files: [{filename, mime_type, data_b64}], internal} ->
    201 {comment_id, attachments: [{id, media_id}]}."""
    files = [(f["filename"], f["mime_type"], _decoded(f["data_b64"])) for f in body["files"]]
    created = sb.add_agent_comment_with_files(
        body["issue_key"],
        str(body.get("text") or ""),
        files,
        internal=bool(body.get("internal")),
        author=body.get("author", "Agent Smith"),
    )
    return Response(201, created)


def _agent_attachment(sb: JiraSandbox, body: Any) -> Response:
    """{issue_key, author, filename, mime_type, data_b64} -> 201 {id, media_id}; no comment."""
    created = sb.add_agent_attachment(
        body["issue_key"],
        body["filename"],
        body["mime_type"],
        _decoded(body["data_b64"]),
        author=body.get("author", "Agent Smith"),
    )
    return Response(201, created)


def _decoded(data_b64: str) -> bytes:
    return base64.b64decode(data_b64, validate=True)  # binascii.Error is a ValueError: 400


def _status(sb: JiraSandbox, body: Any) -> Response:
    sb.set_status(body["key"], body["name"], body["category"])
    return Response(204)


def _service_desk(sb: JiraSandbox, body: Any) -> Response:
    """{project} -> 204: the project becomes a JSM service desk (projectTypeKey "service_desk")."""
    api_servicedesk.make_service_desk(sb, str(body["project"]))
    return Response(204)


def _clock(sb: JiraSandbox, body: Any) -> Response:
    sb.advance_clock(float(body.get("advance", 0)))
    return Response(204)


_ROUTES: Router[Control] = Router()
for _method, _path, _handler in (
    ("POST", "/_sandbox/faults", _add_faults),
    ("POST", "/_sandbox/faults/clear", _clear_faults),
    ("GET", "/_sandbox/state", _state),
    ("GET", "/_sandbox/calls", _calls),
    ("POST", "/_sandbox/reset", _reset),
    ("POST", "/_sandbox/agent-comment", _agent_comment),
    ("POST", "/_sandbox/agent-comment-with-files", _agent_files),
    ("POST", "/_sandbox/agent-attachment", _agent_attachment),
    ("POST", "/_sandbox/status", _status),
    ("POST", "/_sandbox/clock", _clock),
    ("POST", "/_sandbox/service-desk", _service_desk),
):
    _ROUTES.add(_method, _path, _handler)
