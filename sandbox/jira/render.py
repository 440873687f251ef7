"""Turn the sandbox's records into Jira REST JSON (shapes from the v3 OpenAPI schemas).

Times are rendered like Jira (``2026-11-21T12:03:49.123+1400``) in the
requesting user's time zone, which is what Jira Cloud does; clients must parse
the offset rather than assume UTC.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from . import adf
from .fields import property_keys
from .model import CATEGORIES, LINK_TYPES, Attachment, Comment, Issue, Project, User
from .store import JiraStore


def format_time(ms: int, time_zone: str) -> str:
    moment = datetime.fromtimestamp(ms // 1000, ZoneInfo(time_zone))
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}{moment:%z}"


@dataclass
class View:
    """Rendering context for one request."""

    store: JiraStore
    base: str  # e.g. http://127.0.0.1:54321
    version: int
    time_zone: str
    cloud: bool

    @property
    def api(self) -> str:
        return f"{self.base}/rest/api/{self.version}"

    def time(self, ms: int) -> str:
        return format_time(ms, self.time_zone)

    def user(self, user: User, *, full: bool = False) -> dict:
        avatars = {
            size: f"{self.base}/secure/useravatar?size={size}&ownerId={user.account_id}"
            for size in ("48x48", "24x24", "16x16", "32x32")
        }
        out: dict[str, Any]
        if self.cloud:
            out = {"self": f"{self.api}/user?accountId={user.account_id}", "accountId": user.account_id}
        else:  # Server/DC users are named, not account ids
            out = {
                "self": f"{self.api}/user?username={user.account_id}",
                "name": user.account_id,
                "key": user.account_id,
            }
        if user.email:
            out["emailAddress"] = user.email
        out.update(
            {
                "avatarUrls": avatars,
                "displayName": user.display_name,
                "active": True,
                "timeZone": user.time_zone or self.time_zone,
            }
        )
        if self.cloud:
            out["accountType"] = user.account_type
        if full:
            out.update({"locale": "en_US", "expand": "groups,applicationRoles"})
        return out

    def status(self, name: str) -> dict:
        status_id, category = self.store.status(name)
        return {
            "self": f"{self.api}/status/{status_id}",
            "description": "",
            "iconUrl": f"{self.base}/images/icons/statuses/generic.png",
            "name": name,
            "id": status_id,
            "statusCategory": self.category(category),
        }

    def category(self, key: str) -> dict:
        cid, name, colour = CATEGORIES[key]
        return {
            "self": f"{self.api}/statuscategory/{cid}",
            "id": cid,
            "key": key,
            "colorName": colour,
            "name": name,
        }

    def issuetype(self, name: str) -> dict:
        type_id = self.store.issuetype_id(name)
        return {
            "self": f"{self.api}/issuetype/{type_id}",
            "id": type_id,
            "description": "",
            "iconUrl": f"{self.base}/images/icons/issuetypes/{name.lower()}.png",
            "name": name,
            "subtask": False,
            "hierarchyLevel": 0,
        }

    def project(self, project: Project, *, full: bool = False) -> dict:
        out = {
            "self": f"{self.api}/project/{project.id}",
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "projectTypeKey": project.type_key,
            "simplified": False,
            "avatarUrls": {
                s: f"{self.base}/secure/projectavatar?size={s}&pid={project.id}"
                for s in ("48x48", "24x24", "16x16", "32x32")
            },
        }
        if full:
            out.update(
                {
                    "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                    "description": "",
                    "assigneeType": "UNASSIGNED",
                    "components": [],
                    "issueTypes": [self.issuetype(t) for t in project.issue_types],
                    "versions": [],
                    "roles": {},
                    "style": "classic",
                    "isPrivate": False,
                    "properties": {},
                }
            )
        return out

    def comment(self, comment: Comment, expand: Set[str] = frozenset()) -> dict:
        out = {
            "self": f"{self.api}/issue/{comment.issue_id}/comment/{comment.id}",
            "id": comment.id,
            "author": self.user(comment.author),
            "body": adf.view(comment.body, self.version, self._media_names(comment.issue_id)),
            "updateAuthor": self.user(comment.author),
            "created": self.time(comment.created_ms),
            "updated": self.time(comment.updated_ms),
            "jsdPublic": comment.jsd_public,
        }
        if comment.visibility is not None:
            out["visibility"] = comment.visibility
        if "renderedBody" in expand:
            text = adf.to_text(comment.body)
            out["renderedBody"] = "".join(f"<p>{_html(p)}</p>" for p in text.split("\n\n"))
        if "properties" in expand:
            out["properties"] = [{"key": k, "value": v} for k, v in comment.properties.items()]
        return out

    def _media_names(self, issue_id: str) -> dict[str, adf.MediaName]:
        """Media id -> (filename, mime type) of the issue's files: how v2 names a v3 media node."""
        issue = self.store.issues.get(issue_id)
        files = [self.store.attachments[a] for a in issue.attachment_ids] if issue else []
        return {f.media_id: adf.MediaName(f.filename, f.mime_type) for f in files}

    def comment_page(
        self,
        comments: list[Comment],
        start: int,
        limit: int,
        expand: Set[str] = frozenset(),
        issue_id: str | None = None,
    ) -> dict:
        """A PageOfComments; ``issue_id`` adds the ``self`` link of the form inlined in issue fields."""
        out: dict = {"comments": [self.comment(c, expand) for c in comments[start : start + limit]]}
        if issue_id is not None:
            out["self"] = f"{self.api}/issue/{issue_id}/comment"
        out.update({"maxResults": limit, "total": len(comments), "startAt": start})
        return out

    def attachment(self, item: Attachment) -> dict:
        out = {
            "self": f"{self.api}/attachment/{item.id}",
            "id": item.id,
            "filename": item.filename,
            "author": self.user(item.author),
            "created": self.time(item.created_ms),
            "size": len(item.data),
            "mimeType": item.mime_type,
            "content": f"{self.api}/attachment/content/{item.id}",
        }
        if item.mime_type.startswith("image/"):
            out["thumbnail"] = f"{self.api}/attachment/thumbnail/{item.id}"
        return out

    def issue_links(self, issue: Issue) -> list[dict]:
        out = []
        for link_id in issue.link_ids:
            link = self.store.links[link_id]
            type_id = next(i for i, t in LINK_TYPES.items() if t[0] == link.type_name)
            name, inward, outward = LINK_TYPES[type_id]
            entry = {
                "id": link.id,
                "self": f"{self.api}/issueLink/{link.id}",
                "type": {
                    "id": type_id,
                    "name": name,
                    "inward": inward,
                    "outward": outward,
                    "self": f"{self.api}/issueLinkType/{type_id}",
                },
            }
            # Seen from the link's source (outward) issue, the other end is "outwardIssue".
            if issue.id == link.outward_id:
                entry["outwardIssue"] = self._linked(self.store.issues[link.inward_id])
            else:
                entry["inwardIssue"] = self._linked(self.store.issues[link.outward_id])
            out.append(entry)
        return out

    def _linked(self, issue: Issue) -> dict:
        return {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.api}/issue/{issue.id}",
            "fields": {"summary": issue.summary, "status": self.status(issue.status)},
        }

    def issue(
        self, issue: Issue, fields: set[str], properties: list[str] | None = None, comment_limit: int = 5000
    ) -> dict:
        """An IssueBean with the given field set; ``{"id"}`` alone gives the id-only form."""
        if fields <= {"id"}:
            out: dict = {"id": issue.id}
        else:
            out = {
                "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
                "id": issue.id,
                "self": f"{self.api}/issue/{issue.id}",
                "key": issue.key,
                "fields": self._fields(issue, fields, comment_limit),
            }
        if properties:
            wanted = property_keys(properties, issue.properties)
            out["properties"] = {k: issue.properties[k] for k in wanted}
        return out

    def _fields(self, issue: Issue, fields: set[str], comment_limit: int) -> dict:
        status_category = self.store.status(issue.status)[1]
        project = self.store.projects[issue.project_key]
        makers = {
            "summary": lambda: issue.summary,
            "description": lambda: adf.view(issue.description, self.version),
            "labels": lambda: list(issue.labels),
            "issuetype": lambda: self.issuetype(issue.issuetype),
            "project": lambda: self.project(project),
            "status": lambda: self.status(issue.status),
            "statusCategory": lambda: self.category(status_category),
            "created": lambda: self.time(issue.created_ms),
            "updated": lambda: self.time(issue.updated_ms),
            "reporter": lambda: self.user(issue.reporter),
            "creator": lambda: self.user(issue.reporter),
            "comment": lambda: self.comment_page(
                self.store.issue_comments(issue), 0, comment_limit, issue_id=issue.id
            ),
            "attachment": lambda: [self.attachment(self.store.attachments[a]) for a in issue.attachment_ids],
            "issuelinks": lambda: self.issue_links(issue),
        }
        out = {name: make() for name, make in makers.items() if name in fields}
        for name, value in issue.custom.items():
            if name in fields or "*custom" in fields:
                out[name] = value
        return out


def _html(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("\n", "<br/>")
