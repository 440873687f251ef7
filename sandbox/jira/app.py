"""``JiraSandbox``: a loopback Jira Cloud (or Server) stand-in for tests and ``wajira demo``."""

from __future__ import annotations

import base64
import binascii
import hmac
import sys
import threading
import traceback
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs

from ..faults import FaultPlan
from ..httpserver import LoopbackServer
from . import api_attachments as att
from . import api_issues as iss
from . import api_permissions as perms
from . import api_search as srch
from . import control
from .model import ApiError, User
from .render import View
from .store import JiraStore
from .web import Request, Response, Router, route_name

UNAUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."


@dataclass(frozen=True)
class Settings:
    email: str
    api_token: str
    pat: str | None
    cloud: bool
    time_zone: str
    comment_page_limit: int
    search_inline_comment_limit: int


def _jira_error_body(status: int) -> dict:
    return {
        "errorMessages": [f"{status} {HTTPStatus(status).phrase} (injected by the sandbox)"],
        "errors": {},
    }


def _build_router(cloud: bool) -> Router:
    r = Router()
    # Server/Data Center has no REST API v3 and no /search/jql; Cloud has both versions.
    versions = (2, 3) if cloud else (2,)
    add = lambda method, template, handler: r.add(method, template, handler, versions)  # noqa: E731
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
    add("GET", "/rest/api/{v}/comment/{commentId}/properties", iss.comment_property_keys)
    add("GET", "/rest/api/{v}/comment/{commentId}/properties/{propertyKey}", iss.get_comment_property)
    add("PUT", "/rest/api/{v}/comment/{commentId}/properties/{propertyKey}", iss.put_comment_property)
    add("GET", "/rest/api/{v}/issue/{key}/transitions", iss.get_transitions)
    add("POST", "/rest/api/{v}/issue/{key}/transitions", iss.do_transition)
    add("POST", "/rest/api/{v}/issue/{key}/attachments", att.add_attachments)
    add("GET", "/rest/api/{v}/attachment/content/{id}", att.attachment_content)
    add("POST", "/rest/api/{v}/issueLink", iss.link_issues)
    add("GET", "/rest/api/{v}/issueLinkType", iss.issue_link_types)
    add("GET", "/rest/api/{v}/project/{projectKey}", iss.get_project)
    add("GET", "/rest/api/{v}/mypermissions", perms.my_permissions)
    search = srch.search_gone if cloud else srch.search_classic
    add("GET", "/rest/api/{v}/search", search)
    add("POST", "/rest/api/{v}/search", search)
    if cloud:
        add("GET", "/rest/api/{v}/search/jql", srch.search_jql)
        add("POST", "/rest/api/{v}/search/jql", srch.search_jql)
    return r


class JiraSandbox(control.SandboxHelpers):
    """An in-memory Jira served over loopback.

    Args:
        email, api_token: the HTTP Basic credentials Cloud accepts.
        pat: if given, ``Authorization: Bearer <pat>`` is accepted too (Server/DC style).
        deployment: "cloud" or "server" (v2 only, classic ``/search``).
        time_zone: the bot account's zone: JQL dates and rendered times use it.
        account_id, display_name: the bot account.
        comment_page_limit: cap on ``maxResults`` for comment pages.
        search_inline_comment_limit: comments inlined per issue in search results.
    """

    def __init__(
        self,
        *,
        email: str = "agent@example.com",
        api_token: str = "sandbox-api-token",
        pat: str | None = None,
        deployment: str = "cloud",
        time_zone: str = "UTC",
        account_id: str = "bot-account-id",
        display_name: str = "wajira bot",
        comment_page_limit: int = 5000,
        search_inline_comment_limit: int = 20,
    ) -> None:
        if deployment not in ("cloud", "server"):
            raise ValueError("deployment must be 'cloud' or 'server'")
        self.settings = Settings(
            email,
            api_token,
            pat,
            deployment == "cloud",
            time_zone,
            comment_page_limit,
            search_inline_comment_limit,
        )
        self.store = JiraStore(User(account_id, display_name, email, "atlassian"))
        self.faults = FaultPlan(default_body=_jira_error_body)
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._router = _build_router(self.settings.cloud)
        self._server: LoopbackServer | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (a free loopback port by default); return the base URL."""
        if self._server is None:
            self._server = LoopbackServer(self.app, host, port)
        return self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        return self._server.url

    def __enter__(self) -> "JiraSandbox":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- call counting --------------------------------------------------------------------------

    @property
    def calls(self) -> Counter[str]:
        """A snapshot of calls so far, keyed ``"METHOD /rest/api/3/issue/{key}/comment"``."""
        with self._calls_lock:
            return Counter(self._calls)

    def reset_calls(self) -> None:
        with self._calls_lock:
            self._calls.clear()

    def view(self, req: Request) -> View:
        return View(self.store, req.base, req.version, self.settings.time_zone, self.settings.cloud)

    # -- WSGI ----------------------------------------------------------------------------------

    def app(self, environ, start_response):
        req = _request(environ)
        try:
            if req.path.startswith("/_sandbox/"):
                resp = control.handle(self, req)
            else:
                resp = self._api(req)
        except ApiError as exc:
            resp = Response(exc.status, exc.body(), exc.headers)
        except Exception:  # a sandbox bug: answer 500 like Jira would, and show it in test output
            traceback.print_exc(file=sys.stderr)
            resp = Response(500, {"errorMessages": ["Internal server error"], "errors": {}})
        body = resp.encode()
        headers = [("Content-Type", resp.content_type), ("Content-Length", str(len(body)))]
        headers += list(resp.headers.items())
        start_response(f"{resp.status} {HTTPStatus(resp.status).phrase}", headers)
        return [body]

    def _api(self, req: Request) -> Response:
        route, params, allowed = self._router.match(req.method, req.path)
        name = route_name(route, params) if route else f"{req.method} {req.path}"
        with self._calls_lock:
            self._calls[name] += 1
        fault = self.faults.check(req.method, req.path)
        if fault is not None:
            return Response(fault.status, fault.body, fault.headers)
        if not self._authenticated(req.headers.get("authorization", "")):
            raise ApiError(401, UNAUTHENTICATED)
        if route is None:
            if allowed:
                return Response(
                    405,
                    {"errorMessages": [f"Method {req.method} is not allowed here."], "errors": {}},
                    {"Allow": ", ".join(sorted(set(allowed)))},
                )
            raise ApiError(404, f"null for uri: {req.base}{req.path}")
        req.params = params
        req.version = int(params.get("v", 3))
        # One request at a time touches the state: handlers are fast, and rendering
        # never sees a half-applied write. Injected latency (above) stays parallel.
        with self.store.lock:
            return route.handler(self, req)

    def _authenticated(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            expected = f"{self.settings.email}:{self.settings.api_token}"
            return hmac.compare_digest(decoded.encode(), expected.encode())
        if scheme.lower() == "bearer" and self.settings.pat:
            return hmac.compare_digest(credentials.strip().encode(), self.settings.pat.encode())
        return False


def _request(environ) -> Request:
    # wsgiref hands PATH_INFO over as latin-1 text of the raw bytes; recover the UTF-8.
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", errors="replace")
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return Request(
        method=environ.get("REQUEST_METHOD", "GET").upper(),
        path=path,
        query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
        headers=headers,
        body=body,
        base=f"{environ.get('wsgi.url_scheme', 'http')}://{host}",
    )
