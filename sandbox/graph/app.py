"""The Graph sandbox's WSGI app: routing, bearer auth, injected faults, and the Graph handlers.

Request order mirrors what a client sees from Meta: an unknown path fails before anything else,
then injected faults (an outage does not check your token), then the token, then the handler.
The `/_sandbox/…` control routes (control.py) skip auth and faults so a subprocess test can steer
the sandbox even while it is "down".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from sandbox import whatsapp_payloads
from sandbox.faults import FaultPlan
from sandbox.web import (
    BadJson,
    Request,
    Response,
    Router,
    StartResponse,
    WsgiApp,
    injected,
    send,
    text_response,
)

from . import errors
from .control import add_control_routes
from .errors import GraphError
from .interactive import list_summary
from .media import DOWNLOAD_PATH, MediaExpired, MediaStore, too_large
from .multipart import MultipartError, declared_length, drain, parse_form
from .state import GraphState
from .statuses import StatusNotifier
from .validate import MEDIA_TYPES, MarkRead, Send, parse

Handler = Callable[[Request], Response]

_VERSION_RE = re.compile(r"^v\d+\.\d+$")
_UPLOAD_PATH_RE = re.compile(r"^/[^/]+/[^/]+/media/?$")
_OBJECT_ROUTE = "/{version}/{object_id}"
# Fields a phone-number node answers for `?fields=`; the first four are the default set.
_PHONE_FIELDS = (
    "id",
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "code_verification_status",
    "name_status",
    "platform_type",
    "throughput",
)


class GraphApp(WsgiApp[Request]):
    """WSGI callable; GraphSandbox builds it and owns its collaborators."""

    def __init__(
        self,
        *,
        state: GraphState,
        media: MediaStore,
        faults: FaultPlan,
        access_token: str,
        notifier: StatusNotifier | None,
        status_sequence: tuple[str, ...],
        status_delay: float,
        enforce_window: bool,
        window_error_via: str,
        verified_name: str,
    ) -> None:
        super().__init__(Request)
        self.state = state
        self.media = media
        self.faults = faults
        self.access_token = access_token
        self.notifier = notifier
        self.status_sequence = status_sequence
        self.status_delay = status_delay
        self.enforce_window = enforce_window
        self.window_error_via = window_error_via
        self.verified_name = verified_name
        self.graph: Router[Handler] = Router()
        # The download path has two segments too, so it must be tried before the object route.
        self.graph.add("GET", DOWNLOAD_PATH.rstrip("/"), self.download_media)
        self.graph.add("POST", "/{version}/{phone_number_id}/messages", self.post_messages)
        self.graph.add("POST", "/{version}/{phone_number_id}/media", self.post_media)
        self.graph.add("GET", _OBJECT_ROUTE, self.get_object)
        self.control: Router[Handler] = Router()
        add_control_routes(self.control, self)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # An upload larger than any medium Meta takes is read off the socket and dropped, not
        # buffered: the client still gets Meta's answer (401, or 131053) rather than a reset.
        declared = declared_length(environ)
        is_upload = environ.get("REQUEST_METHOD") == "POST" and _UPLOAD_PATH_RE.match(
            environ.get("PATH_INFO", "")
        )
        if is_upload and declared > self.media.body_cap:
            drain(environ["wsgi.input"], declared, limit=4 * self.media.body_cap)
            return send(start_response, self._refuse_upload(environ, declared), self.json_type)
        return super().__call__(environ, start_response)

    def _refuse_upload(self, environ: dict[str, Any], declared: int) -> Response:
        self.state.count("POST /{version}/{phone_number_id}/media")
        token = self.request_type.from_environ({**environ, "CONTENT_LENGTH": "0"}).bearer()
        if token is None:
            return errors.missing_token().response()
        if token != self.access_token:
            return errors.invalid_token().response()
        return too_large(declared, self.media.upload_max_bytes).response()

    def bug(self, trace: str) -> Response:
        return Response(500, {"error": {"message": trace, "type": "SandboxBug", "code": 1}})

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            control = self.control.match(request.method, request.path)
            if control.route is None:
                return Response(404, {"error": f"no control route {request.method} {request.path}"})
            request.params = control.params
            return control.route.handler(request)
        match = self.graph.match(request.method, request.path)
        route, params = match.route, match.params
        if route is None:
            raise GraphError(400, 2500, f"Unknown path components: {request.path}")
        request.params = params
        self.state.count(self._route_key(route.method, route.template, params))
        fault = injected(self.faults, request)
        if fault is not None:
            return fault
        token = request.bearer()
        if token is None:
            raise errors.missing_token()
        if token != self.access_token:
            raise errors.invalid_token()
        if "version" in params and not _VERSION_RE.match(params["version"]):
            raise GraphError(400, 100, "Invalid version format. Use format like 'v23.0'")
        return route.handler(request)

    def _route_key(self, method: str, template: str, params: dict[str, str]) -> str:
        if template == _OBJECT_ROUTE:
            # One URL shape serves two node types; count them apart as the daemon calls them apart.
            kind = "phone_number_id" if params["object_id"] in self.state.phone_numbers else "media_id"
            template = f"/{{version}}/{{{kind}}}"
        return f"{method} {template}"

    # --- POST /{version}/{phone_number_id}/messages ------------------------------------------

    def post_messages(self, request: Request) -> Response:
        phone_number_id = request.params["phone_number_id"]
        if phone_number_id not in self.state.phone_numbers:
            raise errors.unknown_object(phone_number_id, "POST")
        try:
            body = request.json_object()
        except BadJson as exc:
            raise errors.invalid_parameter(f"The request body could not be parsed: {exc}.") from None
        parsed = parse(body)
        if isinstance(parsed, MarkRead):
            self.state.record_read(
                {
                    "message_id": parsed.message_id,
                    "typing": parsed.typing,
                    "phone_number_id": phone_number_id,
                    "time": time.time(),
                }
            )
            return Response(200, {"success": True})
        return self._send(phone_number_id, parsed)

    def _send(self, phone_number_id: str, message: Send) -> Response:
        injected = self.state.take_send_error()
        if injected is not None:
            code, http_status = injected
            raise errors.whatsapp_error(code, http_status)
        media = self._sent_media(message)
        window_closed = (
            self.enforce_window
            and message.free_form
            and not self.state.window_open(phone_number_id, message.wa_id)
        )
        if window_closed and self.window_error_via == "response":
            raise errors.whatsapp_error(131047)
        wamid = whatsapp_payloads.new_wamid(message.wa_id)
        self.state.record_sent(
            {
                "to": message.to,
                "wa_id": message.wa_id,
                "type": message.type,
                "body": message.body,
                "template": message.template,
                "context_id": message.context_id,
                "wamid": wamid,
                "phone_number_id": phone_number_id,
                "time": time.time(),
                "payload": message.payload,
                "media": media,
                "list": list_summary(message.payload),  # None unless an interactive list
            }
        )
        self._schedule_statuses(wamid, message.wa_id, phone_number_id, window_closed)
        item: dict[str, Any] = {"id": wamid}
        if message.type == "template":
            item["message_status"] = "accepted"  # Meta adds it for templates (spec: MessageStatus)
        return Response(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": message.to, "wa_id": message.wa_id}],
                "messages": [item],
            },
        )

    def _sent_media(self, message: Send) -> dict[str, Any] | None:
        """What a media message carries by `id` (checked like Meta: known, right type, in size)."""
        content = message.payload.get(message.type)
        if message.type not in MEDIA_TYPES or not isinstance(content, dict) or not content.get("id"):
            return None  # not media, or by `link`, which the sandbox does not fetch
        medium = self.media.check_sendable(message.type, str(content["id"]))
        summary = medium.summary()
        # The name the customer sees: the document's own `filename`, else the uploaded one.
        summary["filename"] = content.get("filename") or medium.filename
        summary["uploaded_filename"] = medium.filename
        return summary

    # --- POST /{version}/{phone_number_id}/media ----------------------------------------------

    def post_media(self, request: Request) -> Response:
        phone_number_id = request.params["phone_number_id"]
        if phone_number_id not in self.state.phone_numbers:
            raise errors.unknown_object(phone_number_id, "POST")
        try:
            form = parse_form(request.headers.get("content-type"), request.body)
        except MultipartError as exc:
            raise errors.invalid_parameter(f"The request body could not be parsed: {exc}.") from None
        medium = self.media.upload(phone_number_id, form)
        return Response(200, {"id": medium.media_id})

    def _schedule_statuses(self, wamid: str, wa_id: str, phone_number_id: str, window_closed: bool) -> None:
        doomed_code = self.state.take_delivery_failure()
        if self.notifier is None:
            return
        if window_closed:
            # The asynchronous flavour of 131047: accepted, then a lone `failed`.
            self.notifier.schedule(wamid, wa_id, phone_number_id, ["failed"], self.status_delay, 131047)
        elif doomed_code is not None:
            self.notifier.schedule(
                wamid, wa_id, phone_number_id, ["sent", "failed"], self.status_delay, doomed_code
            )
        else:
            self.notifier.schedule(
                wamid, wa_id, phone_number_id, list(self.status_sequence), self.status_delay
            )

    # --- GET /{version}/{phone_number_id} and GET /{version}/{media_id} ----------------------

    def get_object(self, request: Request) -> Response:
        object_id = request.params["object_id"]
        display = self.state.phone_numbers.get(object_id)
        if display is not None:
            return Response(200, self._phone_node(object_id, display, request.arg("fields")))
        medium = self.media.get(object_id)
        owner = request.arg("phone_number_id")
        if medium is None or (owner and medium.phone_number_id and owner != medium.phone_number_id):
            raise errors.unknown_object(object_id, "GET")
        return Response(200, self.media.describe(medium, request.base))

    def _phone_node(self, phone_number_id: str, display: str, fields: str | None) -> dict[str, Any]:
        node = {
            "id": phone_number_id,
            "display_phone_number": format_display(display),
            "verified_name": self.verified_name,
            "quality_rating": "GREEN",
            "code_verification_status": "VERIFIED",
            "name_status": "APPROVED",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
        }
        wanted = [f.strip() for f in fields.split(",") if f.strip()] if fields else list(_PHONE_FIELDS[:4])
        for name in wanted:
            if name not in node:
                raise errors.invalid_parameter(
                    f"Tried accessing nonexisting field ({name}) on node type (WhatsAppBusinessPhoneNumber)"
                )
        return {"id": phone_number_id, **{name: node[name] for name in wanted}}

    # --- GET <media url> ----------------------------------------------------------------------

    def download_media(self, request: Request) -> Response:
        try:
            medium = self.media.open(request.arg("mid"), request.arg("ext"), request.arg("hash"))
        except MediaExpired as exc:
            # Meta's CDN answers 404 in plain text for expired or doctored URLs.
            return text_response(404, str(exc))
        return Response(
            200,
            medium.data,
            {"Content-Disposition": f"attachment; filename={medium.media_id}"},
            content_type=medium.mime_type,
        )


def format_display(number: str) -> str:
    """`15550783881` → `+1 555-078-3881` (the spec's display form); other plans get `+digits`."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) == 11 and digits.startswith("1"):
        return f"+1 {digits[1:4]}-{digits[4:7]}-{digits[7:]}"
    return f"+{digits}"
