"""The poll job: read Jira through JQL and decide, once per comment, what each new comment means.

Jira cannot call us, so we look: every interval, and at once after the inbox job writes.
The JQL window is the watermark minus an overlap, in epoch milliseconds (zone-free: a JQL
date without a zone would be read in the bot user's time zone), floored to the minute
(JQL's precision). The overlap re-reads some comments every time; the `handled_comment`
table makes each one count once, and "seen" commits in one transaction with what it causes
(an AI turn, or the outbound rows of an agent's reply).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.config import ServiceSettings, Settings
from bot.logs import get_logger
from bot.ports import HandledCommentsPort, JiraPort, LeasesPort, PollStatePort
from bot.rules.classify import CommentView, Route, comment_view, parse_jira_time, route_comment
from bot.rules.comment_property import PROPERTY_KEY, issue_value
from bot.rules.markdown import markdown_to_whatsapp
from bot.rules.outgoing import agent_message, split_message
from bot.rules.poll_window import advance_watermark, poll_jql, window_start_ms

log = get_logger(__name__)

SEARCH_FIELDS = ["comment", "status", "updated", "labels", "summary"]
POLL_LEASE = "poll"
# Agent comments older than the customer window cannot be sent free-form anyway, and a
# customer message older than this is history (an import, a restored database), not a turn.
STALE_AGENT_SECONDS = 24 * 3600
STALE_CUSTOMER_SECONDS = 3600


@dataclass
class PassResult:
    issues: int = 0
    new_comments: int = 0
    ai_turns: int = 0
    first_turn_due: float | None = None
    pushed: int = 0
    ignored: int = 0
    planned: list[str] = field(default_factory=list)
    """With dry_run: one line per action that would be taken."""


@dataclass
class PollJob:
    settings: Settings
    jira: JiraPort
    state: PollStatePort
    handled: HandledCommentsPort
    leases: LeasesPort
    owner: str
    clock: Callable[[], float] = time.time
    on_ai_turn: Callable[[float], None] = lambda due_at: None
    """Told when the earliest new AI turn is due (after its debounce)."""
    on_outbound: Callable[[], None] = lambda: None
    progress: Callable[[int, int | None], None] | None = None
    on_issue_seen: list[Callable[[str, dict[str, Any], dict[str, Any]], None]] = field(default_factory=list)
    """Told (issue key, fields, our issue property) for every managed issue a pass reads:
    e.g. the ticket lifecycle keeps each issue's status category from it."""

    _bot_account_id: str | None = field(default=None, init=False)
    _recent: dict[str, None] = field(default_factory=dict, init=False)
    _ids: dict[str, int] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def note_write(self, issue_key: str, issue_id: str | None = None) -> None:
        """The inbox wrote to this issue: ask search to reconcile it on the next pass."""
        with self._lock:
            self._recent[issue_key] = None
            if issue_id:
                self._ids[issue_key] = int(issue_id)

    def run(self) -> PassResult | None:
        """One scheduled pass, by whichever instance holds the poll lease."""
        # Long enough to outlive a slow pass, short enough that a dead holder is replaced soon.
        lease_ttl = max(10.0, 3.0 * self.settings.poller.interval_seconds)
        if not self.leases.acquire(POLL_LEASE, self.owner, lease_ttl):
            return None
        record = self.state.get()
        now_ms = int(self.clock() * 1000)
        since = window_start_ms(record.watermark_ms, self.settings.poller.overlap_seconds, now_ms)
        try:
            result, newest = self.pass_over(since)
        except Exception as exc:
            self.state.save_failure("jira", error=f"{type(exc).__name__}: {exc}"[:1000])
            raise
        self.state.save_success("jira", watermark_ms=advance_watermark(record.watermark_ms, newest, now_ms))
        if result.new_comments:
            log.info("poll_pass", **{k: v for k, v in result.__dict__.items() if k != "planned"})
        return result

    def pass_over(self, since_ms: int, *, dry_run: bool = False) -> tuple[PassResult, list[int]]:
        """Read every managed issue updated since `since_ms` and handle its new comments."""
        if self._bot_account_id is None:
            me = self.jira.myself()
            self._bot_account_id = me.get("accountId") or me.get("key") or me.get("name")
        jql = poll_jql(
            project_keys=sorted({s.project_key for s in self.settings.services}),
            labels=sorted({label for s in self.settings.services for label in s.labels}),
            since_ms=since_ms,
        )
        with self._lock:
            pending = dict(self._recent)
            self._recent.clear()
            reconcile = [self._ids[k] for k in pending if k in self._ids]
        try:
            result, newest = self._read(jql, reconcile, dry_run=dry_run)
        except Exception:
            with self._lock:  # not reconciled yet: the next pass asks again
                for key in pending:
                    self._recent.setdefault(key, None)
            raise
        if not dry_run:
            if result.first_turn_due is not None:
                self.on_ai_turn(result.first_turn_due)
            if result.pushed:
                self.on_outbound()
        return result, newest

    def _read(self, jql: str, reconcile: list[int], *, dry_run: bool) -> tuple[PassResult, list[int]]:
        result = PassResult()
        newest: list[int] = []
        for issue in self.jira.search_issues(
            jql, fields=SEARCH_FIELDS, properties=[PROPERTY_KEY], reconcile_ids=reconcile
        ):
            result.issues += 1
            fields = issue.get("fields") or {}
            with self._lock:
                self._ids[issue["key"]] = int(issue["id"])
            updated = parse_jira_time(fields.get("updated"))
            if updated:
                newest.append(int(updated * 1000))
            if self.progress:
                self.progress(result.issues, int(updated * 1000) if updated else None)
            self._handle_issue(issue, fields, result, dry_run=dry_run)
        return result, newest

    def _handle_issue(
        self, issue: dict[str, Any], fields: dict[str, Any], result: PassResult, *, dry_run: bool
    ) -> None:
        ours = issue_value(issue)
        if ours is None or not ours.get("conversation"):
            return  # a ticket we did not open has no customer to talk to
        key = issue["key"]
        if not dry_run:
            for listener in self.on_issue_seen:
                listener(key, fields, ours)
        if self._all_handled(_inline_comments(fields)):
            return  # every comment already handled: no second request for this issue
        # Search inlines comments without their properties (which say what is ours), and may
        # truncate them: read the full list for an issue with something new.
        raw_comments = self.jira.list_comments(key)
        views = sorted((comment_view(key, c) for c in raw_comments), key=lambda v: (v.created, _num(v.id)))
        known = self.handled.known([v.id for v in views])
        for view in views:
            if view.id in known:
                continue
            result.new_comments += 1
            self._handle_comment(view, ours, result, dry_run=dry_run)

    def _all_handled(self, inline: list[dict[str, Any]] | None) -> bool:
        """Whether every comment search inlined was handled before (False when it truncated them)."""
        if inline is None:
            return False
        inline_ids = [str(c.get("id")) for c in inline]
        unhandled = set(inline_ids) - self.handled.known(inline_ids)
        return not unhandled

    def _handle_comment(
        self, view: CommentView, ours: dict[str, Any], result: PassResult, *, dry_run: bool
    ) -> None:
        route = route_comment(view, bot_account_id=self._bot_account_id)
        age = self.clock() - view.created
        service = _service(self.settings, ours)
        outbound: list[dict[str, Any]] = []
        ai_turn = None
        label = "ignore"
        if route is Route.AI_TURN and service.assistant.enabled and age < STALE_CUSTOMER_SECONDS:
            label = "ai_turn"
            ai_turn = {
                "issue_key": view.issue_key,
                "service_id": service.id,
                "conversation_key": ours["conversation"],
                "trigger_comment_id": view.id,
                "due_at": max(self.clock(), view.created + service.assistant.debounce_seconds),
            }
        elif route is Route.AI_TURN:
            label = "customer"  # answered by people only: assistant off, or history
        elif route is Route.TO_CUSTOMER and age < STALE_AGENT_SECONDS:
            label = "to_customer"
            outbound = self._agent_rows(view, ours)
        elif route is Route.TO_CUSTOMER:
            label = "stale"
        elif route is Route.ECHO:
            # The team answered from the WhatsApp Business App: a human reply (handoff). Not
            # imported history, nor an internal comment: route_comment leaves those out.
            label = "echo"
        if dry_run:
            result.planned.append(_plan_line(view, label, len(outbound)))
            _count(result, label)
            return
        if self.handled.record(
            comment_id=view.id,
            issue_key=view.issue_key,
            route=label,
            comment_created=view.created,
            outbound=outbound,
            ai_turn=ai_turn,
        ):
            _count(result, label)
            if ai_turn is not None:
                due = ai_turn["due_at"]
                result.first_turn_due = (
                    due if result.first_turn_due is None else min(result.first_turn_due, due)
                )

    def _agent_rows(self, view: CommentView, ours: dict[str, Any]) -> list[dict[str, Any]]:
        text = agent_message(
            view.author_name, markdown_to_whatsapp(view.text), self.settings.outbox.agent_format
        )
        return [
            {
                "dedupe_key": f"comment:{view.id}:{n}",
                "issue_key": view.issue_key,
                "conversation_key": ours["conversation"],
                "to_wa_id": ours.get("wa_id"),
                "to_user_id": ours.get("user_id"),
                "phone_number_id": ours.get("phone_number_id") or self.settings.whatsapp.phone_number_id,
                "kind": "agent",
                "body": part,
            }
            for n, part in enumerate(split_message(text))
        ]


def _inline_comments(fields: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The comments search inlined, or None when it truncated them (`total` says more exist)."""
    block = fields.get("comment")
    if not isinstance(block, dict):
        return None
    comments = block.get("comments") or []
    total = block.get("total", len(comments))
    if not isinstance(total, int) or total > len(comments):
        return None
    return comments


def _service(settings: Settings, ours: dict[str, Any]) -> ServiceSettings:
    try:
        return settings.service(ours.get("service") or "")
    except KeyError:
        return settings.service_for(ours.get("phone_number_id") or "")


def _num(value: str) -> int:
    return int(value) if value.isdigit() else 0


def _count(result: PassResult, label: str) -> None:
    if label == "ai_turn":
        result.ai_turns += 1
    elif label == "to_customer":
        result.pushed += 1
    else:
        result.ignored += 1


def _plan_line(view: CommentView, label: str, parts: int) -> str:
    what = {"ai_turn": "AI reply", "to_customer": f"send to WhatsApp ({parts} part(s))"}.get(label, label)
    return f"{view.issue_key} comment {view.id} by {view.author_name}: {what}"
