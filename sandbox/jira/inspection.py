"""Test-side access to the Jira sandbox from Python: inspect its state (as deep copies) and steer it.

The same steering over HTTP, for a test that drives the daemon as a subprocess, is control.py.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from sandbox.faults import FaultPlan

from . import adf
from .model import CATEGORIES, ApiError, Comment, Issue
from .render import format_time
from .store import JiraStore

if TYPE_CHECKING:
    from .sandbox import Settings


class SandboxHelpers:
    """State accessors mixed into ``JiraSandbox`` (all return deep copies)."""

    # What the mixin reads; JiraSandbox sets them.
    store: JiraStore
    settings: Settings
    faults: FaultPlan

    def reset_calls(self) -> None:
        raise NotImplementedError

    def add_project(
        self, key: str, name: str | None = None, issue_types: tuple[str, ...] = ("Task", "Bug")
    ) -> dict[str, Any]:
        """Pre-seed a project (kept across ``reset``) with the given issue types."""
        project = self.store.add_project(key, name, tuple(issue_types))
        return {
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "issue_types": list(project.issue_types),
        }

    def issues(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return [self._issue_dict(i) for i in self.store.issues.values()]

    def issue(self, key: str) -> dict[str, Any]:
        with self.store.lock:
            return self._issue_dict(self._find(key))

    def comments(self, key: str) -> list[dict[str, Any]]:
        with self.store.lock:
            return [self._comment_dict(c) for c in self.store.issue_comments(self._find(key))]

    def attachments(self, key: str) -> list[dict[str, Any]]:
        with self.store.lock:
            issue = self._find(key)
            return [
                {
                    "id": a.id,
                    "filename": a.filename,
                    "bytes": a.data,
                    "mimeType": a.mime_type,
                    "size": len(a.data),
                }
                for a in (self.store.attachments[x] for x in issue.attachment_ids)
            ]

    def add_agent_comment(
        self,
        key: str,
        text: str,
        *,
        internal: bool = False,
        visibility: dict[str, Any] | None = None,
        author: str = "Agent Smith",
    ) -> str:
        """Add a comment as a human agent would in Jira's UI; return its id.

        ``internal`` marks it as a JSM internal note (property ``sd.public.comment``).
        """
        payload: dict[str, Any] = {"body": adf.from_text(text) if self.settings.cloud else text}
        if internal:
            payload["properties"] = [{"key": "sd.public.comment", "value": {"internal": True}}]
        if visibility is not None:
            payload["visibility"] = visibility
        with self.store.lock:
            issue = self._find(key)
            version = 3 if self.settings.cloud else 2
            return self.store.add_comment(issue, payload, version, self.store.user(author)).id

    def set_status(self, key: str, name: str, category_key: str) -> None:
        """Move an issue to any status (category "new", "indeterminate" or "done")."""
        if category_key not in CATEGORIES:
            raise ValueError(f"unknown status category {category_key!r}")
        with self.store.lock:
            self.store.set_status(self._find(key), name, category_key)

    def advance_clock(self, seconds: float) -> None:
        """Shift the sandbox's clock (times of later writes and JQL's now) forward."""
        with self.store.lock:
            self.store.clock.advance(seconds)

    def reset(self) -> None:
        """Back to an empty Jira (seeded projects stay), no calls counted, no faults."""
        self.store.reset()
        self.reset_calls()
        self.faults.clear()

    def _find(self, key: str) -> Issue:
        try:
            return self.store.find_issue(key)
        except ApiError:
            raise KeyError(key) from None

    def _issue_dict(self, issue: Issue) -> dict[str, Any]:
        tz = self.settings.time_zone
        return copy.deepcopy(
            {
                "key": issue.key,
                "id": issue.id,
                "project": issue.project_key,
                "summary": issue.summary,
                "description": issue.description,
                "labels": issue.labels,
                "issuetype": issue.issuetype,
                "status": issue.status,
                "statusCategory": self.store.status(issue.status)[1],
                "created": format_time(issue.created_ms, tz),
                "updated": format_time(issue.updated_ms, tz),
                "created_ms": issue.created_ms,
                "updated_ms": issue.updated_ms,
                "reporter": issue.reporter.account_id,
                "properties": issue.properties,
                "custom": issue.custom,
                "attachments": [
                    {"id": a.id, "filename": a.filename, "size": len(a.data), "mimeType": a.mime_type}
                    for a in (self.store.attachments[x] for x in issue.attachment_ids)
                ],
                "links": [
                    {
                        "type": self.store.links[x].type_name,
                        "inward": self.store.issues[self.store.links[x].inward_id].key,
                        "outward": self.store.issues[self.store.links[x].outward_id].key,
                    }
                    for x in issue.link_ids
                ],
            }
        )

    def _comment_dict(self, comment: Comment) -> dict[str, Any]:
        tz = self.settings.time_zone
        return copy.deepcopy(
            {
                "id": comment.id,
                "body": comment.body,
                "author": {
                    "accountId": comment.author.account_id,
                    "displayName": comment.author.display_name,
                },
                "created": format_time(comment.created_ms, tz),
                "updated": format_time(comment.updated_ms, tz),
                "properties": comment.properties,
                "visibility": comment.visibility,
                "jsdPublic": comment.jsd_public,
            }
        )
