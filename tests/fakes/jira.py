"""FakeJira: stands in for `JiraAdapter` (`bot.ports.JiraPort`), and lets a test act in Jira as a person would."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.jira_api.adapter import IssueRef
from bot.jira_api.errors import IssueNotFound, JiraRejected
from bot.rules.comment_property import PROPERTY_KEY
from sandbox.jira.jql import JqlError, parse
from sandbox.jira.jqleval import Context, compile_query
from tests.fakes.jira_files import FakeJiraFiles, show_stored_bodies
from tests.fakes.jira_views import issue_view, render_comment, search_view
from tests.fakes.script import Scripted

BOT_ACCOUNT_ID = "bot"
JSM_PROPERTY = "sd.public.comment"


@dataclass
class FakeJira(FakeJiraFiles, Scripted):
    """Stands in for `JiraAdapter`. `script` holds exceptions to raise, keyed by operation.

    `lose_response` makes the next write succeed in Jira and then raise, like a timeout that
    hit after Jira committed: the retry must find what was written instead of writing again.

    Reads give what Jira Cloud gives: `list_comments` comments with an ADF body, author,
    `created`, `jsdPublic` and `properties` as `[{"key", "value"}]`; `search_issues` issues
    with the requested fields (comments inlined *without* properties, as search does, cut to
    `inline_comment_limit` with the real `total`) and the requested entity properties.
    Every search is remembered in `searches` (jql, fields, properties, reconcile_ids).
    Issues in `unindexed` are missing from search (index lag) unless their id is reconciled.
    """

    cloud: bool = True
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lose_response: dict[str, Exception] = field(default_factory=dict)
    clock: Callable[[], float] | None = None
    searches: list[dict[str, Any]] = field(default_factory=list)
    unindexed: set[str] = field(default_factory=set)
    inline_comment_limit: int = 5000
    links: list[dict[str, str]] = field(default_factory=list)
    """Issue links made through `link_issues`: {"type", "inward", "outward"}."""
    attachments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Files attached through `add_attachment` or by agents (`add_agent_comment_with_files`,
    `add_agent_attachment`), per issue key: id, filename, data, mimeType, size, media_id."""
    workflow: list[tuple[str, str, str, str, set[str]]] = field(
        default_factory=lambda: [
            # (id, name, target status, its category, categories it starts from): the sandbox's
            ("11", "Start Progress", "In Progress", "indeterminate", {"new"}),
            ("21", "Done", "Done", "done", {"new", "indeterminate"}),
            ("31", "Reopen", "To Do", "new", {"indeterminate", "done"}),
        ]
    )
    service_desk_projects: set[str] = field(default_factory=set)
    """Projects that are JSM service desks: only their issues take CSAT feedback."""
    feedback: dict[str, int] = field(default_factory=dict)
    """CSAT ratings given through `send_csat_feedback`, per issue key (a new one replaces the old)."""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(10000))
    _numbers: dict[str, Iterator[int]] = field(default_factory=dict)

    def _after_write(self, operation: str) -> None:
        error = self.lose_response.pop(operation, None)
        if error is not None:
            raise error

    def _now(self) -> float:
        return self.clock() if self.clock else 0.0

    def _touch(self, issue_key: str, at: float) -> None:
        issue = self.issues.get(issue_key)
        if issue is not None:
            issue["updated"] = max(issue.get("updated", 0.0), at)

    # -- the adapter's operations --------------------------------------------------------------

    def myself(self) -> dict[str, Any]:
        self._enter("myself")
        return {"accountId": BOT_ACCOUNT_ID, "timeZone": "UTC"}

    def create_issue(
        self,
        *,
        project_key: str,
        issue_type: str,
        summary: str,
        description: str,
        labels: list[str],
        properties: dict[str, Any],
        extra_fields: dict[str, Any] | None = None,
    ) -> IssueRef:
        self._enter("create_issue")
        with self._lock:
            number = next(self._numbers.setdefault(project_key, itertools.count(1)))
            key, issue_id = f"{project_key}-{number}", str(next(self._ids))
            now = self._now()
            self.issues[key] = {
                "key": key,
                "id": issue_id,
                "project": project_key,
                "issue_type": issue_type,
                "summary": summary,
                "description": description,
                "labels": list(labels),
                "properties": copy.deepcopy(properties),
                "created": now,
                "updated": now,
                "extra_fields": dict(extra_fields or {}),
            }
            self.comments[key] = []
        self._after_write("create_issue")
        return IssueRef(key=key, id=issue_id)

    def find_issue_with_property(
        self, *, project_key: str, created_since_epoch: float, match: dict[str, Any]
    ) -> IssueRef | None:
        self._enter("find_issue_with_property")
        for issue in self.issues.values():
            if issue["project"] != project_key or issue["created"] < created_since_epoch:
                continue
            value = issue["properties"].get(PROPERTY_KEY) or {}
            if all(value.get(k) == v for k, v in match.items()):
                return IssueRef(key=issue["key"], id=issue["id"])
        return None

    def add_comment(self, issue_key: str, text: str, *, prop: dict[str, Any], internal: bool = False) -> str:
        self._enter("add_comment")
        with self._lock:
            if issue_key not in self.issues:
                raise IssueNotFound(f"Jira 404: issue {issue_key} does not exist", status=404)
            comment_id = self._store_comment(
                issue_key,
                text,
                prop=copy.deepcopy(prop),
                author=(BOT_ACCOUNT_ID, "wajira"),
                extra_props={JSM_PROPERTY: {"internal": True}} if internal else {},
                jsd_public=not internal,
            )
        self._after_write("add_comment")
        return comment_id

    def find_comment_with_property(self, issue_key: str, match: dict[str, Any]) -> str | None:
        self._enter("find_comment_with_property")
        for comment in reversed(self.comments.get(issue_key, [])):
            if comment["prop"] is not None and all(comment["prop"].get(k) == v for k, v in match.items()):
                return comment["id"]
        return None

    def search_issues(
        self,
        jql: str,
        *,
        fields: list[str],
        properties: list[str] | None = None,
        reconcile_ids: list[int] | None = None,
        max_results: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        # Checked at the call, not on first iteration: the real adapter's first request is
        # made lazily too, but a failure is a failure either way.
        if max_results is not None and max_results < 1:
            raise ValueError(f"max_results must be at least 1, not {max_results}")
        self._enter("search_issues")
        self.searches.append(
            {
                "jql": jql,
                "fields": list(fields),
                "properties": list(properties or []),
                "reconcile_ids": list(reconcile_ids or []),
                "max_results": max_results,
            }
        )
        context = Context("UTC", int(self._now() * 1000), BOT_ACCOUNT_ID, self._names_an_issue)
        try:
            predicate, order = compile_query(parse(jql), context)
        except JqlError as exc:
            raise JiraRejected(f"Jira 400: {exc}", status=400) from None
        reconciled = {str(i) for i in reconcile_ids or ()}
        views = [
            search_view(
                issue, self.comments.get(issue["key"], []), reporter=issue.get("reporter", BOT_ACCOUNT_ID)
            )
            for issue in self.issues.values()
            if issue["key"] not in self.unindexed or issue["id"] in reconciled
        ]
        found = [self.issues[v.key] for v in order([v for v in views if predicate(v)])]
        if max_results is not None:
            found = found[:max_results]
        return iter([self._issue_view(issue, fields, properties or []) for issue in found])

    def add_labels(self, issue_key: str, labels: Sequence[str]) -> None:
        bad = [label for label in labels if not label or any(c.isspace() for c in label)]
        if bad:
            raise ValueError(f"Jira labels cannot be empty or contain spaces: {bad!r}")
        self._enter("add_labels")
        with self._lock:
            issue = self._existing(issue_key)
            for label in labels:
                if label not in issue["labels"]:
                    issue["labels"].append(label)
            self._touch(issue_key, self._now())
        self._after_write("add_labels")

    def list_comments(self, issue_key: str) -> list[dict[str, Any]]:
        self._enter("list_comments")
        if issue_key not in self.issues:
            raise IssueNotFound(f"Jira 404: issue {issue_key} does not exist", status=404)
        stored = self.comments.get(issue_key, [])
        rendered = [render_comment(c, cloud=self.cloud, with_properties=True) for c in stored]
        show_stored_bodies(rendered, stored)
        return rendered

    def comments_by_ids(self, comment_ids: Sequence[str]) -> list[dict[str, Any]] | None:
        if not self.cloud:
            return None  # as the adapter: Server/Data Center reads each issue's list
        if not any(str(i).isdigit() for i in comment_ids):
            return []  # as the adapter: no id worth asking for, no request
        self._enter("comments_by_ids")
        wanted = {str(i) for i in comment_ids}
        stored = [c for cs in self.comments.values() for c in cs if str(c["id"]) in wanted]
        rendered = [render_comment(c, cloud=self.cloud, with_properties=True) for c in stored]
        show_stored_bodies(rendered, stored)
        return rendered

    def get_issue(
        self, issue_key: str, *, fields: list[str], properties: Sequence[str] = ()
    ) -> dict[str, Any]:
        self._enter("get_issue")
        issue = self.issues.get(issue_key)
        if issue is None:
            raise IssueNotFound(f"Jira 404: issue {issue_key} does not exist", status=404)
        return self._issue_view(issue, fields, list(properties))

    def transitions(self, issue_key: str) -> list[dict[str, Any]]:
        self._enter("transitions")
        issue = self._existing(issue_key)
        category = issue.get("status_category", "new")
        return [
            {
                "id": tid,
                "name": name,
                "isAvailable": True,
                "to": {"name": target, "statusCategory": {"key": target_category}},
            }
            for tid, name, target, target_category, origins in self.workflow
            if category in origins
        ]

    def transition(self, issue_key: str, transition_id: str) -> None:
        self._enter("transition")
        issue = self._existing(issue_key)
        category = issue.get("status_category", "new")
        match = next((t for t in self.workflow if t[0] == str(transition_id) and category in t[4]), None)
        if match is None:
            raise JiraRejected(
                f"Jira 400: Transition id '{transition_id}' is not valid for this issue.", status=400
            )
        self.set_status(issue_key, match[2], match[3])
        self._after_write("transition")

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = "Relates") -> None:
        self._enter("link_issues")
        for key in (inward_key, outward_key):
            if key not in self.issues:
                raise JiraRejected(f"Jira 404: Issue Does Not Exist: {key}", status=404)
        link = {"type": link_type, "inward": inward_key, "outward": outward_key}
        with self._lock:
            if link not in self.links:  # Jira keeps one link per pair and type
                self.links.append(link)
            for key in (inward_key, outward_key):
                self._touch(key, self._now())
        self._after_write("link_issues")

    def add_attachment(self, issue_key: str, filename: str, data: bytes, mime_type: str) -> str:
        self._enter("add_attachment")
        if issue_key not in self.issues:
            raise IssueNotFound(f"Jira 404: issue {issue_key} does not exist", status=404)
        attachment_id = self._store_attachment(issue_key, filename, data, mime_type)
        self._after_write("add_attachment")
        return attachment_id

    def list_attachments(self, issue_key: str) -> list[dict[str, Any]]:
        self._enter("list_attachments")
        if issue_key not in self.issues:
            raise IssueNotFound(f"Jira 404: issue {issue_key} does not exist", status=404)
        # Jira lists neither the bytes nor the Media Services id.
        hidden = {"data", "media_id"}
        return [{k: v for k, v in a.items() if k not in hidden} for a in self.attachments.get(issue_key, [])]

    def send_csat_feedback(self, issue_key: str, rating: int) -> bool:
        self._enter("send_csat_feedback")
        issue = self.issues.get(issue_key)
        if issue is None or issue["project"] not in self.service_desk_projects:
            return False  # Jira's 404: not a customer request
        if isinstance(rating, bool) or not 1 <= rating <= 5:
            raise JiraRejected("Jira 400: The rating must be an integer value between 1 and 5.", status=400)
        with self._lock:
            self.feedback[issue_key] = rating
        self._after_write("send_csat_feedback")
        return True

    # -- what a test does in Jira, as a person would -------------------------------------------

    def set_status(self, issue_key: str, name: str, category: str) -> None:
        """Move an issue to any status (category "new", "indeterminate" or "done")."""
        with self._lock:
            issue = self._existing(issue_key)
            issue["status_name"], issue["status_category"] = name, category
            self._touch(issue_key, self._now())

    def open_ticket(
        self,
        *,
        project_key: str = "WA",
        labels: Iterable[str] = ("whatsapp",),
        wajira: dict[str, Any] | None = None,
        summary: str = "WhatsApp: Ana",
    ) -> str:
        """A ticket made outside the adapter; `wajira` is its issue property (None: not ours)."""
        with self._lock:
            number = next(self._numbers.setdefault(project_key, itertools.count(1)))
            key, issue_id = f"{project_key}-{number}", str(next(self._ids))
            now = self._now()
            self.issues[key] = {
                "key": key,
                "id": issue_id,
                "project": project_key,
                "issue_type": "Task",
                "summary": summary,
                "description": "",
                "labels": list(labels),
                "properties": {} if wajira is None else {PROPERTY_KEY: copy.deepcopy(wajira)},
                "created": now,
                "updated": now,
            }
            self.comments[key] = []
        return key

    def human_comment(
        self,
        issue_key: str,
        text: str,
        *,
        author: str = "Bruno Díaz",
        account_id: str = "agent-1",
        jsm_internal: bool | None = None,
        jsd_public: bool = True,
        visibility: dict[str, Any] | None = None,
        wajira: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> str:
        """A comment an agent types in Jira (public unless one of the internal markers is given)."""
        extra = {} if jsm_internal is None else {JSM_PROPERTY: {"internal": jsm_internal}}
        with self._lock:
            return self._store_comment(
                issue_key,
                text,
                prop=copy.deepcopy(wajira),
                author=(account_id, author),
                extra_props=extra,
                jsd_public=jsd_public,
                visibility=visibility,
                at=at,
            )

    def bot_comment(
        self,
        issue_key: str,
        text: str,
        *,
        prop: dict[str, Any] | None,
        internal: bool = False,
        at: float | None = None,
    ) -> str:
        """A comment the bot's account wrote earlier (a previous run, a crashed worker)."""
        with self._lock:
            return self._store_comment(
                issue_key,
                text,
                prop=copy.deepcopy(prop),
                author=(BOT_ACCOUNT_ID, "wajira"),
                extra_props={JSM_PROPERTY: {"internal": True}} if internal else {},
                jsd_public=not internal,
                at=at,
            )

    def texts(self, issue_key: str) -> list[str]:
        return [c["text"] for c in self.comments.get(issue_key, [])]

    def notes(self, issue_key: str) -> list[dict[str, Any]]:
        """The internal notes the bot wrote on the issue."""
        return [
            c
            for c in self.comments.get(issue_key, [])
            if c["prop"] is not None and c["prop"].get("kind") == "note"
        ]

    def delete_issue(self, key: str) -> None:
        self.issues.pop(key, None)
        self.comments.pop(key, None)

    # -- helpers -------------------------------------------------------------------------------

    def _names_an_issue(self, ref: str) -> bool:
        """JQL's `key`/`issue` clauses refuse a key or id that names no issue, as Jira does."""
        return ref.upper() in self.issues or any(i["id"] == ref for i in self.issues.values())

    def _existing(self, issue_key: str) -> dict[str, Any]:
        issue = self.issues.get(issue_key)
        if issue is None:
            raise IssueNotFound(f"Jira 404: issue {issue_key} does not exist", status=404)
        return issue

    def _store_comment(
        self,
        issue_key: str,
        text: str,
        *,
        prop: dict[str, Any] | None,
        author: tuple[str, str],
        extra_props: dict[str, Any],
        jsd_public: bool,
        visibility: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> str:
        comment_id = str(next(self._ids))
        created = self._now() if at is None else at
        self.comments[issue_key].append(
            {
                "id": comment_id,
                "text": text,
                "prop": prop,
                "author": author,
                "created": created,
                "extra_props": dict(extra_props),
                "jsd_public": jsd_public,
                "visibility": visibility,
            }
        )
        self._touch(issue_key, created)
        return comment_id

    def _issue_view(self, issue: dict[str, Any], fields: list[str], properties: list[str]) -> dict[str, Any]:
        comments = self.comments.get(issue["key"], [])
        view = issue_view(
            issue, comments, fields, properties, cloud=self.cloud, inline_limit=self.inline_comment_limit
        )
        show_stored_bodies(view["fields"].get("comment", {}).get("comments", []), comments)
        return view
