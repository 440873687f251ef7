"""Several Jira accounts behind one `JiraPort`: each call goes to the account of its project.

A service with a `[services.jira]` table has its tickets created, commented, searched and
polled with that account (possibly on another site); the others use `[jira]`. Issue keys
(`PROJ-123`) name their project, and config allows one account per project, so an issue-scoped
call is routed by its key and `create_issue` by its `project_key`. Calls that name no project
(`myself`, `search_issues`, attachments by id) raise `NotRoutable`: their callers pick the
account first (`jira_for_issue`, `jira_for_project`, `poll_accounts`).

Comment ids are unique within one Jira site only, so what the bot stores about a comment of
an account other than `[jira]`'s carries the account's tag (`handled_ref`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.config import ServiceSettings, Settings
from bot.config.service_accounts import account_identity
from bot.ports import JiraPort

if TYPE_CHECKING:
    from bot.config.model import ServiceJiraSettings
    from bot.jira_api.adapter import IssueRef

DEFAULT_ACCOUNT = "jira"
"""The `[jira]` account's name: its poll state keeps the key it always had."""


class NotRoutable(LookupError):
    """A call that names no project went to the directory: its caller must pick the account."""


@dataclass(frozen=True)
class JiraAccount:
    """One Jira account (site + user) and the services whose tickets it handles."""

    name: str
    """"jira" for `[jira]`, else "jira:" + its service ids: the poll state's key."""
    jira: JiraPort
    services: tuple[ServiceSettings, ...]
    where: str = ""
    """The site and user, for `wajira check` and logs (never a secret)."""

    @property
    def project_keys(self) -> list[str]:
        return sorted({s.project_key for s in self.services})

    @property
    def labels(self) -> list[str]:
        return sorted({label for s in self.services for label in s.labels})

    @property
    def tag(self) -> str:
        """ "" for `[jira]`; else a short stable prefix for the ids this site numbers."""
        if self.name == DEFAULT_ACCOUNT:
            return ""
        return hashlib.sha256(self.name.encode()).hexdigest()[:8]

    def ref(self, comment_id: str) -> str:
        """How storage names this account's comment (`[jira]`'s: its bare id, as always)."""
        return f"{self.tag}:{comment_id}" if self.tag else comment_id


@dataclass(frozen=True)
class AccountPlan:
    """Which services share which Jira settings (None: `[jira]`'s), before any client exists."""

    name: str
    settings: ServiceJiraSettings | None
    services: tuple[ServiceSettings, ...]


def plan_accounts(settings: Settings) -> list[AccountPlan]:
    """The distinct Jira accounts, `[jira]`'s first (even when no service uses it: it is the
    fallback for projects no service names). Services with identical tables share one."""
    groups: dict[Any, list[ServiceSettings]] = {None: []}
    tables: dict[Any, ServiceJiraSettings | None] = {None: None}
    for service in settings.services:
        identity = account_identity(service.jira)
        groups.setdefault(identity, []).append(service)
        tables.setdefault(identity, service.jira)
    plans = []
    for identity, services in groups.items():
        name = DEFAULT_ACCOUNT if identity is None else "jira:" + "+".join(sorted(s.id for s in services))
        plans.append(AccountPlan(name, tables[identity], tuple(services)))
    return plans


def has_own_accounts(settings: Settings) -> bool:
    return any(s.jira is not None for s in settings.services)


def build_directory(
    settings: Settings, connect: Callable[[ServiceJiraSettings | None], tuple[JiraPort, str]]
) -> JiraDirectory:
    """One client per distinct account; `connect(None)` builds `[jira]`'s."""
    accounts = []
    for plan in plan_accounts(settings):
        client, where = connect(plan.settings)
        accounts.append(JiraAccount(plan.name, client, plan.services, where))
    return JiraDirectory(accounts)


def project_of(issue_key: str) -> str:
    project, dash, number = issue_key.rpartition("-")
    if not dash or not project or not number.isdigit():
        raise NotRoutable(f"{issue_key!r} is not an issue key (PROJECT-123)")
    return project


