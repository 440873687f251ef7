"""``GET /rest/api/{2,3}/mypermissions``: which permissions the bot account holds.

Shaped after ``getMyPermissions`` in specs/jira-platform-v3.openapi.json: ``permissions`` (a
comma-separated list of keys) is required, an unknown key is a 400, an unknown project a 404,
and the answer is ``{"permissions": {KEY: UserPermission}}`` with only the keys asked for.

The sandbox has no permission schemes: the bot holds every permission, except the keys a
test puts in ``sandbox.denied_permissions`` (a set; absent means none denied).
"""

from __future__ import annotations

from sandbox.web import Response

from .model import ApiError
from .web import Request

# key → (id, name, type, description), Jira's built-in permissions the bot may care about.
KNOWN = {
    "ADMINISTER": (
        "0",
        "Administer Jira",
        "GLOBAL",
        "Create and administer projects, issue types, fields, workflows, and schemes for all projects.",
    ),
    "BROWSE_PROJECTS": (
        "10",
        "Browse Projects",
        "PROJECT",
        "Ability to browse projects and the issues within them.",
    ),
    "CREATE_ISSUES": ("11", "Create Issues", "PROJECT", "Ability to create issues."),
    "EDIT_ISSUES": ("12", "Edit Issues", "PROJECT", "Ability to edit issues."),
    "ASSIGN_ISSUES": ("13", "Assign Issues", "PROJECT", "Ability to assign issues to other people."),
    "RESOLVE_ISSUES": (
        "14",
        "Resolve Issues",
        "PROJECT",
        "Ability to resolve and reopen issues. This includes the ability to set a fix version.",
    ),
    "ADD_COMMENTS": ("15", "Add Comments", "PROJECT", "Ability to comment on issues."),
    "CREATE_ATTACHMENTS": (
        "19",
        "Create Attachments",
        "PROJECT",
        "Users with this permission may create attachments.",
    ),
    "ADMINISTER_PROJECTS": (
        "23",
        "Administer Projects",
        "PROJECT",
        "Ability to administer a project in Jira.",
    ),
    "EDIT_OWN_COMMENTS": (
        "35",
        "Edit Own Comments",
        "PROJECT",
        "Ability to edit own comments made on issues.",
    ),
    "TRANSITION_ISSUES": ("46", "Transition Issues", "PROJECT", "Ability to transition issues."),
    "LINK_ISSUES": (
        "21",
        "Link Issues",
        "PROJECT",
        "Ability to link issues together and create linked issues.",
    ),
}


def my_permissions(sb, req: Request) -> Response:
    keys = [k.strip() for k in (req.arg("permissions") or "").split(",") if k.strip()]
    if not keys:
        raise ApiError(
            400, "The 'permissions' parameter is required: a comma-separated list of permission keys."
        )
    unknown = [k for k in keys if k not in KNOWN]
    if unknown:
        raise ApiError(400, f"Invalid permission key(s): {', '.join(unknown)}.")
    project_ref = req.arg("projectId") or req.arg("projectKey")
    if project_ref and sb.store.project(project_ref) is None:
        raise ApiError(404, f"No project could be found with key '{project_ref}'.")
    issue_ref = req.arg("issueId") or req.arg("issueKey")
    if issue_ref:
        sb.store.find_issue(issue_ref)  # 404 in Jira's words when it does not exist
    denied = sb.denied_permissions or set()
    answer = {}
    for key in dict.fromkeys(keys):
        pid, name, kind, description = KNOWN[key]
        answer[key] = {
            "id": pid,
            "key": key,
            "name": name,
            "type": kind,
            "description": description,
            "havePermission": key not in denied,
        }
    return Response(200, {"permissions": answer})
