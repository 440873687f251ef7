"""The Jira sandbox's WSGI app: the REST routes, call counting, faults, auth, and the control routes.

Request order mirrors Jira Cloud: every API request is counted, then injected faults apply (an
outage does not check your credentials), then auth, then routing (405 with ``Allow`` for a known
path, Jira's 404 otherwise). The ``/_sandbox/…`` control routes (control.py) skip all of it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from sandbox.web import CallCounter, Response, Router, WsgiApp, injected

from . import api_attachments as att
from . import api_issues as iss
from . import api_permissions as perms
from . import api_search as srch
from . import api_servicedesk as jsm
from . import control
from .model import ApiError
from .web import JSON_TYPE, Request, route_name

if TYPE_CHECKING:
    from .sandbox import JiraSandbox

UNAUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
# Routes that take no Jira login: a media download's URL carries its own token.
_OWN_AUTH = {att.media_binary}
# Handlers take the sandbox (``store``, ``settings``, ``view(req)``) and the request.
Handler = Callable[["JiraSandbox", Request], Response]


def build_router(cloud: bool) -> Router[Handler]:
    # Server/Data Center has no REST API v3 and no /search/jql; Cloud has both versions.
    r: Router[Handler] = Router({"v": "[23]" if cloud else "2"})
    add = r.add
    add("GET", "/rest/api/{v}/myself", iss.myself)
    add("GET", "/rest/api/{v}/serverInfo", iss.server_info)
    add("GET", "/rest/api/{v}/field", iss.fields)
    add("GET", "/rest/api/{v}/issuetype", iss.issue_types)
    add("POST", "/rest/api/{v}/issue", iss.create_issue)
    add("GET", "/rest/api/{v}/issue/createmeta/{projectKey}/issuetypes", iss.createmeta_issuetypes)
    add("GET", "/rest/api/{v}/issue/{key}", iss.get_issue)
    add("PUT", "/rest/api/{v}/issue/{key}", iss.edit_issue)
    add("GET", "/rest/api/{v}/issue/{key}/properties", iss.issue_property_keys)
    add("GET", "/rest/api/{v}/issue/{key}/properties/{propertyKey}", iss.get_issue_property)
    add("PUT", "/rest/api/{v}/issue/{key}/properties/{propertyKey}", iss.put_issue_property)
    add("GET", "/rest/api/{v}/issue/{key}/comment", iss.get_comments)
    add("POST", "/rest/api/{v}/issue/{key}/comment", iss.add_comment)
    add("GET", "/rest/api/{v}/issue/{key}/comment/{commentId}", iss.get_comment)
    add("POST", "/rest/api/{v}/comment/list", iss.comments_by_ids)
    add("GET", "/rest/api/{v}/comment/{commentId}/properties", iss.comment_property_keys)
    add("GET", "/rest/api/{v}/comment/{commentId}/properties/{propertyKey}", iss.get_comment_property)
    add("PUT", "/rest/api/{v}/comment/{commentId}/properties/{propertyKey}", iss.put_comment_property)
    add("GET", "/rest/api/{v}/issue/{key}/transitions", iss.get_transitions)
    add("POST", "/rest/api/{v}/issue/{key}/transitions", iss.do_transition)
    add("POST", "/rest/api/{v}/issue/{key}/attachments", att.add_attachments)
    add("GET", "/rest/api/{v}/attachment/content/{id}", att.attachment_content)
    if cloud:  # where Cloud's content redirect points: Atlassian's Media Services API
        add("GET", "/media/file/{mediaId}/binary", att.media_binary)
    add("POST", "/rest/api/{v}/issueLink", iss.link_issues)
    add("GET", "/rest/api/{v}/issueLinkType", iss.issue_link_types)
    add("GET", "/rest/api/{v}/project/{projectKey}", iss.get_project)
    add("GET", "/rest/api/{v}/mypermissions", perms.my_permissions)
    # Jira Service Management's own API (no version in the path); 404 unless the issue's project
    # is a service desk.
    add("POST", "/rest/servicedeskapi/request/{key}/feedback", jsm.post_feedback)
    add("GET", "/rest/servicedeskapi/request/{key}/feedback", jsm.get_feedback)
    search = srch.search_gone if cloud else srch.search_classic
    add("GET", "/rest/api/{v}/search", search)
    add("POST", "/rest/api/{v}/search", search)
    if cloud:
        add("GET", "/rest/api/{v}/search/jql", srch.search_jql)
        add("POST", "/rest/api/{v}/search/jql", srch.search_jql)
    return r


class JiraApp(WsgiApp[Request]):
    """WSGI callable; JiraSandbox builds it and hands its handlers the sandbox."""

    def __init__(self, sandbox: JiraSandbox) -> None:
        super().__init__(Request, JSON_TYPE)
        self.sandbox = sandbox
        self.calls = CallCounter()
        self._router = build_router(sandbox.settings.cloud)

    def bug(self, trace: str) -> Response:
        # Answer 500 like Jira would, and show the sandbox bug in the test output.
        sys.stderr.write(trace)
        return Response(500, {"errorMessages": ["Internal server error"], "errors": {}})

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return control.handle(self.sandbox, request)
        match = self._router.match(request.method, request.path)
        route = match.route
        self.calls.count(route_name(route, match.params) if route else f"{request.method} {request.path}")
        fault = injected(self.sandbox.faults, request)
        if fault is not None:
            return fault
        own_auth = route is not None and route.handler in _OWN_AUTH
        if not own_auth and not self._authenticated(request.headers.get("authorization", "")):
            raise ApiError(401, UNAUTHENTICATED)
        if route is None:
            if match.allowed:
                return Response(
                    405,
                    {"errorMessages": [f"Method {request.method} is not allowed here."], "errors": {}},
                    {"Allow": ", ".join(sorted(set(match.allowed)))},
                )
            raise ApiError(404, f"null for uri: {request.base}{request.path}")
        request.params = match.params
        request.version = int(match.params.get("v", 3))
        # One request at a time touches the state: handlers are fast, and rendering
        # never sees a half-applied write. Injected latency (above) stays parallel.
        with self.sandbox.store.lock:
            return route.handler(self.sandbox, request)

    def _authenticated(self, header: str) -> bool:
        settings = self.sandbox.settings  # read per request: tests swap it on a running sandbox
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            expected = f"{settings.email}:{settings.api_token}"
            return hmac.compare_digest(decoded.encode(), expected.encode())
        if scheme.lower() == "bearer" and settings.pat:
            return hmac.compare_digest(credentials.strip().encode(), settings.pat.encode())
        return False
