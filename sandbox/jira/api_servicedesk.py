"""Jira Service Management's request feedback (CSAT), from its own API, ``/rest/servicedeskapi``.

Checked against specs/jira-service-management.openapi.json: postFeedback / getFeedback on
``/rest/servicedeskapi/request/{requestIdOrKey}/feedback``, bodies ``CSATFeedbackFullDTO``
(``type``, ``rating``, optional ``comment.body``; no other properties), errors ``ErrorResponse``
(``errorMessage`` and ``i18nErrorMessage``), not the platform's ErrorCollection. The resource is
experimental: without ``X-ExperimentalApi: opt-in`` JSM answers 412.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from sandbox.web import BadJson, Response

from .model import ApiError, Issue
from .web import Request

if TYPE_CHECKING:
    from .sandbox import JiraSandbox

SERVICE_DESK = "service_desk"  # Jira's projectTypeKey of a JSM project


class ServiceDeskError(ApiError):
    """A refusal in JSM's dialect: ``ErrorResponse``."""

    def __init__(self, status: int, message: str, i18n_key: str, parameters: tuple[str, ...] = ()) -> None:
        super().__init__(status, message)
        self.i18n_key = i18n_key
        self.parameters = list(parameters)

    def body(self) -> dict[str, Any]:
        return {
            "errorMessage": self.messages[0],
            "i18nErrorMessage": {"i18nKey": self.i18n_key, "parameters": self.parameters},
        }


def post_feedback(sb: JiraSandbox, req: Request) -> Response:
    """Rate the request: 201 with the stored feedback; a second rating replaces the first."""
    _require_opt_in(req)
    with sb.store.lock:
        issue = _customer_request(sb, req.params["key"])
        # Every sandbox caller is the bot's account (the only credentials it accepts).
        if issue.reporter.account_id != sb.store.bot.account_id:
            raise ServiceDeskError(
                403,
                "Only the reporter of the request can provide feedback.",
                "sd.request.feedback.error.not.reporter",
            )
        issue.feedback = csat_feedback(req)
        return Response(201, copy.deepcopy(issue.feedback))


def get_feedback(sb: JiraSandbox, req: Request) -> Response:
    """The request's feedback; 404 when it has none."""
    _require_opt_in(req)
    with sb.store.lock:
        issue = _customer_request(sb, req.params["key"])
        if issue.feedback is None:
            raise ServiceDeskError(
                404, "No feedback exists for this request.", "sd.request.feedback.error.not.found"
            )
        return Response(200, copy.deepcopy(issue.feedback))


def csat_feedback(req: Request) -> dict[str, Any]:
    """The body as a CSATFeedbackFullDTO to store; 400 for anything else."""
    try:
        body = req.json_value()
    except BadJson:
        body = None
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    unknown = sorted(set(body) - {"type", "rating", "comment"})
    if unknown:
        raise _invalid(f"Unrecognized field '{unknown[0]}'.")
    if body.get("type") != "csat":
        raise _invalid("The feedback type is not supported: use 'csat'.")
    rating = body.get("rating")
    # bool is an int in Python, not in JSON.
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise _invalid("The rating must be an integer value between 1 and 5.")
    feedback: dict[str, Any] = {"type": "csat", "rating": rating}
    if "comment" in body:
        comment = body["comment"]
        if (
            not isinstance(comment, dict)
            or set(comment) - {"body"}
            or not isinstance(comment.get("body"), str)
        ):
            raise _invalid("The comment must be an object with a string 'body'.")
        feedback["comment"] = {"body": comment["body"]}
    return feedback


# -- the sandbox's helpers (JiraSandbox, control.py) ----------------------------------------------


def make_service_desk(sb: JiraSandbox, project_key: str) -> None:
    sb.store.make_service_desk(project_key)


def feedback_of(sb: JiraSandbox, issue_key: str) -> dict[str, Any] | None:
    """A copy of the issue's feedback, None when unrated; KeyError for an unknown issue."""
    with sb.store.lock:
        try:
            issue = sb.store.find_issue(issue_key)
        except ApiError:
            raise KeyError(issue_key) from None
        return copy.deepcopy(issue.feedback)


# -- helpers ----------------------------------------------------------------------------------------


def _require_opt_in(req: Request) -> None:
    if req.headers.get("x-experimentalapi", "").lower() != "opt-in":
        raise ServiceDeskError(
            412,
            "This API is experimental. Experimental APIs are not guaranteed to be stable within the"
            " preview period. You must set the header 'X-ExperimentalApi: opt-in' to opt into using"
            " this API.",
            "sd.experimental.api.error.message",
        )


def _customer_request(sb: JiraSandbox, ref: str) -> Issue:
    """The issue as a JSM customer request: 404 when missing or not in a service desk project."""
    try:
        issue = sb.store.find_issue(ref)
    except ApiError:
        issue = None
    project = sb.store.projects.get(issue.project_key) if issue is not None else None
    if issue is None or project is None or project.type_key != SERVICE_DESK:
        raise ServiceDeskError(
            404,
            "The request could not be found, or you do not have permission to view it.",
            "sd.customer.request.error.notfound",
            (ref,),
        )
    return issue


def _invalid(message: str) -> ServiceDeskError:
    return ServiceDeskError(400, message, "sd.request.feedback.error.invalid")
