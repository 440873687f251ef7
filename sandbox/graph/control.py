"""`/_sandbox/…` routes: steer and inspect the Graph sandbox over HTTP.

For tests that run the daemon (or the demo) in another process and cannot call GraphSandbox
methods. No auth and no injected faults apply here: they are test plumbing, not Graph.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from .wsgi import BadJson, Request, Response, Router

if TYPE_CHECKING:
    from .app import GraphApp


class _BadControl(ValueError):
    pass


def add_control_routes(router: Router, app: "GraphApp") -> None:
    def body(request: Request) -> dict[str, Any]:
        try:
            return request.json_object()
        except BadJson as exc:
            raise _BadControl(str(exc)) from None

    def guarded(handler):
        # Control mistakes are the test author's: say what was wrong in a 400.
        def run(request: Request) -> Response:
            try:
                return handler(request)
            except (_BadControl, KeyError, TypeError, ValueError) as exc:
                return Response(400, {"error": f"{type(exc).__name__}: {exc}"})

        return run

    def customer_wrote(request: Request) -> Response:
        data = body(request)
        app.state.customer_wrote(str(data["wa_id"]), data.get("at"), data.get("phone_number_id"))
        return Response(200, {"ok": True})

    def fail_send(request: Request) -> Response:
        data = body(request)
        app.state.fail_next_send(int(data["code"]), int(data.get("count", 1)), data.get("http_status"))
        return Response(200, {"ok": True})

    def fail_delivery(request: Request) -> Response:
        data = body(request)
        code = int(data.get("code", 131026))
        wamid = data.get("wamid")
        if wamid:
            if app.notifier is not None:
                app.notifier.fail(str(wamid), code)
        else:
            app.state.fail_next_delivery(code)
        return Response(200, {"ok": True})

    def faults(request: Request) -> Response:
        data = body(request)
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

    def faults_clear(request: Request) -> Response:
        app.faults.clear()
        return Response(200, {"ok": True})

    def add_media(request: Request) -> Response:
        data = body(request)
        try:
            raw = base64.b64decode(data["data_base64"], validate=True)
        except binascii.Error as exc:
            raise _BadControl(f"data_base64: {exc}") from None
        app.media.add(str(data["media_id"]), raw, str(data["mime_type"]), data.get("phone_number_id"))
        return Response(200, {"ok": True})

    def sent(request: Request) -> Response:
        return Response(200, {"sent": app.state.sent()})

    def reads(request: Request) -> Response:
        return Response(200, {"reads": app.state.reads()})

    def statuses(request: Request) -> Response:
        deliveries = app.notifier.deliveries() if app.notifier is not None else []
        return Response(200, {"statuses": deliveries})

    def calls(request: Request) -> Response:
        return Response(200, {"calls": dict(app.state.calls)})

    def reset(request: Request) -> Response:
        app.state.reset()
        app.faults.clear()
        app.media.clear()
        if app.notifier is not None:
            app.notifier.clear()
        return Response(200, {"ok": True})

    for method, path, handler in (
        ("POST", "/_sandbox/customer_wrote", customer_wrote),
        ("POST", "/_sandbox/fail_send", fail_send),
        ("POST", "/_sandbox/fail_delivery", fail_delivery),
        ("POST", "/_sandbox/faults", faults),
        ("POST", "/_sandbox/faults/clear", faults_clear),
        ("POST", "/_sandbox/media", add_media),
        ("GET", "/_sandbox/sent", sent),
        ("GET", "/_sandbox/reads", reads),
        ("GET", "/_sandbox/statuses", statuses),
        ("GET", "/_sandbox/calls", calls),
        ("POST", "/_sandbox/reset", reset),
    ):
        router.add(method, path, guarded(handler))
