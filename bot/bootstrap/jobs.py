"""Job parts: the jobs over storage and the vendors, their schedule, and who nudges whom."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.bootstrap.knowledge import knowledge_bases, ranker
from bot.bootstrap.storage import Storage
from bot.bootstrap.vendors import Vendors
from bot.config import Settings
from bot.metrics import Metrics
from jobs.ai import AiJob
from jobs.csat import CsatDesk
from jobs.hand_over import HandOver
from jobs.housekeeping import HOUSEKEEPING_INTERVAL_SECONDS, HousekeepingJob
from jobs.inbox import InboxJob
from jobs.lifecycle import IssueStateRecorder
from jobs.media import MediaEnqueuer, MediaJob, MediaPolicy
from jobs.notes import Notes
from jobs.notices import CustomerNotices
from jobs.outbox import OutboxJob
from jobs.poll import PollJob
from jobs.reference import ReferenceFinder
from jobs.scheduler import NudgeableJob, Scheduler
from jobs.tickets import TicketOpener
from storage.retention import Retention


@dataclass(frozen=True)
class Schedule:
    """Each job as the scheduler runs it: `nudge()` runs it now, `nudge_at(t)` at t."""

    inbox: NudgeableJob
    media: NudgeableJob
    poll: NudgeableJob
    hot_poll: NudgeableJob | None
    """The live-chat pass (`[poller] hot_interval_seconds`); None with `hot_minutes = 0`."""
    ai: NudgeableJob
    outbox: NudgeableJob
    housekeeping: NudgeableJob
    """Deletes finished rows past `[storage] retention_days`, hourly and once at start."""


@dataclass(frozen=True)
class Runners:
    """The jobs themselves: each `run()` is one pass (`catch-up` calls them directly)."""

    poll: PollJob
    tickets: TicketOpener
    inbox: InboxJob
    ai: AiJob
    outbox: OutboxJob
    media: MediaJob
    notices: CustomerNotices
    housekeeping: HousekeepingJob


@dataclass(frozen=True)
class Jobs:
    scheduler: Scheduler
    """Not started: `run` starts it, `catch-up` never does."""
    schedule: Schedule
    runners: Runners


def build_jobs(
    settings: Settings,
    storage: Storage,
    vendors: Vendors,
    *,
    owner: str,
    clock: Callable[[], float],
    metrics: Metrics,
) -> Jobs:
    """The jobs, scheduled and wired to nudge each other."""
    runners = _runners(settings, storage, vendors, owner=owner, clock=clock, metrics=metrics)
    # A thread for every interval job, the watchdog and the short nudge_at runs: the watchdog
    # job then starves only when jobs are truly stuck (see bot.daemon.Daemon._schedule_watchdog).
    scheduler = Scheduler(max_workers=8)
    return Jobs(scheduler, _schedule(scheduler, runners, settings, storage), runners)


def _runners(
    settings: Settings,
    storage: Storage,
    vendors: Vendors,
    *,
    owner: str,
    clock: Callable[[], float],
    metrics: Metrics,
) -> Runners:
    s, st, v = settings, storage, vendors
    notes = Notes(v.jira)
    poll = PollJob(
        settings=s,
        jira=v.jira,
        state=st.poll_state,
        handled=st.handled,
        leases=st.leases,
        switch=st.ai_switch,
        window=st.inbound.window,
        hot=st.hot_tickets,
        owner=owner,
        clock=clock,
    )
    # The ticket lifecycle learns each issue's status from what the poll reads anyway.
    poll.on_issue_seen.append(IssueStateRecorder(st.issue_states))
    # Customer notices: status entries from the same reads, the acknowledgement and out-of-hours
    # text after the inbox delivered a message.
    notices = CustomerNotices(
        settings=s,
        outbound=st.outbound,
        inbound=st.inbound,
        watch=st.status_watch,
        window=st.inbound.window,
        clock=clock,
    )
    poll.on_issue_seen.append(notices.status_seen)
    tickets = TicketOpener(
        v.jira, st.mappings, clock=clock, states=st.issue_states, history=st.ticket_history
    )
    inbox = InboxJob(
        settings=s,
        queue=st.inbound,
        leases=st.leases,
        jira=v.jira,
        tickets=tickets,
        owner=owner,
        clock=clock,
        csat=CsatDesk(st.outbound, st.csat, v.jira, clock=clock),
    )
    ai = AiJob(
        settings=s,
        jira=v.jira,
        ai=v.ai,
        graph=v.graph,
        turns=st.turns,
        handled=st.handled,
        inbound=st.inbound.window,
        notes=notes,
        switch=st.ai_switch,
        owner=owner,
        clock=clock,
        on_tokens=lambda service_id, tokens: metrics.ai_tokens.labels(service_id).inc(tokens),
        reference=ReferenceFinder(jira=v.jira, knowledge=knowledge_bases(s), rank=ranker()),
        hand_over=HandOver(v.jira, notes, st.handled, clock=clock),
    )
    outbox = OutboxJob(
        settings=s,
        graph=v.graph,
        jira=v.jira,
        outbound=st.outbound,
        statuses=st.statuses,
        inbound=st.inbound.window,
        notes=notes,
        owner=owner,
        clock=clock,
    )
    media = MediaJob(
        tasks=st.media_tasks,
        graph=v.graph,
        jira=v.jira,
        notes=notes,
        owner=owner,
        policy=MediaPolicy(max_bytes=s.media.max_bytes),
        clock=clock,
    )
    housekeeping = HousekeepingJob(
        settings=s,
        retention=Retention(st.db),
        leases=st.leases,
        owner=owner,
        clock=clock,
        on_deleted=lambda table, rows: metrics.housekeeping_deleted.labels(table).inc(rows),
    )
    return Runners(poll, tickets, inbox, ai, outbox, media, notices, housekeeping)


def _schedule(scheduler: Scheduler, runners: Runners, settings: Settings, storage: Storage) -> Schedule:
    s, r = settings, runners
    inbox = scheduler.add("inbox", r.inbox.run, s.inbox.interval_seconds)
    # Media downloads start once the comment naming them is in Jira, never before.
    media = scheduler.add("media", r.media.run, s.inbox.interval_seconds)
    r.inbox.on_delivered.append(MediaEnqueuer(storage.media_tasks, on_enqueued=media.nudge))
    r.inbox.on_delivered.append(r.notices.after_delivery)
    poll = scheduler.add("poll", r.poll.run, s.poller.interval_seconds)
    hot_poll = (
        scheduler.add("poll_hot", r.poll.run_hot, s.poller.hot_interval_seconds)
        if s.poller.hot_minutes > 0
        else None
    )
    ai = scheduler.add("ai", r.ai.run, max(1, s.poller.interval_seconds))
    outbox = scheduler.add("outbox", r.outbox.run, s.outbox.interval_seconds)
    # Also at start: a fresh instance sweeps at once, unless another one swept within the hour.
    housekeeping = scheduler.add("housekeeping", r.housekeeping.run, HOUSEKEEPING_INTERVAL_SECONDS)

    def after_inbox_write(issue_key: str) -> None:
        r.poll.note_write(issue_key, r.tickets.created_ids.get(issue_key))
        poll.nudge()

    r.inbox.after_write = after_inbox_write
    r.poll.on_ai_turn = ai.nudge_at
    r.ai.wake_at = ai.nudge_at
    r.poll.on_outbound = outbox.nudge
    r.ai.on_outbound = outbox.nudge
    r.notices.on_queued = outbox.nudge
    return Schedule(
        inbox=inbox,
        media=media,
        poll=poll,
        hot_poll=hot_poll,
        ai=ai,
        outbox=outbox,
        housekeeping=housekeeping,
    )
