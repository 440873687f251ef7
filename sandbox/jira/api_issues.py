"""Handlers for identity, issues, comments, entity properties and project metadata.

Each handler takes the sandbox (``sb``: ``store``, ``settings``, ``view(req)``) and a
``Request`` and returns a ``Response``; refusals are raised as ``ApiError``.
"""

from __future__ import annotations

from sandbox.web import Response

from .fields import resolve_fields
from .model import LINK_TYPES, ApiError
from .validate import property_value
from .web import Request


def myself(sb, req: Request) -> Response:
    return Response(200, sb.view(req).user(sb.store.bot, full=True))


def server_info(sb, req: Request) -> Response:
    view = sb.view(req)
    cloud = sb.settings.cloud
    version = [1001, 0, 0] if cloud else [9, 12, 0]
    return Response(
        200,
        {
            "baseUrl": req.base,
            "displayUrl": req.base,
            "version": ".".join(map(str, version)),
            "versionNumbers": version,
            "deploymentType": "Cloud" if cloud else "Server",
            "buildNumber": 100289,
            "buildDate": view.time(1_767_225_600_000),
            "serverTime": view.time(sb.store.clock.now_ms()),
            "scmInfo": "0" * 40,
            "serverTitle": "wajira sandbox",
            "serverTimeZone": sb.settings.time_zone,
        },
    )


def fields(sb, req: Request) -> Response:
    # The jira library maps JQL names to field ids through this list before a search.
    system = [
        ("issuekey", "Key", ["id", "issue", "issuekey", "key"]),
        ("summary", "Summary", ["summary"]),
        ("description", "Description", ["description"]),
        ("labels", "Labels", ["labels"]),
        ("status", "Status", ["status"]),
        ("statusCategory", "Status Category", ["statusCategory"]),
        ("issuetype", "Issue Type", ["issuetype", "type"]),
        ("project", "Project", ["project"]),
        ("created", "Created", ["created", "createdDate"]),
        ("updated", "Updated", ["updated", "updatedDate"]),
        ("reporter", "Reporter", ["reporter"]),
        ("creator", "Creator", ["creator"]),
        ("comment", "Comment", ["comment"]),
        ("attachment", "Attachment", ["attachments"]),
        ("issuelinks", "Linked Issues", ["issueLink"]),
    ]
    out = [
        {
            "id": fid,
            "key": fid,
            "name": name,
            "custom": False,
            "orderable": fid != "issuekey",
            "navigable": fid not in ("comment", "attachment"),
            "searchable": True,
            "clauseNames": clauses,
        }
        for fid, name, clauses in system
    ]
    return Response(200, out)


def create_issue(sb, req: Request) -> Response:
    issue = sb.store.create_issue(req.json(), req.version, sb.store.bot)
    return Response(201, {"id": issue.id, "key": issue.key, "self": f"{sb.view(req).api}/issue/{issue.id}"})


def get_issue(sb, req: Request) -> Response:
    with sb.store.lock:
        issue = sb.store.find_issue(req.params["key"])
        wanted = resolve_fields(req.list_arg("fields"), "*all")
        body = sb.view(req).issue(issue, wanted, req.list_arg("properties"), sb.settings.comment_page_limit)
    return Response(200, body)


def edit_issue(sb, req: Request) -> Response:
    issue = sb.store.find_issue(req.params["key"])
    sb.store.edit_issue(issue, req.json(), req.version)
    return Response(204)


def issue_property_keys(sb, req: Request) -> Response:
    issue = sb.store.find_issue(req.params["key"])
    api = sb.view(req).api
    return Response(
        200,
        {"keys": [{"self": f"{api}/issue/{issue.id}/properties/{k}", "key": k} for k in issue.properties]},
    )


def get_issue_property(sb, req: Request) -> Response:
    issue = sb.store.find_issue(req.params["key"])
    return _get_property(issue.properties, req.params["propertyKey"])


def put_issue_property(sb, req: Request) -> Response:
    issue = sb.store.find_issue(req.params["key"])
    return _put_property(sb, issue.properties, req)


def add_comment(sb, req: Request) -> Response:
    issue = sb.store.find_issue(req.params["key"])
    comment = sb.store.add_comment(issue, req.json(), req.version, sb.store.bot)
    return Response(201, sb.view(req).comment(comment, set(req.list_arg("expand"))))


def get_comments(sb, req: Request) -> Response:
    order = req.arg("orderBy")
    if order not in (None, "created", "+created", "-created"):
        raise ApiError(400, f"The value '{order}' is not a valid orderBy value. Use 'created' or '-created'.")
    start = req.int_arg("startAt", 0)
    limit = req.int_arg("maxResults", 100)
    if start < 0 or limit < 0:
        raise ApiError(400, "startAt and maxResults must not be negative.")
    with sb.store.lock:
        issue = sb.store.find_issue(req.params["key"])
        comments = sb.store.issue_comments(issue)
        if order == "-created":
            comments = list(reversed(comments))
        # Jira silently lowers maxResults to its page cap; the answer shows the cap applied.
        limit = min(limit, sb.settings.comment_page_limit)
        body = sb.view(req).comment_page(comments, start, limit, set(req.list_arg("expand")))
    return Response(200, body)


