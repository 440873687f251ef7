"""The sandbox's in-memory records and the error it raises as a Jira error response."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox.web import HttpError, Response

# Jira's fixed status categories: key -> (id, name, colour).
CATEGORIES = {
    "undefined": (1, "No Category", "medium-gray"),
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}
# The sandbox workflow: (transition id, name, target status, available from these categories).
TRANSITIONS = (
    ("11", "Start Progress", "In Progress", {"new"}),
    ("21", "Done", "Done", {"new", "indeterminate"}),
    ("31", "Reopen", "To Do", {"indeterminate", "done"}),
)
PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9]+$")
LINK_TYPES = {  # id -> (name, inward, outward), Jira's defaults
    "10000": ("Blocks", "is blocked by", "blocks"),
    "10001": ("Cloners", "is cloned by", "clones"),
    "10002": ("Duplicate", "is duplicated by", "duplicates"),
    "10003": ("Relates", "relates to", "relates to"),
}


class ApiError(HttpError):
    """A request Jira would refuse; rendered as an ErrorCollection body."""

    def __init__(
        self,
        status: int,
        messages: list[str] | str | None = None,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.messages = [messages] if isinstance(messages, str) else list(messages or [])
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})
        super().__init__(f"{status}: {self.messages} {self.errors}")

    def body(self) -> dict[str, Any]:
        return {"errorMessages": self.messages, "errors": self.errors}

    def response(self) -> Response:
        return Response(self.status, self.body(), self.headers)


def not_found_issue() -> ApiError:
    return ApiError(404, "Issue does not exist or you do not have permission to see it.")


@dataclass
class User:
    account_id: str
    display_name: str
    email: str | None = None
    account_type: str = "atlassian"
    time_zone: str | None = None  # None: the sandbox's own zone (the bot account's)


@dataclass
class Project:
    id: str
    key: str
    name: str
    issue_types: list[str]
    next_number: int = 1
    # Jira's product of the project: "software", "business" or "service_desk" (JSM).
    type_key: str = "software"


@dataclass
class Comment:
    id: str
    issue_id: str
    body: Any  # exactly as sent: ADF dict (v3) or str (v2)
    author: User
    created_ms: int
    updated_ms: int
    properties: dict[str, Any] = field(default_factory=dict)
    visibility: dict | None = None

    @property
    def jsd_public(self) -> bool:
        # JSM derives "internal" from this property; the REST field only reflects it.
        prop = self.properties.get("sd.public.comment")
        return not (isinstance(prop, dict) and prop.get("internal") is True)


@dataclass
class Attachment:
    id: str
    issue_id: str
    filename: str
    data: bytes
    mime_type: str
    created_ms: int
    author: User
    # Jira Cloud keeps the file in Media Services under this id; ADF `media` nodes name it.
    media_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Link:
    id: str
    type_name: str
    inward_id: str  # the issue that "is blocked by" etc.
    outward_id: str


@dataclass
class Issue:
    id: str
    key: str
    project_key: str
    issuetype: str
    summary: str
    description: Any
    labels: list[str]
    status: str
    created_ms: int
    updated_ms: int
    reporter: User
    custom: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    comment_ids: list[str] = field(default_factory=list)
    attachment_ids: list[str] = field(default_factory=list)
    link_ids: list[str] = field(default_factory=list)
    # JSM's CSAT feedback on the request (CSATFeedbackFullDTO as stored), None until rated.
    feedback: dict[str, Any] | None = None


class Clock:
    """Wall-clock time in epoch milliseconds, shiftable by tests (``advance``)."""

    def __init__(self) -> None:
        self.offset_ms = 0
        self._last = 0

    def now_ms(self) -> int:
        # Strictly increasing so "updated" orders every write, even within one millisecond.
        now = int(time.time() * 1000) + self.offset_ms
        self._last = max(now, self._last + 1)
        return self._last

    def advance(self, seconds: float) -> None:
        self.offset_ms += int(seconds * 1000)