class JiraDirectory:
    """A `JiraPort` over several accounts; the first is `[jira]`'s, which also takes projects
    no service names (a ticket of a removed service)."""

    def __init__(self, accounts: Sequence[JiraAccount]) -> None:
        if not accounts or accounts[0].name != DEFAULT_ACCOUNT:
            raise ValueError("the [jira] account comes first")
        self.accounts = tuple(accounts)
        self._by_project = {p: a for a in self.accounts for p in a.project_keys}

    def account_for_project(self, project_key: str) -> JiraAccount:
        return self._by_project.get(project_key, self.accounts[0])

    def account_for_issue(self, issue_key: str) -> JiraAccount:
        return self.account_for_project(project_of(issue_key))

    def polled(self) -> list[JiraAccount]:
        """The accounts some service uses: one poll search each."""
        return [a for a in self.accounts if a.services]

    # -- JiraPort: issue-scoped calls go to the issue's account ------------------------------

    def _issue(self, issue_key: str) -> JiraPort:
        return self.account_for_issue(issue_key).jira

    def myself(self) -> dict[str, Any]:
        raise NotRoutable("myself: which account? ask jira_for_issue(...) or poll_accounts(...)")

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
        return self.account_for_project(project_key).jira.create_issue(
            project_key=project_key,
            issue_type=issue_type,
            summary=summary,
            description=description,
            labels=labels,
            properties=properties,
            extra_fields=extra_fields,
        )

    def find_issue_with_property(
        self, *, project_key: str, created_since_epoch: float, match: dict[str, Any]
    ) -> IssueRef | None:
        return self.account_for_project(project_key).jira.find_issue_with_property(
            project_key=project_key, created_since_epoch=created_since_epoch, match=match
        )

    def add_comment(self, issue_key: str, text: str, *, prop: dict[str, Any], internal: bool = False) -> str:
        return self._issue(issue_key).add_comment(issue_key, text, prop=prop, internal=internal)

    def find_comment_with_property(self, issue_key: str, match: dict[str, Any]) -> str | None:
        return self._issue(issue_key).find_comment_with_property(issue_key, match)

    def list_comments(self, issue_key: str) -> list[dict[str, Any]]:
        return self._issue(issue_key).list_comments(issue_key)

    def comments_by_ids(self, comment_ids: Sequence[str]) -> list[dict[str, Any]] | None:
        # Comment ids name no project: the poller asks each account's own client.
        raise NotRoutable("comments_by_ids: ask the account's own client (poll_accounts)")

    def get_issue(
        self, issue_key: str, *, fields: list[str], properties: list[str] | tuple[str, ...] = ()
    ) -> dict[str, Any]:
        return self._issue(issue_key).get_issue(issue_key, fields=fields, properties=list(properties))

    def search_issues(
        self,
        jql: str,
        *,
        fields: list[str],
        properties: list[str] | None = None,
        reconcile_ids: list[int] | None = None,
        max_results: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        raise NotRoutable("search_issues: JQL names no account; ask jira_for_project(...) first")

    def add_labels(self, issue_key: str, labels: Sequence[str]) -> None:
        self._issue(issue_key).add_labels(issue_key, labels)

    def add_attachment(self, issue_key: str, filename: str, data: bytes, mime_type: str) -> str:
        return self._issue(issue_key).add_attachment(issue_key, filename, data, mime_type)

    def list_attachments(self, issue_key: str) -> list[dict[str, Any]]:
        return self._issue(issue_key).list_attachments(issue_key)

    def attachment_media_id(self, attachment_id: str) -> str | None:
        raise NotRoutable("attachment ids name no account; ask jira_for_issue(...) first")

    def attachment_content(self, attachment_id: str, *, max_bytes: int) -> bytes:
        raise NotRoutable("attachment ids name no account; ask jira_for_issue(...) first")

    def transitions(self, issue_key: str) -> list[dict[str, Any]]:
        return self._issue(issue_key).transitions(issue_key)

    def transition(self, issue_key: str, transition_id: str) -> None:
        self._issue(issue_key).transition(issue_key, transition_id)

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = "Relates") -> None:
        # Both keys are one service's tickets (a replaced ticket and its successor): one account.
        self._issue(inward_key).link_issues(inward_key, outward_key, link_type)

    def send_csat_feedback(self, issue_key: str, rating: int) -> bool:
        return self._issue(issue_key).send_csat_feedback(issue_key, rating)


# -- for jobs holding a JiraPort that may be a directory ---------------------------------------


def jira_for_issue(jira: JiraPort, issue_key: str) -> JiraPort:
    """The account that handles this issue (the port itself when it is one account)."""
    return jira.account_for_issue(issue_key).jira if isinstance(jira, JiraDirectory) else jira


def jira_for_project(jira: JiraPort, project_key: str) -> JiraPort:
    return jira.account_for_project(project_key).jira if isinstance(jira, JiraDirectory) else jira


def handled_ref(jira: JiraPort, issue_key: str, comment_id: str) -> str:
    """How storage names a comment of this issue: its id, tagged for accounts other than `[jira]`."""
    return (
        jira.account_for_issue(issue_key).ref(comment_id) if isinstance(jira, JiraDirectory) else comment_id
    )


def poll_accounts(jira: JiraPort, settings: Settings) -> list[JiraAccount]:
    """The accounts one poll pass searches: each with the services it handles."""
    if isinstance(jira, JiraDirectory):
        return jira.polled()
    return [JiraAccount(DEFAULT_ACCOUNT, jira, settings.services)]
