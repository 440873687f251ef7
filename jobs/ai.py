"""The AI job: answer a customer's turn with the service's assistant, once.

A turn is claimed from storage (one worker, one instance). The policy (debounce, hourly limit,
token budget, human handoff) decides first. The reply is posted to Jira as `[AI] …` with the
property `{"kind": "ai", "turn": id}` and its WhatsApp parts are queued in the same
transaction that closes the turn. A retry after a crash finds that comment among the ones it
reads for the context anyway, so it never answers twice.

What the model is shown: the service's prompt, the ticket's public conversation and, from
`jobs/reference.py`, the knowledge sections and resolved tickets that match the question (as
reference material, never as instructions); the `[AI]` comment's property lists those sources.
The model may call `hand_over` (`jobs/hand_over.py`): the customer then gets the service's
hand-over text instead of the model's words, and the ticket a note, a label and a pause.

A claim lasts `[openai] turn_lease_seconds`: an instance killed mid-turn holds it no longer than
that, then another instance takes the turn over. A live instance renews the claim between the
Jira, Graph and OpenAI calls of a turn (so the lease need only outlast one OpenAI call, or two
short ones) and drops the turn, posting nothing, when the renewal finds it taken over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bot.ai.client import AiError, AiRejected, AiReply, AiToolsUnsupported, AiUnavailable
from bot.ai.directory import ai_for_service
from bot.config import ServiceSettings, Settings
from bot.jira_api.directory import handled_ref, jira_for_issue
from bot.jira_api.errors import IssueNotFound, JiraError, JiraRejected
from bot.logs import get_logger
from bot.ports import (
    AiPort,
    AiSwitchPort,
    AiTurnsPort,
    CustomerWindowPort,
    GraphPort,
    HandledCommentsPort,
    JiraPort,
)
from bot.rules.ai_context import ai_messages
from bot.rules.ai_policy import AiPolicy, TurnFacts, decide_turn
from bot.rules.backoff import retry_delay
from bot.rules.classify import comment_view
from bot.rules.comment_property import KIND_AI, PROPERTY_KEY, ai_value, issue_value, read_comment
from bot.rules.markdown import markdown_to_whatsapp
from bot.rules.notices import fill
from bot.rules.outgoing import ai_comment_text, split_message
from bot.rules.window import window_open
from bot.whatsapp.graph import GraphError
from jobs.hand_over import HAND_OVER_TOOL, NO_REASON, HandOver, hand_over_reason
from jobs.notes import Notes
from jobs.reference import NOTHING, ReferenceFinder
from storage.ai_turns import AiTurn

log = get_logger(__name__)


class _TakenOver(Exception):
    """Our claim on the turn lapsed and another worker owns it now."""


@dataclass
class AiJob:
    settings: Settings
    jira: JiraPort
    ai: AiPort
    graph: GraphPort
    turns: AiTurnsPort
    handled: HandledCommentsPort
    inbound: CustomerWindowPort
    notes: Notes
    switch: AiSwitchPort
    """An agent's `/ai off` holds every turn of the ticket until `/ai on`."""
    owner: str
    clock: Callable[[], float] = time.time
    on_outbound: Callable[[], None] = lambda: None
    on_tokens: Callable[[str, int], None] = lambda service_id, tokens: None
    wake_at: Callable[[float], None] = lambda when: None
    """Asked to run the job again when a postponed turn comes due."""
    reference: ReferenceFinder | None = None
    """Knowledge sections and resolved tickets for the context; None: the conversation only."""
    hand_over: HandOver | None = None
    """Finishes a hand-over the model asked for; None: the `hand_over` tool is never offered."""
    _bot_account_ids: dict[int, str] = field(default_factory=dict, init=False)
    """The bot's account id per Jira account (keyed by the account's client)."""
    _no_tools: set[str] = field(default_factory=set, init=False)
    """Services whose server refused tool calling (this process): asked without tools since."""

    def run(self) -> int:
        answered = 0
        for _ in range(50):  # bounded: keep a flood from pinning the job
            claimed = self.turns.claim_due(self.owner, limit=10, lease_seconds=self._lease_seconds)
            if not claimed:
                break
            for turn in claimed:
                answered += self._take(turn)
        return answered

    def _take(self, turn: AiTurn) -> int:
        try:
            service = self.settings.service(turn.service_id)
        except KeyError:
            self.turns.mark_skipped(turn.id, reason=f"service {turn.service_id!r} is no longer configured")
            return 0
        try:
            # The later turns of a batch waited for the earlier ones: still ours?
            self._hold(turn)
            return self._answer(turn, service)
        except _TakenOver:
            log.info("ai_turn_taken_over", turn=turn.id, issue_key=turn.issue_key)
        except (AiUnavailable, JiraError, GraphError, AiRejected) as exc:
            self._failed(turn, service, exc)
        except Exception as exc:  # our bug: the turn stays visible and bounded
            log.exception("ai_turn_unexpected_error", turn=turn.id, issue_key=turn.issue_key)
            self._failed(turn, service, exc)
        return 0

    @property
    def _lease_seconds(self) -> float:
        return self.settings.openai.turn_lease_seconds

    def _hold(self, turn: AiTurn) -> None:
        """Renew our claim: the next call may take up to its timeout.

        Raises:
            _TakenOver: the claim lapsed (this instance stalled) and another worker took the turn.
        """
        if not self.turns.renew(turn, self.owner, lease_seconds=self._lease_seconds):
            raise _TakenOver(turn.id)

    def _answer(self, turn: AiTurn, service: ServiceSettings) -> int:
        a = service.assistant
        now = self.clock()
        if turn.attempts > 0:
            # A retried turn may have posted its reply before failing or crashing: finish that
            # one (queue it for WhatsApp) whatever the policy says now, or Jira would show an
            # answer the customer never got.
            raw = self.jira.list_comments(turn.issue_key)
            self._hold(turn)
            if _our_reply(raw, turn.id) is not None:
                return self._reply(turn, service, raw)
        if not self.switch.enabled(turn.issue_key):
            # Checked when the turn is taken, not only when it was queued: `/ai off` may come
            # while the turn waits out its debounce.
            self.turns.mark_skipped(turn.id, reason="ai_off")
            log.info("ai_turn_skipped", turn=turn.id, issue_key=turn.issue_key, reason="ai_off")
            return 0
        last_customer = self.handled.last_customer_at(turn.issue_key) or now
        facts = TurnFacts(
            now=now,
            last_customer_at=last_customer,
            last_human_at=self.handled.last_human_at(turn.issue_key),
            replies_last_hour=self.turns.replies_since(turn.issue_key, now - 3600),
            tokens_today=self.turns.tokens_since(service.id, _utc_midnight(now)),
            ai_reply_exists_after_last_customer=self.turns.answered_after(turn.issue_key, last_customer),
        )
        policy = AiPolicy(
            debounce_seconds=a.debounce_seconds,
            max_replies_per_hour=a.max_replies_per_hour,
            daily_token_budget=a.daily_token_budget or 10**15,
            handoff_seconds=a.handoff_seconds,
        )
        last_message = self.inbound.last_customer_message(turn.conversation_key)
        if not window_open(last_message.timestamp if last_message else None, now):
            # Meta's timestamp says the customer wrote over 24 h ago (a late redelivery, an
            # import): a reply could not be sent free-form, and it would answer old news.
            self.turns.mark_skipped(turn.id, reason="window_closed")
            log.info("ai_turn_skipped", turn=turn.id, issue_key=turn.issue_key, reason="window_closed")
            return 0
        decision = decide_turn(facts, policy)
        if decision.action == "wait":
            self.turns.postpone(turn.id, due_at=now + decision.wait_seconds)
            self.wake_at(now + decision.wait_seconds)
            return 0
        if decision.action == "skip":
            self.turns.mark_skipped(turn.id, reason=decision.reason)
            log.info("ai_turn_skipped", turn=turn.id, issue_key=turn.issue_key, reason=decision.reason)
            self._note_limit(turn, decision.reason, now)
            return 0
        raw = self.jira.list_comments(turn.issue_key)
        self._hold(turn)
        return self._reply(turn, service, raw)

    def _note_limit(self, turn: AiTurn, reason: str, now: float) -> None:
        """One note per ticket per hour (or per day for the budget), so agents know to step in."""
        if reason == "hourly_limit":
            self.notes.post(
                turn.issue_key,
                ref=f"ai-hourly-limit:{int(now // 3600)}",
                text="The AI assistant reached its hourly reply limit on this ticket and "
                "stays silent for now. Please answer the customer.",
            )
        elif reason == "budget_exhausted":
            self.notes.post(
                turn.issue_key,
                ref=f"ai-budget:{int(now // 86400)}",
                text="The AI assistant's daily token budget is spent; it answers no "
                "customer until tomorrow (UTC). Please answer the customer.",
            )

    def _reply(self, turn: AiTurn, service: ServiceSettings, raw: list[dict[str, Any]]) -> int:
        a = service.assistant
        views = [comment_view(turn.issue_key, c) for c in raw]
        existing = _our_reply(raw, turn.id)
        issue = self.jira.get_issue(turn.issue_key, fields=["summary"], properties=[PROPERTY_KEY])
        self._hold(turn)
        ours = issue_value(issue) or {}
        reply_text: str | None = None
        handover: str | None = None
        tokens = 0
        if existing is None:
            trigger = next(
                (v for v in views if handled_ref(self.jira, turn.issue_key, v.id) == turn.trigger_comment_id),
                None,
            )
            if a.mark_read and trigger is not None and trigger.wamid:
                self._mark_read(ours, trigger.wamid)
            summary = (issue.get("fields") or {}).get("summary") or ""
            bot = self._bot_account(turn.issue_key)
            reference = NOTHING
            if self.reference is not None:
                reference = self.reference.find(service, turn.issue_key, views, bot_account_id=bot)
            self._hold(turn)  # the read mark, `myself` and the search took their time
            reply = self._ask(
                service,
                tools=self.hand_over is not None and a.hand_over and service.id not in self._no_tools,
                messages=lambda tools: ai_messages(
                    system_prompt=a.system_prompt,
                    summary=summary,
                    comments=views,
                    bot_account_id=bot,
                    reference=reference.text,
                    hand_over=tools,
                ),
            )
            reply_text, tokens = reply.text.strip(), reply.total_tokens
            self.on_tokens(service.id, tokens)
            handover = hand_over_reason(reply)
            if handover is not None:
                # The customer gets the operator's words, not the model's.
                reply_text = fill(
                    a.hand_over_message, {"name": self._customer_name(turn), "issue_key": turn.issue_key}
                )
            # Posting is the step that must happen once: only while the turn is still ours.
            self._hold(turn)
            if not reply_text:
                self.turns.mark_skipped(turn.id, reason="the model returned an empty reply")
                return 0
            prop = ai_value(
                turn.id, sections=reference.sections, tickets=reference.tickets, handover_reason=handover
            )
            comment_id = self.jira.add_comment(turn.issue_key, ai_comment_text(reply_text), prop=prop)
        else:
            comment_id, reply_text, handover = existing
            log.info("ai_reply_already_in_jira", turn=turn.id, issue_key=turn.issue_key)
        if handover is not None and self.hand_over is not None:
            # Before the turn closes: a crash in between finishes it on the retry.
            self.hand_over.finish(turn, service, comment_id, handover)
            self._hold(turn)
        parts = split_message(markdown_to_whatsapp(reply_text))
        outbound = [
            {
                "dedupe_key": f"ai:{turn.id}:{n}",
                "issue_key": turn.issue_key,
                "conversation_key": turn.conversation_key,
                "to_wa_id": ours.get("wa_id"),
                "to_user_id": ours.get("user_id"),
                "phone_number_id": ours.get("phone_number_id") or self.settings.whatsapp.phone_number_id,
                "kind": "ai",
                "body": part,
            }
            for n, part in enumerate(parts)
        ]
        self.turns.mark_done(turn.id, reply_comment_id=comment_id, tokens=tokens, outbound=outbound)
        log.info("ai_turn_answered", turn=turn.id, issue_key=turn.issue_key, tokens=tokens, parts=len(parts))
        self.on_outbound()
        return 1

    def _ask(
        self, service: ServiceSettings, *, tools: bool, messages: Callable[[bool], list[dict[str, Any]]]
    ) -> AiReply:
        """One completion, with the `hand_over` tool when offered; a server that cannot do tool
        calling is asked again without it (and from then on), so replies never depend on it."""
        a = service.assistant
        if tools:
            try:
                return ai_for_service(self.ai, service.id).complete(
                    model=a.model, messages=messages(True), max_tokens=a.max_tokens, tools=(HAND_OVER_TOOL,)
                )
            except AiToolsUnsupported as exc:
                self._no_tools.add(service.id)
                log.warning(
                    "ai_tools_unsupported",
                    service=service.id,
                    error=str(exc),
                    hint="the model cannot hand over; set [services.assistant] hand_over = false",
                )
        ai = ai_for_service(self.ai, service.id)  # a service with its own AI account pays for its turns
        return ai.complete(model=a.model, messages=messages(False), max_tokens=a.max_tokens)

    def _customer_name(self, turn: AiTurn) -> str:
        last = self.inbound.last_customer_message(turn.conversation_key)
        return (last.profile_name if last else None) or ""

    def _bot_account(self, issue_key: str) -> str | None:
        """The bot's account id on the Jira account that handles this issue (asked once each)."""
        jira = jira_for_issue(self.jira, issue_key)
        if id(jira) not in self._bot_account_ids:
            me = jira.myself()
            self._bot_account_ids[id(jira)] = me.get("accountId") or me.get("key") or me.get("name") or ""
        return self._bot_account_ids[id(jira)] or None

    def _mark_read(self, ours: dict[str, Any], wamid: str) -> None:
        # Best effort: a read receipt is a courtesy, never a reason to delay the answer.
        try:
            phone_number_id = ours.get("phone_number_id") or self.settings.whatsapp.phone_number_id
            self.graph.mark_read(phone_number_id, wamid, typing=True)
        except GraphError as exc:
            log.info("mark_read_failed", error=str(exc))

    def _failed(self, turn: AiTurn, service: ServiceSettings, exc: Exception) -> None:
        if not self.turns.renew(turn, self.owner, lease_seconds=self._lease_seconds):
            # The call outlived our claim and another worker has the turn: its outcome counts.
            log.info("ai_turn_taken_over", turn=turn.id, issue_key=turn.issue_key)
            return
        error = f"{type(exc).__name__}: {exc}"[:1000]
        permanent = isinstance(exc, (AiRejected, JiraRejected)) and not isinstance(exc, IssueNotFound)
        attempts = turn.attempts + 1
        if permanent or attempts >= service.assistant.max_attempts:
            self.turns.mark_failed(turn.id, error=error)
            log.error("ai_turn_failed", turn=turn.id, issue_key=turn.issue_key, error=error)
            if not isinstance(exc, IssueNotFound):
                self.notes.post(
                    turn.issue_key,
                    ref=f"ai-failed:{turn.id}",
                    text=f"The AI assistant could not answer the customer's last message ({error}). "
                    "Please reply yourself.",
                )
            return
        retry_after = getattr(exc, "retry_after", None)
        delay = retry_after or retry_delay(attempts, base=2.0, cap=60.0)
        self.turns.mark_retry(turn.id, error=error, delay_seconds=delay)
        log.warning("ai_turn_retry", turn=turn.id, attempts=attempts, error=error, retry_in=round(delay, 1))


def _our_reply(raw_comments: list[dict[str, Any]], turn_id: int) -> tuple[str, str, str | None] | None:
    """(comment id, reply text, hand-over reason or None) of the `[AI]` comment this turn
    already posted, if any."""
    for comment in raw_comments:
        mark = read_comment(comment.get("properties"))
        if mark is not None and mark.kind == KIND_AI and mark.turn == turn_id:
            text = comment_view("", comment).text
            reason = (mark.reason or NO_REASON) if mark.handover else None
            return str(comment["id"]), text.removeprefix("[AI]").strip(), reason
    return None


def _utc_midnight(now: float) -> float:
    day = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


__all__ = ["AiError", "AiJob"]
