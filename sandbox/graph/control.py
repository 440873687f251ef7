"""`/_sandbox/…` routes: steer and inspect the Graph sandbox over HTTP.

For tests that run the daemon (or the demo) in another process and cannot call GraphSandbox
methods. No auth and no injected faults apply here: they are test plumbing, not Graph.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sandbox.web import BadJson, Request, Response, Router

if TYPE_CHECKING:
    from .app import GraphApp

Handler = Callable[[Request], Response]
# A control handler gets the app and the request's JSON object.
Control = Callable[["GraphApp", dict[str, Any]], Response]
_OK = {"ok": True}


def add_control_routes(router: Router[Handler], app: GraphApp) -> None:
    for method, path, control in _ROUTES:
        router.add(method, path, functools.partial(_guarded, control, app))
    router.add("GET", "/_sandbox/media/{media_id}", functools.partial(_media_bytes, app))


class _BadControl(ValueError):
    pass


def _guarded(control: Control, app: GraphApp, request: Request) -> Response:
    # Control mistakes are the test author's: say what was wrong in a 400.
    try:
        return control(app, _body(request))
    except (KeyError, TypeError, ValueError) as exc:
        return Response(400, {"error": f"{type(exc).__name__}: {exc}"})


def _body(request: Request) -> dict[str, Any]:
    try:
        return request.json_object()
    except BadJson as exc:
        raise _BadControl(str(exc)) from None


def _customer_wrote(app: GraphApp, data: dict[str, Any]) -> Response:
    app.state.customer_wrote(str(data["wa_id"]), data.get("at"), data.get("phone_number_id"))
    return Response(200, _OK)


def _fail_send(app: GraphApp, data: dict[str, Any]) -> Response:
    app.state.fail_next_send(int(data["code"]), int(data.get("count", 1)), data.get("http_status"))
    return Response(200, _OK)


def _fail_delivery(app: GraphApp, data: dict[str, Any]) -> Response:
    code = int(data.get("code", 131026))
    wamid = data.get("wamid")
    if wamid:
        if app.notifier is not None:
            app.notifier.fail(str(wamid), code)
    else:
        app.state.fail_next_delivery(code)
    return Response(200, _OK)


def _faults(app: GraphApp, data: dict[str, Any]) -> Response:
    if "latency" in data:
        app.faults.set_latency(float(data["latency"]))
    if "status" in data:
        options = {
            "retry_after": data.get("retry_after"),
            "path_regex": data.get("path_regex"),
            "body": data.get("body"),
            "headers": data.get("headers"),
        }
        if "seconds" in data:
            app.faults.fail_for(float(data["seconds"]), int(data["status"]), **options)
        else:
            app.faults.fail_next(int(data["status"]), int(data.get("count", 1)), **options)
    return Response(200, {"ok": True, "pending": app.faults.pending()})


def _faults_clear(app: GraphApp, data: dict[str, Any]) -> Response:
    app.faults.clear()
    return Response(200, _OK)


def _add_media(app: GraphApp, data: dict[str, Any]) -> Response:
    try:
        raw = base64.b64decode(data["data_base64"], validate=True)
    except binascii.Error as exc:
        raise _BadControl(f"data_base64: {exc}") from None
    app.media.add(str(data["media_id"]), raw, str(data["mime_type"]), data.get("phone_number_id"))
    return Response(200, _OK)


def _media_bytes(app: GraphApp, request: Request) -> Response:
    """A medium's bytes (uploaded or seeded), to compare with what the agent attached."""
    medium = app.media.get(request.params["media_id"])
    if medium is None:
        return Response(404, {"error": f"no medium {request.params['media_id']}"})
    headers = {"X-Sandbox-Filename": quote(medium.filename or "", safe="")}
    return Response(200, medium.data, headers, content_type=medium.mime_type)


def _uploads(app: GraphApp, data: dict[str, Any]) -> Response:
    uploads = [{**m.summary(), "phone_number_id": m.phone_number_id} for m in app.media.uploads()]
    return Response(200, {"uploads": uploads})


def _media_limits(app: GraphApp, data: dict[str, Any]) -> Response:
    # Lets an e2e test rehearse "too large" without pushing 100 MB through loopback.
    if "upload_max_bytes" in data:
        app.media.upload_max_bytes = int(data["upload_max_bytes"])
    for kind, limit in dict(data.get("send_max_bytes") or {}).items():
        if kind not in app.media.send_max_bytes:
            raise _BadControl(f"send_max_bytes: unknown kind {kind!r}")
        app.media.send_max_bytes[kind] = int(limit)
    limits = {"upload_max_bytes": app.media.upload_max_bytes, "send_max_bytes": app.media.send_max_bytes}
    return Response(200, {"ok": True, **limits})


def _sent(app: GraphApp, data: dict[str, Any]) -> Response:
    return Response(200, {"sent": app.state.sent()})


def _lists(app: GraphApp, data: dict[str, Any]) -> Response:
    return Response(200, {"lists": app.state.lists()})


def _reads(app: GraphApp, data: dict[str, Any]) -> Response:
    return Response(200, {"reads": app.state.reads()})


def _statuses(app: GraphApp, data: dict[str, Any]) -> Response:
    deliveries = app.notifier.deliveries() if app.notifier is not None else []
    return Response(200, {"statuses": deliveries})


def _calls(app: GraphApp, data: dict[str, Any]) -> Response:
    return Response(200, {"calls": dict(app.state.calls.snapshot())})


def _reset(app: GraphApp, data: dict[str, Any]) -> Response:
    app.state.reset()
    app.faults.clear()
    app.media.clear()
    if app.notifier is not None:
        app.notifier.clear()
    return Response(200, _OK)


_ROUTES: tuple[tuple[str, str, Control], ...] = (
    ("POST", "/_sandbox/customer_wrote", _customer_wrote),
    ("POST", "/_sandbox/fail_send", _fail_send),
    ("POST", "/_sandbox/fail_delivery", _fail_delivery),
    ("POST", "/_sandbox/faults", _faults),
    ("POST", "/_sandbox/faults/clear", _faults_clear),
    ("POST", "/_sandbox/media", _add_media),
    ("GET", "/_sandbox/uploads", _uploads),
    ("POST", "/_sandbox/media_limits", _media_limits),
    ("GET", "/_sandbox/sent", _sent),
    ("GET", "/_sandbox/lists", _lists),
    ("GET", "/_sandbox/reads", _reads),
    ("GET", "/_sandbox/statuses", _statuses),
    ("GET", "/_sandbox/calls", _calls),
    ("POST", "/_sandbox/reset", _reset),
)
