"""Fakes that remember what was done to them, for tests that need no network."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from bot.jira_api.adapter import IssueRef
from bot.jira_api.errors import IssueNotFound


@dataclass
class FakeJira:
    """Stands in for `JiraAdapter`. `script` holds exceptions to raise, keyed by operation.

    `lose_response` makes the next write succeed in Jira and then raise, like a timeout that
    hit after Jira committed: the retry must find what was written instead of writing again.
    """

    cloud: bool = True
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    script: dict[str, list[Exception]] = field(default_factory=dict)
    lose_response: dict[str, Exception] = field(default_factory=dict)
    clock: Any = None
    _ids: Any = field(default_factory=lambda: itertools.count(10000))
    _numbers: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, operation: str, *errors: Exception) -> None:
        self.script.setdefault(operation, []).extend(errors)

    def _enter(self, operation: str) -> None:
        with self._lock:
            self.calls.append(operation)
            queued = self.script.get(operation)
            if queued:
                raise queued.pop(0)

    def _after_write(self, operation: str) -> None:
        error = self.lose_response.pop(operation, None)
        if error is not None:
            raise error

    def myself(self) -> dict[str, Any]:
        self._enter("myself")
        return {"accountId": "bot", "timeZone": "UTC"}

    def create_issue(self, *, project_key, issue_type, summary, description, labels, properties) -> IssueRef:
        self._enter("create_issue")
        with self._lock:
            number = next(self._numbers.setdefault(project_key, itertools.count(1)))
            key, issue_id = f"{project_key}-{number}", str(next(self._ids))
            self.issues[key] = {
                "key": key, "id": issue_id, "project": project_key, "issue_type": issue_type,
                "summary": summary, "description": description, "labels": list(labels),
                "properties": properties, "created": self.clock() if self.clock else 0.0,
            }
            self.comments[key] = []
        self._after_write("create_issue")
        return IssueRef(key=key, id=issue_id)

    def find_issue_with_property(self, *, project_key, created_since_epoch, match) -> IssueRef | None:
        self._enter("find_issue_with_property")
        for issue in self.issues.values():
            value = issue["properties"].get("wajira", {})
            if issue["project"] == project_key and all(value.get(k) == v for k, v in match.items()):
                return IssueRef(key=issue["key"], id=issue["id"])
        return None

    def add_comment(self, issue_key: str, text: str, *, prop: dict[str, Any]) -> str:
        self._enter("add_comment")
        with self._lock:
            if issue_key not in self.issues:
                raise IssueNotFound(f"Jira 404: issue {issue_key} does not exist", status=404)
            comment_id = str(next(self._ids))
            self.comments[issue_key].append({"id": comment_id, "text": text, "prop": dict(prop)})
        self._after_write("add_comment")
        return comment_id

    def find_comment_with_property(self, issue_key: str, match: dict[str, Any]) -> str | None:
        self._enter("find_comment_with_property")
        for comment in reversed(self.comments.get(issue_key, [])):
            if all(comment["prop"].get(k) == v for k, v in match.items()):
                return comment["id"]
        return None

    def delete_issue(self, key: str) -> None:
        self.issues.pop(key, None)
        self.comments.pop(key, None)

    def texts(self, issue_key: str) -> list[str]:
        return [c["text"] for c in self.comments.get(issue_key, [])]