def comments_by_ids(sb, req: Request) -> Response:
    """``POST /comment/list``: the comments with the given ids (at most 1000), in one page."""
    body = req.json() or {}
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids or len(ids) > 1000:
        raise ApiError(400, "Provide between 1 and 1000 comment ids.")
    expand = set(req.list_arg("expand"))
    with sb.store.lock:
        found = [sb.store.comments[str(i)] for i in ids if str(i) in sb.store.comments]
        view = sb.view(req)
        values = [view.comment(c, expand) for c in sorted(found, key=lambda c: int(c.id))]
    return Response(
        200, {"isLast": True, "maxResults": 1048576, "startAt": 0, "total": len(values), "values": values}
    )


def get_comment(sb, req: Request) -> Response:
    with sb.store.lock:
        issue = sb.store.find_issue(req.params["key"])
        comment = sb.store.find_comment(req.params["commentId"])
        if comment.issue_id != issue.id:
            raise ApiError(404, f"Can not find a comment for the id: {comment.id}.")
        return Response(200, sb.view(req).comment(comment, set(req.list_arg("expand"))))


def comment_property_keys(sb, req: Request) -> Response:
    comment = sb.store.find_comment(req.params["commentId"])
    api = sb.view(req).api
    return Response(
        200,
        {
            "keys": [
                {"self": f"{api}/comment/{comment.id}/properties/{k}", "key": k} for k in comment.properties
            ]
        },
    )


def get_comment_property(sb, req: Request) -> Response:
    comment = sb.store.find_comment(req.params["commentId"])
    return _get_property(comment.properties, req.params["propertyKey"])


def put_comment_property(sb, req: Request) -> Response:
    comment = sb.store.find_comment(req.params["commentId"])
    return _put_property(sb, comment.properties, req)


def _get_property(properties: dict, key: str) -> Response:
    if key not in properties:
        raise ApiError(404, f"The property with key '{key}' does not exist.")
    return Response(200, {"key": key, "value": properties[key]})


def _put_property(sb, properties: dict, req: Request) -> Response:
    key = req.params["propertyKey"]
    value = property_value(key, req.body)
    with sb.store.lock:
        created = key not in properties
        properties[key] = value
    return Response(201 if created else 200)


def get_transitions(sb, req: Request) -> Response:
    with sb.store.lock:
        issue = sb.store.find_issue(req.params["key"])
        view = sb.view(req)
        only = req.arg("transitionId")
        out = [
            {
                "id": tid,
                "name": name,
                "to": view.status(target),
                "hasScreen": False,
                "isGlobal": True,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "looped": False,
            }
            for tid, name, target in sb.store.transitions(issue)
            if only in (None, tid)
        ]
    return Response(200, {"expand": "transitions", "transitions": out})


def do_transition(sb, req: Request) -> Response:
    issue = sb.store.find_issue(req.params["key"])
    sb.store.transition(issue, req.json(), req.version)
    return Response(204)


def link_issues(sb, req: Request) -> Response:
    sb.store.link(req.json(), req.version)
    return Response(201)


def get_project(sb, req: Request) -> Response:
    project = sb.store.project(req.params["projectKey"])
    if project is None:
        raise ApiError(404, f"No project could be found with key '{req.params['projectKey']}'.")
    return Response(200, sb.view(req).project(project, full=True))


def createmeta_issuetypes(sb, req: Request) -> Response:
    project = sb.store.project(req.params["projectKey"])
    if project is None:
        raise ApiError(404, f"No project could be found with key '{req.params['projectKey']}'.")
    start = req.int_arg("startAt", 0)
    limit = req.int_arg("maxResults", 50)
    if limit > 200:
        raise ApiError(400, "Parameter 'maxResults' must not exceed the limit '200'")
    view = sb.view(req)
    types = [view.issuetype(t) for t in project.issue_types]
    return Response(
        200,
        {
            "issueTypes": types[start : start + limit],
            "maxResults": limit,
            "startAt": start,
            "total": len(types),
        },
    )


def issue_types(sb, req: Request) -> Response:
    view = sb.view(req)
    with sb.store.lock:
        return Response(200, [view.issuetype(name) for name in sb.store.issuetypes])


def issue_link_types(sb, req: Request) -> Response:
    api = sb.view(req).api
    return Response(
        200,
        {
            "issueLinkTypes": [
                {
                    "id": tid,
                    "name": name,
                    "inward": inward,
                    "outward": outward,
                    "self": f"{api}/issueLinkType/{tid}",
                }
                for tid, (name, inward, outward) in LINK_TYPES.items()
            ]
        },
    )
