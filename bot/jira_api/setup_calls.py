"""Jira calls beyond the message path: workflow and links (the ticket lifecycle) and what
`wajira check` asks. Mixed into `JiraAdapter`, whose `_request` / `_call` they use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote


class WorkflowAndSetupCalls:
    if TYPE_CHECKING:
        # Provided by `JiraAdapter`; declared for mypy only, so the mixin has no stub at run time
        # that could answer in its place.
        def _request(
            self,
            operation: str,
            method: str,
            path: str,
            *,
            params: dict[str, Any] | None = None,
            body: Any = None,
        ) -> Any: ...

    # -- workflow and links (the ticket lifecycle) ------------------------------------------

    def transitions(self, issue_key: str) -> list[dict[str, Any]]:
        """`GET /issue/{key}/transitions`: the transitions the issue can take from its status now.

        Returns:
            Jira's transition objects: `id`, `name`, `to` (the target status, with
            `statusCategory`), `isAvailable`, ….

        Raises:
            IssueNotFound: the issue is gone or not visible.
        """
        answer = self._request("transitions", "GET", f"issue/{quote(issue_key, safe='')}/transitions")
        return list((answer or {}).get("transitions") or [])

    def transition(self, issue_key: str, transition_id: str) -> None:
        """`POST /issue/{key}/transitions`: move the issue along one of its transitions.

        Raises:
            IssueNotFound: the issue is gone.
            JiraRejected: the transition is not valid from the issue's status (400), or a
                screen/validator wants fields we do not send.
            JiraUnavailable: outcome unknown; look at the issue's status before retrying.
        """
        self._request(
            "transition",
            "POST",
            f"issue/{quote(issue_key, safe='')}/transitions",
            body={"transition": {"id": str(transition_id)}},
        )

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = "Relates") -> None:
        """`POST /issueLink`: link two issues with the link type named `link_type`.

        Jira keeps one link per (type, inward, outward): asking again after an uncertain
        answer does not make a second one.

        Raises:
            JiraRejected: an issue or the link type does not exist, or linking is disabled.
            JiraUnavailable: outcome unknown.
        """
        self._request(
            "link_issues",
            "POST",
            "issueLink",
            body={
                "type": {"name": link_type},
                "inwardIssue": {"key": inward_key},
                "outwardIssue": {"key": outward_key},
            },
        )

    # -- what `wajira check` asks ----------------------------------------------------------

    def get_project(self, project_key: str) -> dict[str, Any]:
        """`GET /project/{key}`: the project's id, key and name.

        Raises:
            JiraRejected: 404, no such project or this account may not browse it.
        """
        return self._request("get_project", "GET", f"project/{quote(project_key, safe='')}")

    def creatable_issue_types(self, project_key: str) -> list[dict[str, Any]]:
        """Issue types this account may create in the project, every page of
        `GET /issue/createmeta/{project}/issuetypes` (the old `/issue/createmeta` is deprecated).

        Raises:
            JiraRejected: 404, no such project or not visible to this account.
        """
        path = f"issue/createmeta/{quote(project_key, safe='')}/issuetypes"
        found: list[dict[str, Any]] = []
        while True:
            page = self._request(
                "creatable_issue_types", "GET", path, params={"startAt": len(found), "maxResults": 50}
            )
            # Cloud names the list `issueTypes`; Server/Data Center pages it as `values`.
            types = page.get("issueTypes", page.get("values")) or []
            found += types
            if not types or page.get("isLast") or len(found) >= int(page.get("total", len(found))):
                return found

    def my_permissions(self, project_key: str, keys: list[str]) -> dict[str, bool]:
        """`GET /mypermissions` in a project: permission key → whether this account has it.

        A key Jira leaves out of its answer counts as not held.

        Raises:
            JiraRejected: 404 for an unknown project, 400 for an unknown permission key.
        """
        answer = self._request(
            "my_permissions",
            "GET",
            "mypermissions",
            params={"projectKey": project_key, "permissions": ",".join(keys)},
        )
        held = (answer or {}).get("permissions") or {}
        return {key: bool((held.get(key) or {}).get("havePermission")) for key in keys}
