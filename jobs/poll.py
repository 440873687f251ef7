"""The poll job: read Jira through JQL and decide, once per comment, what each new comment means.

Jira cannot call us, so we look: every interval, and at once after the inbox job writes.
The JQL window is the watermark minus an overlap, in epoch milliseconds (zone-free: a JQL
date without a zone would be read in the bot user's time zone), floored to the minute
(JQL's precision). The overlap re-reads some comments every time; the `handled_comment`
table makes each one count once, and "seen" commits in one transaction with what it causes
(an AI turn, or the outbound rows of an agent's reply).

Several Jira accounts (`[services.jira]`): each pass searches each account with one JQL over its
own services' projects, from its own watermark (poll state "jira" for `[jira]`, "jira:<ids>" for
the others), and tells the bot's comments apart by that account's id. Comment ids are unique per
site only, so a comment of an account other than `[jira]`'s is stored under its tagged id.

Live chats: a ticket whose customer wrote within `[poller] hot_minutes` is hot, and `run_hot`
searches the hot tickets every `hot_interval_seconds` with one JQL `issue in (…)` call
(reconciled, so our own fresh writes show), besides the full pass every `interval_seconds`.
No hot ticket, no call. Both passes hold the same poll lease, so one instance polls.

An agent's comment may be a command (`agent_commands.py`, answered by an internal note) or a
reply with files (`agent_replies.py`); a note that must not be lost is posted before the
comment counts as handled, so when Jira refuses it the pass fails and the comment is read again.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.config import ServiceSettings, Settings
from bot.jira_api.directory import DEFAULT_ACCOUNT, JiraAccount, poll_accounts
from bot.jira_api.errors import JiraRejected, JiraUnavailable
from bot.logs import get_logger
from bot.ports import (
    AiSwitchPort,
    CustomerWindowPort,
    HandledCommentsPort,
    HotTicketsPort,
    JiraPort,
    LeasesPort,
    PollStatePort,
)
from bot.rules.classify import CommentView, Route, comment_view, is_command, parse_jira_time, route_comment
from bot.rules.comment_property import PROPERTY_KEY, issue_value
from bot.rules.hot import hot_jql, hot_since
from bot.rules.hours import is_open
from bot.rules.poll_window import advance_watermark, poll_jql, window_start_ms
from jobs.agent_commands import AgentCommands, command_note_ref
from jobs.agent_replies import AgentReplies, refused_note
from jobs.notes import Notes

log = get_logger(__name__)

SEARCH_FIELDS = ["comment", "status", "updated", "labels", "summary"]
POLL_LEASE = "poll"
# New comments fetched with their properties in one `comments_by_ids` request (Jira's cap).
COMMENT_LIST_MAX_IDS = 1000
# At most this many hot tickets per `issue in (…)` search: the most recently active ones.
HOT_MAX_TICKETS = 100
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
    switch: AiSwitchPort
    """`/ai off` and `/ai on`, per ticket."""
    window: CustomerWindowPort
    """The customer's last message, for `/window`."""
    hot: HotTicketsPort
    """Which tickets' customers wrote lately (the hot pass)."""
    owner: str
    clock: Callable[[], float] = time.time
    on_ai_turn: Callable[[float], None] = lambda due_at: None
    """Told when the earliest new AI turn is due (after its debounce)."""
    on_outbound: Callable[[], None] = lambda: None
    progress: Callable[[int, int | None], None] | None = None
    on_issue_seen: list[Callable[[str, dict[str, Any], dict[str, Any]], None]] = field(default_factory=list)
    """Told (issue key, fields, our issue property) for every managed issue a pass reads:
    e.g. the ticket lifecycle keeps each issue's status category from it."""

    _me: dict[str, tuple[str | None, str | None]] = field(default_factory=dict, init=False)
    """Account name → the bot's (account id, time zone) there."""
    _accounts: list[JiraAccount] = field(init=False)
    _recent: dict[str, None] = field(default_factory=dict, init=False)
    _ids: dict[str, int] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _pass_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    """One pass at a time in this instance: the full pass and the hot pass read the same comments."""
    _commands: AgentCommands = field(init=False)
    _replies: dict[str, AgentReplies] = field(init=False)
    _notes: dict[str, Notes] = field(init=False)

    def __post_init__(self) -> None:
        self._commands = AgentCommands(self.settings, self.switch, self.window, lambda: self.clock())
        self._accounts = poll_accounts(self.jira, self.settings)
        # Attachment ids and notes are the account's own: each account reads and writes its site.
        self._replies = {a.name: AgentReplies(self.settings, a.jira) for a in self._accounts}
        self._notes = {a.name: Notes(a.jira) for a in self._accounts}

    def _account_of(self, issue_key: str) -> JiraAccount:
        """The account polling this issue (the first for a project no service names)."""
        return self._owner(issue_key) or self._accounts[0]

    def _owner(self, issue_key: str) -> JiraAccount | None:
        if len(self._accounts) == 1:
            return self._accounts[0]
        project = issue_key.rpartition("-")[0]
        return next((a for a in self._accounts if project in a.project_keys), None)

    def note_write(self, issue_key: str, issue_id: str | None = None) -> None:
        """The inbox wrote to this issue: ask search to reconcile it on the next pass."""
        with self._lock:
            self._recent[issue_key] = None
            if issue_id:
                self._ids[issue_key] = int(issue_id)

    @property
    def _lease_ttl(self) -> float:
        # Long enough to outlive a slow pass, short enough that a dead holder is replaced soon.
        return max(10.0, 3.0 * self.settings.poller.interval_seconds)

    def run(self) -> PassResult | None:
        """One scheduled pass, by whichever instance holds the poll lease."""
        if not self.leases.acquire(POLL_LEASE, self.owner, self._lease_ttl):
            return None
        with self._pass_lock:
            return self._full_pass()

    def run_hot(self) -> PassResult | None:
        """Search the hot tickets now: one `issue in (…)` call, none when no ticket is hot.

        Leaves the watermark alone (the full pass owns it) and yields to a full pass running in
        this instance, which reads the same comments anyway.
        """
        p = self.settings.poller
        if p.hot_minutes <= 0:
            return None
        now = self.clock()
        keys = self.hot.hot_issue_keys(since=hot_since(now, p.hot_minutes), limit=HOT_MAX_TICKETS)
        since_ms = window_start_ms(int(now * 1000), p.overlap_seconds, int(now * 1000))
        jql = hot_jql(keys, since_ms=since_ms)
        if jql is None:
            return None
        if not self.leases.acquire(POLL_LEASE, self.owner, self._lease_ttl):
            return None
        if not self._pass_lock.acquire(blocking=False):
            return None
        try:
            result = PassResult()
            for account in self._accounts:
                mine = [k for k in keys if self._owner(k) is account]
                account_jql = hot_jql(mine, since_ms=since_ms) if len(self._accounts) > 1 else jql
                if account_jql is None:
                    continue
                with self._lock:
                    reconcile = [self._ids[k] for k in mine if k in self._ids]
                part, _ = self._read(account, account_jql, reconcile, dry_run=False)
                _merge(result, part)
        finally:
            self._pass_lock.release()
        self._announce(result)
        if result.new_comments:
            log.info("poll_hot_pass", hot=len(keys), **_summary(result))
        return result

    def _full_pass(self) -> PassResult:
        """Each account from its own watermark; one failing account does not hold the others
        back, and the pass still fails (after them) so the scheduler backs off and says so."""
        result = PassResult()
        failure: Exception | None = None
        for account in self._accounts:
            record = self.state.get(account.name)
            now_ms = int(self.clock() * 1000)
            since = window_start_ms(record.watermark_ms, self.settings.poller.overlap_seconds, now_ms)
            try:
                part, newest = self._pass_account(account, since, dry_run=False)
            except Exception as exc:
                self.state.save_failure(account.name, error=f"{type(exc).__name__}: {exc}"[:1000])
                if len(self._accounts) == 1:
                    raise
                # An outage or a 429 of one account is expected weather; anything else is a fault.
                report = log.warning if isinstance(exc, JiraUnavailable) else log.error
                report("poll_account_failed", account=account.name, error=f"{type(exc).__name__}: {exc}")
                failure = failure or exc
                continue
            watermark = advance_watermark(record.watermark_ms, newest, now_ms)
            self.state.save_success(account.name, watermark_ms=watermark)
            _merge(result, part)
        self._record_whole_pass(failure)
        if failure is not None:
            raise failure
        if result.new_comments:
            log.info("poll_pass", **_summary(result))
        return result

    def _record_whole_pass(self, failure: Exception | None) -> None:
        """When every service has its own account, `[jira]` is not searched: its poll state
        ("jira", which health and metrics read) then tells how the whole pass went."""
        if any(a.name == DEFAULT_ACCOUNT for a in self._accounts):
            return
        if failure is not None:
            self.state.save_failure(DEFAULT_ACCOUNT, error=f"{type(failure).__name__}: {failure}"[:1000])
            return
        marks = [self.state.get(a.name).watermark_ms for a in self._accounts]
        known = [m for m in marks if m is not None]
        # The oldest watermark: nothing is claimed read that some account has not read.
        self.state.save_success(DEFAULT_ACCOUNT, watermark_ms=min(known, default=int(self.clock() * 1000)))

    def pass_over(self, since_ms: int, *, dry_run: bool = False) -> tuple[PassResult, list[int]]:
        """Read every managed issue updated since `since_ms` and handle its new comments (every
        account, one search each)."""
        result, newest = PassResult(), []
        for account in self._accounts:
            part, seen = self._pass_account(account, since_ms, dry_run=dry_run)
            _merge(result, part)
            newest += seen
        return result, newest

    def _pass_account(
        self, account: JiraAccount, since_ms: int, *, dry_run: bool
    ) -> tuple[PassResult, list[int]]:
        self._who_am_i(account)
        jql = poll_jql(project_keys=account.project_keys, labels=account.labels, since_ms=since_ms)
        with self._lock:
            pending = {k: None for k in self._recent if self._account_of(k) is account}
            for key in pending:
                del self._recent[key]
            reconcile = [self._ids[k] for k in pending if k in self._ids]
        try:
            result, newest = self._read(account, jql, reconcile, dry_run=dry_run)
        except Exception:
            with self._lock:  # not reconciled yet: the next pass asks again
                for key in pending:
                    self._recent.setdefault(key, None)
            raise
        if not dry_run:
            self._announce(result)
        return result, newest

    def _who_am_i(self, account: JiraAccount) -> tuple[str | None, str | None]:
        """The bot's account id and time zone on this account's site (asked once)."""
        if account.name not in self._me:
            me = account.jira.myself()
            zone = me.get("timeZone")
            self._me[account.name] = (
                me.get("accountId") or me.get("key") or me.get("name"),
                zone if isinstance(zone, str) and zone else None,
            )
        return self._me[account.name]

    def _announce(self, result: PassResult) -> None:
        if result.first_turn_due is not None:
            self.on_ai_turn(result.first_turn_due)
        if result.pushed:
            self.on_outbound()

    def _read(
        self, account: JiraAccount, jql: str, reconcile: list[int], *, dry_run: bool
    ) -> tuple[PassResult, list[int]]:
        self._who_am_i(account)
        result = PassResult()
        newest: list[int] = []
        batch: list[_Waiting] = []
        for issue in account.jira.search_issues(
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
            waiting = self._handle_issue(account, issue, fields, result, dry_run=dry_run)
            if waiting is not None:
                batch.append(waiting)
                if sum(len(w.unhandled) for w in batch) >= COMMENT_LIST_MAX_IDS:
                    self._handle_batch(account, batch, result, dry_run=dry_run)
                    batch = []
        self._handle_batch(account, batch, result, dry_run=dry_run)
        return result, newest

    def _handle_issue(
        self,
        account: JiraAccount,
        issue: dict[str, Any],
        fields: dict[str, Any],
        result: PassResult,
        *,
        dry_run: bool,
    ) -> _Waiting | None:
        """Handle the issue's new comments now, or return them to be fetched with others."""
        ours = issue_value(issue)
        if ours is None or not ours.get("conversation"):
            return None  # a ticket we did not open has no customer to talk to
        key = issue["key"]
        if not dry_run:
            for listener in self.on_issue_seen:
                listener(key, fields, ours)
        inline = _inline_comments(fields)
        unhandled = self._unhandled(account, inline)
        if inline is not None and not unhandled:
            return None  # every comment already handled: no second request for this issue
        bot_account_id, _ = self._who_am_i(account)
        if inline is not None and not any(
            is_command(comment_view(key, c), bot_account_id=bot_account_id) for c in unhandled
        ):
            # Search inlines comments without their properties (which say what is ours): the
            # new ones are fetched with those of other issues, one request per 1000.
            return _Waiting(key, ours, inline, unhandled)
        # Truncated inline comments, or a command (which reads the comments before it, whose
        # properties search left out): the issue's full list.
        self._handle_comments(account, key, account.jira.list_comments(key), ours, result, dry_run=dry_run)
        return None

    def _handle_batch(
        self, account: JiraAccount, batch: list[_Waiting], result: PassResult, *, dry_run: bool
    ) -> None:
        if not batch:
            return
        found = account.jira.comments_by_ids([str(c.get("id")) for w in batch for c in w.unhandled])
        if found is None:  # Server/Data Center: each issue's own list
            for w in batch:
                comments = account.jira.list_comments(w.key)
                self._handle_comments(account, w.key, comments, w.ours, result, dry_run=dry_run)
            return
        fetched = {str(c.get("id")): c for c in found}
        for w in batch:
            # A new comment deleted since the search is absent: left for no one to handle.
            self._handle_comments(account, w.key, w.with_properties(fetched), w.ours, result, dry_run=dry_run)

    def _handle_comments(
        self,
        account: JiraAccount,
        key: str,
        raw_comments: list[dict[str, Any]],
        ours: dict[str, Any],
        result: PassResult,
        *,
        dry_run: bool,
    ) -> None:
        views = sorted((comment_view(key, c) for c in raw_comments), key=lambda v: (v.created, _num(v.id)))
        # From here on a comment is known by its stored id (tagged on accounts but [jira]'s):
        # handled rows, AI turns and outbound dedupe keys never mix two sites' comments.
        views = [dataclasses.replace(v, id=account.ref(v.id)) for v in views]
        known = self.handled.known([v.id for v in views])
        for n, view in enumerate(views):
            if view.id in known:
                continue
            result.new_comments += 1
            self._handle_comment(account, view, ours, result, earlier=views[:n], dry_run=dry_run)

    def _unhandled(self, account: JiraAccount, inline: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        """The inline comments not handled before ([] when search truncated them)."""
        if inline is None:
            return []
        refs = [account.ref(str(c.get("id"))) for c in inline]
        known = self.handled.known(refs)
        return [c for c, ref in zip(inline, refs, strict=True) if ref not in known]

    def _handle_comment(
        self,
        account: JiraAccount,
        view: CommentView,
        ours: dict[str, Any],
        result: PassResult,
        *,
        earlier: list[CommentView],
        dry_run: bool,
    ) -> None:
        bot_account_id, bot_zone = self._who_am_i(account)
        route = route_comment(view, bot_account_id=bot_account_id)
        age = self.clock() - view.created
        service = self.settings.service_of_ticket(ours)
        outbound: list[dict[str, Any]] = []
        ai_turn = None
        label = "ignore"
        note: tuple[str, str] | None = None  # (ref, text): posted before the comment counts as handled
        if route is Route.COMMAND:
            label = "command"
            outcome = self._commands.outcome(
                view,
                ours,
                service,
                earlier=earlier,
                bot_account_id=bot_account_id,
                bot_zone=bot_zone,
                dry_run=dry_run,
            )
            outbound, ai_turn = outcome.outbound, outcome.ai_turn
            if outcome.note is not None:
                note = (command_note_ref(view.id), outcome.note)
        elif (
            route is Route.AI_TURN
            and service.assistant.enabled
            and age < STALE_CUSTOMER_SECONDS
            and _answers_now(service, view.created)
            and self.switch.enabled(view.issue_key)
        ):
            label = "ai_turn"
            ai_turn = {
                "issue_key": view.issue_key,
                "service_id": service.id,
                "conversation_key": ours["conversation"],
                "trigger_comment_id": view.id,
                "due_at": max(self.clock(), view.created + service.assistant.debounce_seconds),
            }
        elif route is Route.AI_TURN:
            # Answered by people only: assistant off (or `/ai off`, or out of hours with
            # `outside_hours = false`), or history.
            label = "customer"
        elif route is Route.TO_CUSTOMER and age < STALE_AGENT_SECONDS:
            label = "to_customer"
            reply = self._replies[account.name].reply(view, ours)
            outbound = reply.rows
            if reply.refused:
                note = (f"files:{view.id}", refused_note(view, reply.refused))
        elif route is Route.TO_CUSTOMER:
            label = "stale"
        elif route is Route.HANDOVER:
            # Usually recorded by the AI job already; read here first, it still pauses the AI.
            label = "handover"
        elif route is Route.ECHO:
            # The team answered from the WhatsApp Business App: a human reply (handoff). Not
            # imported history, nor an internal comment: route_comment leaves those out.
            label = "echo"
        if dry_run:
            result.planned.append(_plan_line(view, label, len(outbound)))
            _count(result, label, outbound)
            return
        if note is not None:
            try:
                self._notes[account.name].ensure(view.issue_key, ref=note[0], text=note[1])
            except JiraRejected as exc:
                # Jira will never take it (no permission to comment, the issue gone): retrying
                # would hold every other ticket's pass on this one comment. Unavailable and rate
                # limits still fail the pass, so the comment is read again.
                log.error("command_note_rejected", issue_key=view.issue_key, ref=note[0], error=str(exc))
        if self.handled.record(
            comment_id=view.id,
            issue_key=view.issue_key,
            route=label,
            comment_created=view.created,
            outbound=outbound,
            ai_turn=ai_turn,
        ):
            _count(result, label, outbound)
            if ai_turn is not None:
                due = ai_turn["due_at"]
                result.first_turn_due = (
                    due if result.first_turn_due is None else min(result.first_turn_due, due)
                )


@dataclass
class _Waiting:
    """An issue whose new inline comments wait for their properties (`comments_by_ids`)."""

    key: str
    ours: dict[str, Any]
    inline: list[dict[str, Any]]
    unhandled: list[dict[str, Any]]

    def with_properties(self, fetched: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """What to hand on: handled comments as inlined (earlier context), new ones as fetched."""
        new_ids = {str(c.get("id")) for c in self.unhandled}
        return [
            fetched[str(c.get("id"))] if str(c.get("id")) in new_ids else c
            for c in self.inline
            if str(c.get("id")) not in new_ids or str(c.get("id")) in fetched
        ]


def _merge(total: PassResult, part: PassResult) -> None:
    """Add one account's (or one search's) pass to the whole pass."""
    for name in ("issues", "new_comments", "ai_turns", "pushed", "ignored"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    if part.first_turn_due is not None:
        due = total.first_turn_due
        total.first_turn_due = part.first_turn_due if due is None else min(due, part.first_turn_due)
    total.planned += part.planned


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


def _answers_now(service: ServiceSettings, at: float) -> bool:
    """Whether the AI answers a message written at `at`: always, unless the service keeps
    it to `[services.hours]` (`[services.assistant] outside_hours = false`)."""
    a = service.assistant
    return a.outside_hours or service.hours is None or is_open(service.hours.week(), at)


def _num(value: str) -> int:
    return int(value) if value.isdigit() else 0


def _count(result: PassResult, label: str, outbound: list[dict[str, Any]]) -> None:
    if label == "ai_turn":
        result.ai_turns += 1
    elif outbound:  # an agent's reply, or a command's template: the outbox has work
        result.pushed += 1
    else:
        result.ignored += 1


def _summary(result: PassResult) -> dict[str, Any]:
    return {k: v for k, v in result.__dict__.items() if k != "planned"}


def _plan_line(view: CommentView, label: str, parts: int) -> str:
    what = {
        "ai_turn": "AI reply",
        "to_customer": f"send to WhatsApp ({parts} part(s))",
        "command": "command, answered by an internal note",
    }.get(label, label)
    return f"{view.issue_key} comment {view.id} by {view.author_name}: {what}"
