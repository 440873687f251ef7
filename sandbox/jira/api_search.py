"""JQL search: Cloud's ``/search/jql`` (token paging, no total) and Server's classic ``/search``.

Cloud removed ``/rest/api/{2,3}/search`` (410 Gone); the sandbox refuses it the
same way so a client that still calls it fails in tests, not in production.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from sandbox.web import Response

from . import adf
from .fields import TOP_LEVEL, resolve_fields, split_list
from .jql import JqlError, parse
from .jqleval import Context, IssueView, compile_query
from .model import ApiError, Issue
from .web import Request

MAX_PAGE = 5000  # the spec: "It returns max 5000 issues" (when only ids/keys are asked for)
MAX_PAGE_WITH_FIELDS = 100  # fewer per page "where a large number of fields are requested"
_POST_KEYS = {
    "jql",
    "nextPageToken",
    "maxResults",
    "fields",
    "expand",
    "properties",
    "fieldsByKeys",
    "failFast",
    "reconcileIssues",
}
GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)


def search_gone(sb, req: Request) -> Response:
    raise ApiError(410, GONE)


def search_jql(sb, req: Request) -> Response:
    """GET or POST ``/rest/api/{2,3}/search/jql``."""
    p = _params(req)
    max_results = _int(p.get("maxResults"), 50, "maxResults")
    if max_results < 1:
        raise ApiError(400, "The 'maxResults' parameter must be greater than 0.")
    properties = split_list(p.get("properties"))
    if len(properties) > 5:
        raise ApiError(400, "A maximum of 5 issue properties can be requested.")
    reconcile = p.get("reconcileIssues") or []
    if not isinstance(reconcile, list) or len(reconcile) > 50 or not all(str(i).isdigit() for i in reconcile):
        raise ApiError(400, "reconcileIssues accepts at most 50 numeric issue ids.")
    jql = p.get("jql") or ""
    wanted = resolve_fields(split_list(p.get("fields")), "id")
    cap = MAX_PAGE if wanted <= TOP_LEVEL else MAX_PAGE_WITH_FIELDS
    page_size = min(max_results, cap)
    offset = _read_token(p.get("nextPageToken"), jql)
    with sb.store.lock:
        query = _parse(jql)
        if query.where is None:
            raise ApiError(
                400,
                "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.",
            )
        # The sandbox is always consistent, so reconcileIssues needs no extra work here.
        found = _run(sb, query)
        page = found[offset : offset + page_size]
        view = sb.view(req)
        issues = [view.issue(i, wanted, properties, sb.settings.search_inline_comment_limit) for i in page]
    body: dict[str, Any] = {"issues": issues}
    if offset + page_size < len(found):
        body["nextPageToken"] = _make_token(offset + page_size, jql)
        body["isLast"] = False
    else:
        body["isLast"] = True
    return Response(200, body)


def search_classic(sb, req: Request) -> Response:
    """Server/Data Center ``/rest/api/2/search`` with startAt/maxResults/total."""
    p = _params(req, strict=False)
    start = _int(p.get("startAt"), 0, "startAt")
    max_results = min(_int(p.get("maxResults"), 50, "maxResults"), 1000)
    wanted = resolve_fields(split_list(p.get("fields")), "*navigable")
    properties = split_list(p.get("properties"))
    with sb.store.lock:
        found = _run(sb, _parse(p.get("jql") or ""))
        view = sb.view(req)
        issues = [
            view.issue(i, wanted | {"key"}, properties, sb.settings.search_inline_comment_limit)
            for i in found[start : start + max_results]
        ]
    return Response(
        200,
        {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": max_results,
            "total": len(found),
            "issues": issues,
        },
    )


def _params(req: Request, *, strict: bool = True) -> dict[str, Any]:
    if req.method == "GET":
        out: dict[str, Any] = {k: v[0] for k, v in req.query.items()}
        for name in ("fields", "properties", "reconcileIssues"):
            if name in req.query:
                out[name] = split_list(req.query[name])
        return out
    body = req.json() or {}
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    unknown = set(body) - _POST_KEYS - ({"startAt", "validateQuery"} if not strict else set())
    if unknown:
        raise ApiError(400, f'Unrecognized field "{sorted(unknown)[0]}".')
    return body


def _int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"The '{name}' parameter must be a number, got '{value}'.") from None


def _parse(jql: str):
    try:
        return parse(jql)
    except JqlError as exc:
        raise ApiError(400, str(exc)) from None


def _run(sb, query) -> list[Issue]:
    """Matching issues in ORDER BY order (JQL errors become 400s)."""
    store = sb.store

    def exists(ref: str) -> bool:
        try:
            store.find_issue(ref)
            return True
        except ApiError:
            return False

    ctx = Context(sb.settings.time_zone, store.clock.now_ms(), store.bot.account_id, exists)
    try:
        predicate, order = compile_query(query, ctx)
    except JqlError as exc:
        raise ApiError(400, str(exc)) from None
    views = {i.id: _view(store, i) for i in store.issues.values()}
    return [store.issues[v.id] for v in order([v for v in views.values() if predicate(v)])]


def _view(store, issue: Issue) -> IssueView:
    project = store.projects[issue.project_key]
    return IssueView(
        id=issue.id,
        key=issue.key,
        project_key=project.key,
        project_id=project.id,
        project_name=project.name,
        labels=tuple(issue.labels),
        created_ms=issue.created_ms,
        updated_ms=issue.updated_ms,
        status_name=issue.status,
        status_category=store.status(issue.status)[1],
        issuetype=issue.issuetype,
        reporter=issue.reporter.account_id,
        # Bodies as stored (ADF from v3, wiki markup from v2), flattened for `~`.
        summary=issue.summary,
        description=adf.to_text(issue.description),
        comments=tuple(adf.to_text(c.body) for c in store.issue_comments(issue)),
        custom_texts=tuple(adf.to_text(v) for v in issue.custom.values() if isinstance(v, str) or _is_adf(v)),
    )


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc"


def _digest(jql: str) -> str:
    return hashlib.sha256(jql.encode()).hexdigest()[:12]


def _make_token(offset: int, jql: str) -> str:
    raw = json.dumps({"o": offset, "q": _digest(jql)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: Any, jql: str) -> int:
    """Offset encoded in an opaque page token; it only continues the query that made it."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token) + "=" * (-len(str(token)) % 4)))
        if data["q"] == _digest(jql) and int(data["o"]) >= 0:
            return int(data["o"])
    except (ValueError, KeyError, TypeError):
        pass
    raise ApiError(400, "The provided next page token is invalid or expired.")
