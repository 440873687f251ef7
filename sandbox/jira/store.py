"""The sandbox's state: projects, issues, comments, attachments and links in memory.

Every public method takes the one re-entrant lock, so HTTP threads and test
helpers can touch the state concurrently. Ids are deterministic (issues and
comments count from 10000, issue keys from ``{PROJECT}-1``) so tests can name them.
"""

from __future__ import annotations

import re
import secrets
import threading
from typing import Any

from . import validate
from .model import (
    LINK_TYPES,
    PROJECT_KEY,
    TRANSITIONS,
    ApiError,
    Attachment,
    Clock,
    Comment,
    Issue,
    Link,
    Project,
    User,
    not_found_issue,
)

# The agent the helpers act as unless told otherwise, seeded with a zone of its own (Jira's user
# JSON carries each user's ``timeZone``; a command's answer may show times in it).
SEEDED_AGENT = User("agent-agent-smith", "Agent Smith", time_zone="Europe/Berlin")


class JiraStore:
    """In-memory Jira data guarded by ``lock``."""

    def __init__(self, bot: User) -> None:
        self.lock = threading.RLock()
        self.bot = bot
        self.clock = Clock()
        self._seeds: list[tuple[str, str | None, tuple[str, ...]]] = []
        self._seeded_service_desks: set[str] = set()
        self.reset()

    def reset(self) -> None:
        """Forget everything except projects seeded with ``add_project``."""
        with self.lock:
            self.projects: dict[str, Project] = {}
            self.issues: dict[str, Issue] = {}  # by id
            self.comments: dict[str, Comment] = {}
            self.attachments: dict[str, Attachment] = {}
            self.links: dict[str, Link] = {}
            self.users: dict[str, User] = {
                self.bot.account_id: self.bot,
                SEEDED_AGENT.account_id: User(**vars(SEEDED_AGENT)),
            }
            # Media Services download tokens handed out in content redirects: token -> media id.
            self.media_tokens: dict[str, str] = {}
            self.statuses = {
                "To Do": ("10000", "new"),
                "In Progress": ("3", "indeterminate"),
                "Done": ("10001", "done"),
            }
            self.issuetypes = {"Task": "10001", "Bug": "10002"}
            self._next = {
                "issue": 10000,
                "comment": 10000,
                "attachment": 10000,
                "link": 10000,
                "project": 10000,
                "status": 10002,
                "issuetype": 10003,
            }
            self.clock.offset_ms = 0
            for key, name, types in self._seeds:
                self._make_project(key, name, types)
            for key in self._seeded_service_desks:
                self.projects[key].type_key = "service_desk"

    def next_id(self, kind: str) -> str:
        with self.lock:
            value = self._next[kind]
            self._next[kind] = value + 1
            return str(value)

    # -- projects, types, statuses, users ---------------------------------------------------

    def add_project(
        self, key: str, name: str | None = None, issue_types: tuple[str, ...] = ("Task", "Bug")
    ) -> Project:
        with self.lock:
            self._seeds.append((key, name, tuple(issue_types)))
            return self._make_project(key, name, tuple(issue_types))

    def _make_project(self, key: str, name: str | None, types: tuple[str, ...]) -> Project:
        existing = self.projects.get(key)
        if existing:
            existing.issue_types = list(dict.fromkeys([*existing.issue_types, *types]))
            return existing
        for type_name in types:
            self.issuetype_id(type_name)
        project = Project(self.next_id("project"), key, name or f"{key} project", list(types))
        self.projects[key] = project
        return project

    def project(self, ref: str, *, create: bool = True) -> Project | None:
        """Find a project by key, id or name; unknown keys shaped like Jira keys spring into being."""
        with self.lock:
            ref = str(ref)
            for project in self.projects.values():
                if ref.upper() == project.key or ref == project.id:
                    return project
            if create and PROJECT_KEY.match(ref):
                return self._make_project(ref, None, ("Task", "Bug"))
            return None

    def make_service_desk(self, key: str) -> Project:
        """Make the project a JSM service desk; a project seeded with ``add_project`` stays one
        across ``reset``, like the rest of its seed."""
        with self.lock:
            project = self.project(key)
            if project is None:
                raise ValueError(f"{key!r} is not a project key")
            project.type_key = "service_desk"
            if any(seed[0] == project.key for seed in self._seeds):
                self._seeded_service_desks.add(project.key)
            return project

    def issuetype_id(self, name: str) -> str:
        with self.lock:
            if name not in self.issuetypes:
                self.issuetypes[name] = self.next_id("issuetype")
            return self.issuetypes[name]

    def issuetype_name(self, ref: dict[str, Any]) -> str | None:
        if ref.get("name"):
            return next((n for n in self.issuetypes if n.lower() == str(ref["name"]).lower()), None)
        return next((n for n, i in self.issuetypes.items() if i == str(ref.get("id"))), None)

    def status(self, name: str) -> tuple[str, str]:
        """(status id, category key) for a status name."""
        return self.statuses[name]

    def set_status(self, issue: Issue, name: str, category: str) -> None:
        with self.lock:
            if name not in self.statuses:
                self.statuses[name] = (self.next_id("status"), category)
            issue.status = name
            issue.updated_ms = self.clock.now_ms()

    def user(self, display_name: str) -> User:
        """An agent account for ``display_name`` (created on first use, stable id)."""
        with self.lock:
            account_id = "agent-" + re.sub(r"[^a-z0-9]+", "-", display_name.lower()).strip("-")
            return self.users.setdefault(account_id, User(account_id, display_name, time_zone="UTC"))

    def agent(self, ref: str) -> User:
        """A person, not the bot: by account id when one is known, else by display name."""
        with self.lock:
            user = self.users.get(ref) or self.user(ref)
            if user.account_id == self.bot.account_id:
                raise ValueError("an agent must not be the bot's account")
            return user

    # -- issues --------------------------------------------------------------------------------

    def find_issue(self, ref: str) -> Issue:
        """By id or (case-insensitive) key; 404 when there is none."""
        with self.lock:
            if ref in self.issues:
                return self.issues[ref]
            wanted = str(ref).upper()
            for issue in self.issues.values():
                if issue.key == wanted:
                    return issue
            raise not_found_issue()

    def create_issue(self, payload: Any, version: int, reporter: User) -> Issue:
        if not isinstance(payload, dict):
            raise ApiError(400, "Can not deserialize the request body.")
        fields: Any = payload.get("fields")  # a dict once check_fields found no error
        errors = validate.check_fields(fields, version, creating=True)
        properties = validate.entity_properties(payload.get("properties"))
        with self.lock:
            project, type_name = self._placement(fields, errors)
            # Without errors both are known: each lookup that fails adds one.
            if errors or project is None or type_name is None:
                raise ApiError(400, errors=errors)
            now = self.clock.now_ms()
            issue = Issue(
                id=self.next_id("issue"),
                key=f"{project.key}-{project.next_number}",
                project_key=project.key,
                issuetype=type_name,
                summary=fields["summary"],
                description=fields.get("description"),
                labels=list(fields.get("labels") or []),
                status="To Do",
                created_ms=now,
                updated_ms=now,
                reporter=reporter,
                custom={k: v for k, v in fields.items() if k.startswith("customfield_")},
                properties=properties,
            )
            project.next_number += 1
            self.issues[issue.id] = issue
            return issue

    def _placement(self, fields: Any, errors: dict[str, str]) -> tuple[Project | None, str | None]:
        """The project and issue type a new issue names; adds to ``errors`` what does not exist."""
        project = None
        if "project" not in errors:
            ref = fields["project"].get("key") or fields["project"].get("id")
            project = self.project(str(ref))
            if project is None:
                errors["project"] = "Specify a valid project ID or key"
        type_name = None
        if project is not None and "issuetype" not in errors:
            type_name = self.issuetype_name(fields["issuetype"])
            if type_name not in project.issue_types:
                errors["issuetype"] = "The issue type selected is invalid."
        return project, type_name

    def edit_issue(self, issue: Issue, payload: Any, version: int) -> None:
        if not isinstance(payload, dict):
            raise ApiError(400, "Can not deserialize the request body.")
        fields = payload.get("fields") or {}
        update = payload.get("update") or {}
        errors = validate.check_fields(fields, version, creating=False)
        for name in ("project", "issuetype"):
            if name in fields:
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                )
        labels = validate.edited_labels(issue.labels, fields, update)
        problem = validate.labels_problem(labels)
        if problem:
            errors["labels"] = problem
        if errors:
            raise ApiError(400, errors=errors)
        with self.lock:
            issue.summary = fields.get("summary", issue.summary)
            if "description" in fields:
                issue.description = fields["description"]
            issue.labels = labels
            issue.custom.update({k: v for k, v in fields.items() if k.startswith("customfield_")})
            issue.properties.update(validate.entity_properties(payload.get("properties")))
            issue.updated_ms = self.clock.now_ms()

    # -- comments ------------------------------------------------------------------------------

    def add_comment(self, issue: Issue, payload: Any, version: int, author: User) -> Comment:
        errors = validate.check_comment(payload, version)
        if errors:
            raise ApiError(400, errors=errors)
        with self.lock:
            now = self.clock.now_ms()
            comment = Comment(
                id=self.next_id("comment"),
                issue_id=issue.id,
                body=payload["body"],
                author=author,
                created_ms=now,
                updated_ms=now,
                properties=validate.entity_properties(payload.get("properties")),
                visibility=payload.get("visibility"),
            )
            self.comments[comment.id] = comment
            issue.comment_ids.append(comment.id)
            issue.updated_ms = now  # a comment makes the issue "updated" for JQL
            return comment

    def find_comment(self, comment_id: str) -> Comment:
        with self.lock:
            comment = self.comments.get(str(comment_id))
            if comment is None:
                raise ApiError(404, f"Can not find a comment for the id: {comment_id}.")
            return comment

    def issue_comments(self, issue: Issue) -> list[Comment]:
        with self.lock:
            return [self.comments[c] for c in issue.comment_ids]

    # -- workflow, attachments, links ----------------------------------------------------------

    def transitions(self, issue: Issue) -> list[tuple[str, str, str]]:
        """Transitions (id, name, target status) available from the issue's status category."""
        with self.lock:
            category = self.statuses[issue.status][1]
            return [(tid, name, target) for tid, name, target, origins in TRANSITIONS if category in origins]

    def transition(self, issue: Issue, payload: Any, version: int) -> None:
        transition = payload.get("transition") if isinstance(payload, dict) else None
        tid = str(transition.get("id", "")) if isinstance(transition, dict) else ""
        if not tid:
            raise ApiError(400, "Missing 'transition' identifier")
        with self.lock:
            match = next((t for t in self.transitions(issue) if t[0] == tid), None)
            if match is None:
                raise ApiError(400, f"Transition id '{tid}' is not valid for this issue.")
            for op in (payload.get("update") or {}).get("comment", []):
                if isinstance(op, dict) and "add" in op:
                    self.add_comment(issue, op["add"], version, self.bot)
            self.set_status(issue, match[2], self.statuses[match[2]][1])

    def add_attachment(self, issue: Issue, filename: str, data: bytes, mime: str, author: User) -> Attachment:
        with self.lock:
            now = self.clock.now_ms()
            item = Attachment(self.next_id("attachment"), issue.id, filename, data, mime, now, author)
            self.attachments[item.id] = item
            issue.attachment_ids.append(item.id)
            issue.updated_ms = now
            return item

    def media_token(self, item: Attachment) -> str:
        """A fresh download token for the attachment's Media Services file (the redirect's ``token``)."""
        with self.lock:
            token = secrets.token_urlsafe(24)
            self.media_tokens[token] = item.media_id
            return token

    def media_file(self, media_id: str, token: str) -> Attachment | None:
        """The attachment whose file ``media_id`` names, when ``token`` was issued for it."""
        with self.lock:
            issued_for = self.media_tokens.get(token)
            if issued_for is None or not secrets.compare_digest(issued_for, media_id):
                return None
            return next((a for a in self.attachments.values() if a.media_id == media_id), None)

    def link(self, payload: Any, version: int) -> None:
        if not isinstance(payload, dict):
            raise ApiError(400, "Can not deserialize the request body.")
        type_id = validate.link_type_id(payload)
        with self.lock:
            inward = self.find_issue(
                str(payload["inwardIssue"].get("key") or payload["inwardIssue"].get("id"))
            )
            outward = self.find_issue(
                str(payload["outwardIssue"].get("key") or payload["outwardIssue"].get("id"))
            )
            if payload.get("comment"):
                self.add_comment(outward, payload["comment"], version, self.bot)
            link = Link(self.next_id("link"), LINK_TYPES[type_id][0], inward.id, outward.id)
            self.links[link.id] = link
            now = self.clock.now_ms()
            for issue in (inward, outward):
                issue.link_ids.append(link.id)
                issue.updated_ms = now
