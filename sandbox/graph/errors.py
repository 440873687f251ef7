"""Graph API error bodies, in the dialect the spec's `GraphAPIError` schema describes.

Every Graph error is `{"error": {"message", "type", "code", "fbtrace_id", …}}`; WhatsApp's own
codes (13xxxx) add `error_data: {"messaging_product": "whatsapp", "details": …}`, which is where
Meta puts the human explanation, and the same code/title/details reappear in a `failed` status
webhook's `errors[]` (the spec's `StatusError`). Titles and details follow Meta's error-code page.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

from sandbox.web import HttpError, Response

ERROR_DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


@dataclass(frozen=True)
class CodeInfo:
    title: str
    details: str
    http_status: int = 400
    transient: bool = False


# Codes the daemon must handle. The throughput family answers 429 so clients can back off on the
# status alone; everything else is a 400, as Meta sends it.
CATALOG: dict[int, CodeInfo] = {
    1: CodeInfo("API Unknown", "Invalid request or possible server error.", 500, True),
    2: CodeInfo("API Service", "Temporary due to downtime or due to being overloaded.", 503, True),
    4: CodeInfo("API Too Many Calls", "The app has reached its API call rate limit.", 429, True),
    100: CodeInfo(
        "Invalid parameter", "The request included one or more unsupported or misspelled parameters."
    ),
    80007: CodeInfo(
        "Rate limit issues", "The WhatsApp Business Account has reached its rate limit.", 429, True
    ),
    130429: CodeInfo("Rate limit hit", "Cloud API message throughput has been reached.", 429, True),
    131000: CodeInfo("Something went wrong", "Message failed to send due to an unknown error.", 500, True),
    131008: CodeInfo("Required parameter is missing", "The request is missing a required parameter."),
    131009: CodeInfo("Parameter value is not valid", "One or more parameter values are invalid."),
    131026: CodeInfo(
        "Message undeliverable",
        "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp "
        "phone number; the recipient has not accepted the new Terms of Service; the recipient is using "
        "an old WhatsApp version.",
    ),
    131047: CodeInfo(
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number.",
    ),
    131051: CodeInfo("Unsupported message type", "Unsupported message type."),
    # Meta's 131052 is about media the *customer* sent that WhatsApp could not fetch; the daemon
    # treats it like "media too large/unavailable", which is why it is in the catalogue.
    131052: CodeInfo("Media download error", "Unable to download the media sent by the user."),
    131053: CodeInfo("Media upload error", "Unable to upload the media used in the message."),
    131056: CodeInfo(
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone number "
        "in a short period of time.",
        429,
        True,
    ),
}


def fbtrace_id() -> str:
    # Meta's trace ids are 23 url-safe base64 characters; a fresh one per error helps tell
    # retries apart in test logs exactly as it does in support tickets.
    return base64.urlsafe_b64encode(os.urandom(18)).decode()[:23]


def info(code: int) -> CodeInfo:
    return CATALOG.get(code) or CodeInfo(f"Error {code}", f"Injected error {code}.")


@dataclass
class GraphError(HttpError):
    """An error answer; raise it from a handler and the app renders it."""

    http_status: int
    code: int
    message: str
    type: str = "OAuthException"
    subcode: int | None = None
    details: str | None = None  # set for WhatsApp (13xxxx) errors: becomes error_data
    transient: bool | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.details is not None:
            err["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        if self.transient is not None:
            err["is_transient"] = self.transient
        err["fbtrace_id"] = fbtrace_id()
        return {"error": err}

    def response(self) -> Response:
        return Response(self.http_status, self.body(), self.headers)


def whatsapp_error(code: int, http_status: int | None = None, details: str | None = None) -> GraphError:
    """A WhatsApp-platform error as the /messages endpoint returns it."""
    meta = info(code)
    return GraphError(
        http_status=http_status or meta.http_status,
        code=code,
        message=f"(#{code}) {meta.title}",
        details=details or meta.details,
        transient=meta.transient or None,
    )


def invalid_parameter(details: str) -> GraphError:
    # Meta puts the specific reason into the message for #100 as well, e.g.
    # "(#100) The parameter messaging_product is required."
    return GraphError(400, 100, f"(#100) {details}", details=details)


def unknown_object(object_id: str, method: str) -> GraphError:
    return GraphError(
        400,
        100,
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read the Graph "
        "API documentation at https://developers.facebook.com/docs/graph-api",
        type="GraphMethodException",
        subcode=33,
    )


def missing_token() -> GraphError:
    # The spec's 401 examples: no token is code 104, a wrong one is 190.
    return GraphError(401, 104, "An access token is required to request this resource")


def invalid_token() -> GraphError:
    return GraphError(401, 190, "Invalid OAuth access token - Cannot parse access token")


def for_http_status(status: int) -> dict[str, Any]:
    """Default Graph body for a FaultPlan failure that names only an HTTP status."""
    if status == 429:
        err = GraphError(429, 4, "(#4) Application request limit reached", subcode=2446079, transient=True)
    elif status == 401:
        err = invalid_token()
    elif status >= 500:
        err = GraphError(
            status,
            2,
            "An unexpected error occurred. Please retry your request later.",
            type="GraphMethodException",
            transient=True,
        )
    else:
        err = GraphError(status, 1, "An unknown error has occurred.", transient=False)
    return err.body()


def status_error(code: int) -> dict[str, Any]:
    """One `errors[]` item of a `failed` status webhook (the spec's `StatusError`)."""
    meta = info(code)
    return {
        "code": code,
        "title": meta.title,
        "message": meta.title,
        "error_data": {"details": meta.details},
        "href": ERROR_DOCS,
    }
