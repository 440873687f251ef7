"""Backlog drain: messages queued during a Jira outage, delivered once Jira is back. Run by hand:

    python -m tests.benchmarks.backlog_drain                      # 10,000 over 500, 4 and 16 workers
    python -m tests.benchmarks.backlog_drain --messages 1000 --conversations 50 --workers 4
    WAJIRA_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        python -m tests.benchmarks.backlog_drain --engine postgres --json drain.json

Not collected by pytest (no `test_` prefix). For each `--workers` value (`[inbox] workers`), a
fresh `wajira run` and database (SQLite in a temporary directory, or an isolated PostgreSQL or
MariaDB database, tests/support/databases.py) against the Jira sandbox, run in this process:

1. outage: Jira answers every call 503 while `--messages` signed one-message webhooks arrive,
   spread over `--conversations` conversations ("c0007 m03" is conversation 7's third
   message; Meta timestamps and arrival order agree). We wait until `wajira status --json`
   counts every one stored.
2. recovery: the 503s stop, every Jira call takes `--latency` seconds, and a burst of
   `--burst` answers 429 with `Retry-After: --retry-after` follows at once; a second burst
   comes when half the messages are in. The clock runs until the last message is a comment.
3. checks, from the sandbox's own records: every message a comment exactly once (duplicates,
   missing), each ticket's comments in message order (order violations: a comment whose
   number is not above the one before it, or that sits on another conversation's ticket),
   one ticket per conversation, and the daemon's queue all done. For each 429 the sandbox
   answered, on its arrival times: how soon the inbox called again (any conversation, and the
   same conversation) and how many calls arrived inside the Retry-After window. Calls are told
   apart by what they are (a comment, a create, the ticket opener's `created >=` search, a
   retry's newest-first comment lookup; the poll job's `updated >=` and `issue in (…)` searches
   and oldest-first comment reads), so the inbox's 429s and the poll job's are judged apart,
   and calls of one after the other's 429 are counted as "cross".

The inbox runs with the e2e harness's timings (sweep every 1 s, outage back-off 0.2 s doubling
to 2 s), so the figure is the drain, not the back-off Jira's recovery happened to meet; the
poller keeps the shipped 30 s interval and live-chat passes. The sandbox and the daemon share
this machine's CPUs: CPU seconds of each, `os.cpu_count()` and the load average are printed
with the figures.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sandbox import whatsapp_payloads as wa
from sandbox.jira import JiraSandbox
from sandbox.jira.app import JiraApp
from sandbox.jira.web import Request
from sandbox.meta import MetaSender
from sandbox.web import Response
from tests.benchmarks.bench import JIRA_EMAIL, JIRA_TOKEN, machine
from tests.e2e.harness import APP_SECRET, REPO, DaemonProcess, config_text, free_port
from tests.support.databases import ENGINES, isolated_url

MARK = re.compile(r"\bc(\d+) m(\d+)\b")
ISSUE_IN_PATH = re.compile(r"/issue/([A-Z][A-Z0-9_]*-\d+)")
SENDERS = 8  # concurrent webhook clients while the backlog builds


# -- the sandbox, recording every call with its times ------------------------------------------


@dataclass(frozen=True)
class JiraCall:
    """One API request as the sandbox saw it (monotonic seconds of this process)."""

    arrived: float  # before the injected latency
    answered: float
    method: str
    path: str
    kind: str  # comment_post, create, ticket_search, comment_lookup, other; POLL_KINDS
    status: int
    retry_after: float | None
    mark: tuple[int, int] | None  # (conversation, message) named in the body
    issue_key: str | None  # in the path, or the one a create made


POLL_KINDS = (
    "poll",
    "hot_poll",
    "poll_comments",
    "myself",
)  # the poll job's searches; every other call is the inbox's


def _kind(request: Request) -> str:
    """What the daemon was doing: the inbox's comment, create or ticket search, or a poll."""
    method, path = request.method, request.path
    if "/search" in path:
        jql = request.arg("jql") or ""
        if not jql and method == "POST":
            jql = str(request.json_object().get("jql", ""))
        if jql.startswith("issue in ("):
            return "hot_poll"
        # The ticket opener looks for an uncertain creation by `created`; the poll by `updated`.
        return "ticket_search" if "created >=" in jql else "poll"
    if path.rstrip("/").endswith("/myself"):
        return "myself"  # the poll job learning the bot account's id
    if path.rstrip("/").endswith("/comment/list"):
        return "poll_comments"  # the poll reading new comments of many tickets at once
    if path.rstrip("/").endswith("/comment"):
        if method == "POST":
            return "comment_post"
        # Newest first: a retry looking for its own comment; oldest first: the poll reading a ticket.
        return "comment_lookup" if request.arg("orderBy") == "-created" else "poll_comments"
    if method == "POST" and re.search(r"/rest/api/\d/issue/?$", path):
        return "create"
    return "other"


class RecordingJiraApp(JiraApp):
    """The sandbox's app, keeping a timed record of every API call and the delivered marks."""

    def __init__(self, sandbox: JiraSandbox) -> None:
        super().__init__(sandbox)
        self.record: list[JiraCall] = []
        self.delivered: set[tuple[int, int]] = set()
        self.comments_posted = 0
        self._lock = threading.Lock()

    def respond(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return super().respond(request)
        arrived = time.monotonic()
        response = super().respond(request)
        answered = time.monotonic()
        kind = _kind(request)
        found = MARK.search(request.body.decode("utf-8", errors="replace"))
        mark = (int(found.group(1)), int(found.group(2))) if found else None
        in_path = ISSUE_IN_PATH.search(request.path)
        issue_key = in_path.group(1) if in_path else None
        if kind == "create" and response.status == 201 and isinstance(response.body, dict):
            issue_key = str(response.body.get("key"))
        retry_after = response.headers.get("Retry-After")
        call = JiraCall(
            arrived,
            answered,
            request.method,
            request.path,
            kind,
            response.status,
            float(retry_after) if retry_after else None,
            mark,
            issue_key,
        )
        with self._lock:
            self.record.append(call)
            if kind == "comment_post" and response.status == 201:
                self.comments_posted += 1
                if mark is not None:
                    self.delivered.add(mark)
        return response

    def delivered_count(self) -> int:
        with self._lock:
            return len(self.delivered)

    def timed_calls(self) -> list[JiraCall]:
        with self._lock:
            return list(self.record)


def recording_sandbox() -> tuple[JiraSandbox, RecordingJiraApp]:
    jira = JiraSandbox(email=JIRA_EMAIL, api_token=JIRA_TOKEN)
    app = RecordingJiraApp(jira)
    jira.app = app  # before start(): the server takes the app then
    return jira, app


# -- the backlog ----------------------------------------------------------------------------------


def phone_of(conversation: int) -> str:
    return f"447700{conversation:06d}"


def send_backlog(url: str, conversations: int, per_conversation: int) -> int:
    """POST every message as its own signed webhook; returns the non-200 answers (after retries).

    Each sender thread owns some conversations and sends their messages in order, so arrival
    order and Meta timestamps agree within a conversation.
    """
    base = int(time.time()) - per_conversation - 5
    width = max(2, len(str(per_conversation)))
    failures = [0] * SENDERS

    def sender(n: int) -> None:
        meta = MetaSender(url, APP_SECRET)
        mine = range(n, conversations, SENDERS)
        for m in range(1, per_conversation + 1):
            for c in mine:
                text = f"c{c:04d} m{m:0{width}d}"
                payload = wa.message_payload(
                    [wa.text(phone_of(c), text, timestamp=base + m)],
                    contacts=[wa.contact(f"Customer {c}", phone_of(c))],
                )
                if meta.deliver(payload, retries_until_200=True, max_tries=20, delay=0.5) != 200:
                    failures[n] += 1

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(failures)


def queue_counts(config: Path) -> dict[str, Any]:
    """The inbound queue as `wajira status --json` reports it (the operator's own view)."""
    out = subprocess.run(
        [sys.executable, "-m", "bot", "status", "--config", str(config), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    inbound: dict[str, Any] = json.loads(out.stdout)["inbound"]
    return inbound


def stored(counts: dict[str, Any]) -> int:
    return int(counts.get("pending", 0)) + int(counts.get("done", 0)) + int(counts.get("dead", 0))


# -- the checks -------------------------------------------------------------------------------------


@dataclass
class JiraState:
    tickets: int = 0
    comments: int = 0
    duplicates: int = 0
    missing: int = 0
    order_violations: int = 0
    misplaced: int = 0
    conversations_with_several_tickets: int = 0


def check_jira(jira: JiraSandbox, conversations: int, per_conversation: int) -> JiraState:
    """Every message once, in order, on its own conversation's one ticket."""
    state = JiraState()
    seen: Counter[tuple[int, int]] = Counter()
    tickets_of: Counter[int] = Counter()
    for issue in jira.issues():
        state.tickets += 1
        owner_mark = MARK.search(json.dumps(issue["description"]))
        owner = int(owner_mark.group(1)) if owner_mark else None
        tickets_of[owner if owner is not None else -1] += 1
        previous = 0
        for comment in jira.comments(issue["key"]):
            found = MARK.search(json.dumps(comment["body"]))
            if found is None:
                continue
            state.comments += 1
            conversation, number = int(found.group(1)), int(found.group(2))
            seen[(conversation, number)] += 1
            if conversation != owner:
                state.misplaced += 1
                continue
            if number <= previous:
                state.order_violations += 1
            previous = max(previous, number)
    expected = {(c, m) for c in range(conversations) for m in range(1, per_conversation + 1)}
    state.duplicates = sum(n - 1 for n in seen.values() if n > 1)
    state.missing = len(expected - set(seen))
    state.conversations_with_several_tickets = sum(1 for n in tickets_of.values() if n > 1)
    return state


@dataclass
class RateLimitFindings:
    met: int = 0  # 429 answers the inbox met
    met_by_poll: int = 0  # 429 answers the poll job's searches met
    retry_after: float | None = None
    first_inbox_call_after: float | None = None  # seconds from an inbox 429 to the next inbox call
    first_same_conversation_after: float | None = None  # ... to that conversation's next call
    first_search_after_poll_429: float | None = None  # seconds from a poll 429 to the next search
    # Calls arriving before a 429's Retry-After had passed, by who met the 429 and who called:
    inbox_calls_in_window: int = 0  # the inbox, after a 429 the inbox met
    latest_inbox_call_in_window: float | None = None  # its largest distance from that 429
    poll_calls_in_window: int = 0  # the poll job, after a 429 it met
    cross_calls_in_window: int = 0  # either one, after a 429 the other met
    in_window_by_kind: dict[str, int] = field(default_factory=dict)  # the inbox's own, by kind


def _smallest(current: float | None, value: float | None) -> float | None:
    if value is None:
        return current
    return value if current is None else min(current, value)


def _first_gap(
    ordered: list[JiraCall], start: int, since: float, wanted: Callable[[JiraCall], bool]
) -> float | None:
    """Seconds from `since` to the arrival of the first call from `start` on that is `wanted`."""
    for call in ordered[start:]:
        if wanted(call):
            return call.arrived - since
    return None


def rate_limit_findings(calls: list[JiraCall]) -> RateLimitFindings:
    """How the daemon behaved after each 429, measured on the sandbox's arrival times."""
    out = RateLimitFindings()
    conversation_of_issue = {
        c.issue_key: c.mark[0]
        for c in calls
        if c.kind == "create" and c.status == 201 and c.mark and c.issue_key
    }

    def conversation(call: JiraCall) -> int | None:
        if call.mark is not None:
            return call.mark[0]
        return conversation_of_issue.get(call.issue_key) if call.issue_key else None

    def by_inbox(call: JiraCall) -> bool:
        return call.kind not in POLL_KINDS

    def of_conversation(wanted: int) -> Callable[[JiraCall], bool]:
        return lambda call: conversation(call) == wanted

    ordered = sorted(calls, key=lambda c: c.arrived)
    arrivals = [c.arrived for c in ordered]
    own_window: set[int] = set()
    cross_window: set[int] = set()
    for limited in (c for c in ordered if c.status == 429):
        out.retry_after = limited.retry_after
        start = bisect.bisect_right(arrivals, limited.answered)
        end = bisect.bisect_left(arrivals, limited.answered + (limited.retry_after or 0.0))
        for index in range(start, end):
            if by_inbox(ordered[index]) != by_inbox(limited):
                cross_window.add(index)
                continue
            own_window.add(index)
            if by_inbox(limited):
                late = ordered[index].arrived - limited.answered
                out.latest_inbox_call_in_window = max(out.latest_inbox_call_in_window or 0.0, late)
        if not by_inbox(limited):
            out.met_by_poll += 1
            gap = _first_gap(ordered, start, limited.answered, lambda c: not by_inbox(c))
            out.first_search_after_poll_429 = _smallest(out.first_search_after_poll_429, gap)
            continue
        out.met += 1
        gap = _first_gap(ordered, start, limited.answered, by_inbox)
        out.first_inbox_call_after = _smallest(out.first_inbox_call_after, gap)
        own = conversation(limited)
        if own is not None:
            gap = _first_gap(ordered, start, limited.answered, of_conversation(own))
            out.first_same_conversation_after = _smallest(out.first_same_conversation_after, gap)
    kinds: Counter[str] = Counter(ordered[index].kind for index in own_window)
    out.poll_calls_in_window = sum(kinds.pop(kind, 0) for kind in POLL_KINDS)
    out.inbox_calls_in_window = sum(kinds.values())
    out.in_window_by_kind = dict(kinds)
    out.cross_calls_in_window = len(cross_window - own_window)
    return out


# -- one run ---------------------------------------------------------------------------------------


@dataclass
class DrainRun:
    workers: int
    engine: str
    messages: int
    conversations: int
    ingest_seconds: float = 0.0
    ingest_failures: int = 0
    outage_calls: int = 0
    first_comment_after: float | None = None  # seconds from Jira's return to the first comment
    drain_seconds: float | None = None  # from Jira's return to the last message in Jira
    delivered: int = 0
    messages_per_second: float | None = None  # delivered / drain_seconds
    steady_per_second: float | None = None  # delivered / (last comment - first comment)
    jira_calls: int = 0
    calls_by_kind: dict[str, int] = field(default_factory=dict)
    comment_posts: int = 0
    queue_after: dict[str, Any] = field(default_factory=dict)
    jira: JiraState = field(default_factory=JiraState)
    rate_limits: RateLimitFindings = field(default_factory=RateLimitFindings)
    daemon_cpu_seconds: float = 0.0
    sandbox_cpu_seconds: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    timed_out: bool = False


def write_config(workdir: Path, name: str, jira_url: str, db_url: str, workers: int, port: int) -> Path:
    text = config_text(
        jira_url=jira_url,
        jira_email=JIRA_EMAIL,
        jira_api_token=JIRA_TOKEN,
        db_url=db_url,
        port=port,
        poll_interval=30,
        inbox=f"workers = {workers}",
    )
    path = workdir / f"{name}.toml"
    path.write_text(text)
    return path


def drain_once(workdir: Path, workers: int, args: argparse.Namespace) -> DrainRun:
    per_conversation = args.messages // args.conversations
    total = per_conversation * args.conversations
    run = DrainRun(workers, args.engine, total, args.conversations)
    jira, app = recording_sandbox()
    jira.start()
    jira.faults.fail_for(24 * 3600, 503)
    db_url, cleanup = isolated_url(args.engine)
    port = free_port()
    name = f"drain-{workers}"
    config = write_config(workdir, name, jira.url, db_url, workers, port)
    daemon = DaemonProcess(config, port, workdir / f"{name}.log")
    try:
        daemon.start()
        started = time.monotonic()
        run.ingest_failures = send_backlog(daemon.webhook_url, args.conversations, per_conversation)
        deadline = time.monotonic() + 300
        while stored(queue_counts(config)) < total and time.monotonic() < deadline:
            time.sleep(1)
        run.ingest_seconds = time.monotonic() - started
        run.outage_calls = len(app.timed_calls())
        print(
            f"  workers={workers}: {total} messages stored in {run.ingest_seconds:.1f}s "
            f"({run.outage_calls} Jira calls met the outage); Jira back",
            flush=True,
        )

        run.load_before = os.getloadavg()
        daemon_cpu, sandbox_cpu = daemon.cpu_seconds(), time.process_time()
        back = time.monotonic()
        jira.faults.clear()  # the outage ends; latency and the first 429 burst follow at once
        jira.faults.set_latency(args.latency)
        jira.faults.fail_next(429, args.burst, retry_after=args.retry_after)
        second_burst = False
        deadline = back + args.timeout
        while app.delivered_count() < total and time.monotonic() < deadline:
            if not second_burst and app.delivered_count() >= total // 2:
                jira.faults.fail_next(429, args.burst, retry_after=args.retry_after)
                second_burst = True
            time.sleep(0.05)
        run.timed_out = app.delivered_count() < total
        run.daemon_cpu_seconds = daemon.cpu_seconds() - daemon_cpu
        run.sandbox_cpu_seconds = time.process_time() - sandbox_cpu
        run.load_after = os.getloadavg()

        calls = [c for c in app.timed_calls() if c.arrived >= back]
        if args.keep:
            lines = (
                json.dumps({**asdict(c), "arrived": c.arrived - back, "answered": c.answered - back})
                for c in calls
            )
            (workdir / f"{name}-jira-calls.jsonl").write_text("\n".join(lines) + "\n")
        comments = sorted(c.answered for c in calls if c.kind == "comment_post" and c.status == 201)
        run.delivered = app.delivered_count()
        if comments:
            run.first_comment_after = comments[0] - back
            run.drain_seconds = comments[-1] - back
            run.messages_per_second = run.delivered / run.drain_seconds
            if comments[-1] > comments[0]:
                run.steady_per_second = run.delivered / (comments[-1] - comments[0])
        run.jira_calls = len(calls)
        run.calls_by_kind = dict(Counter(c.kind for c in calls))
        run.comment_posts = app.comments_posted
        run.rate_limits = rate_limit_findings(calls)
        settled = time.monotonic() + 30  # the last rows' `done` commits follow their comments
        run.queue_after = queue_counts(config)
        while run.queue_after.get("pending") and time.monotonic() < settled:
            time.sleep(0.5)
            run.queue_after = queue_counts(config)
        run.jira = check_jira(jira, args.conversations, per_conversation)
    finally:
        daemon.terminate()
        jira.stop()
        cleanup()
    return run


# -- report -----------------------------------------------------------------------------------------


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(runs: list[DrainRun], args: argparse.Namespace) -> None:
    m = machine()
    print(
        f"\nmachine: os.cpu_count()={m['nproc']}, {m['cpu']}, {m['memory']}, Python {m['python']}, "
        f"SQLite {m['sqlite']}; engine {args.engine}"
    )
    print(
        f"Jira latency {args.latency * 1000:.0f} ms per call; two bursts of {args.burst} x 429 "
        f"(Retry-After: {args.retry_after:g}) at recovery and at half-drain\n"
    )
    print(
        f"{'workers':>7} {'messages':>8} {'drain s':>8} {'msg/s':>7} {'steady':>7} {'Jira calls':>10} {'429s':>7} "
        f"{'1st call':>8} {'same conv':>9} {'in window':>14} {'order':>5} {'dups':>4} {'missing':>7} "
        f"{'daemon CPU':>10} {'sandbox CPU':>11} {'load before/after':>17}"
    )
    for r in runs:
        rl = r.rate_limits
        print(
            f"{r.workers:>7} {r.messages:>8} {_num(r.drain_seconds, '.1f'):>8} "
            f"{_num(r.messages_per_second, '.1f'):>7} {_num(r.steady_per_second, '.1f'):>7} {r.jira_calls:>10} {f'{rl.met}+{rl.met_by_poll}':>7} "
            f"{_num(rl.first_inbox_call_after, '.3f'):>8} {_num(rl.first_same_conversation_after, '.3f'):>9} "
            f"{f'{rl.inbox_calls_in_window}+{rl.poll_calls_in_window}+{rl.cross_calls_in_window}':>14} "
            f"{r.jira.order_violations + r.jira.misplaced:>5} {r.jira.duplicates:>4} {r.jira.missing:>7} "
            f"{_share(r.daemon_cpu_seconds, r.drain_seconds):>10} "
            f"{_share(r.sandbox_cpu_seconds, r.drain_seconds):>11} "
            f"{r.load_before[0]:>8.2f}/{r.load_after[0]:<8.2f}"
        )
    print(
        "\nmsg/s: messages / seconds from Jira's return to the last comment; steady: from the first comment;"
        "\n429s: met by the inbox + by the poll job's searches; "
        "1st call: seconds from an inbox 429's answer to the next inbox call (any conversation); same conv: "
        "to that conversation's next call;\nin window: calls arriving before a 429's Retry-After passed: "
        "the inbox's after its own 429s + the poll's after its own + either after the other's;\norder: comments out of order or on another conversation's ticket;\nCPU: seconds used "
        "during the drain as a share of one core (the sandbox is this process)."
    )
    for r in runs:
        print(
            f"\nworkers={r.workers}: ingest {r.ingest_seconds:.1f}s ({r.ingest_failures} webhooks refused), "
            f"first comment {_num(r.first_comment_after, '.2f')}s after Jira came back, "
            f"{r.jira.tickets} tickets ({r.jira.conversations_with_several_tickets} conversations with more "
            f"than one), {r.jira.comments} comments ({r.comment_posts} POSTs answered 201)"
            f"{', TIMED OUT' if r.timed_out else ''}"
        )
        print(
            f"  Jira calls by kind: {r.calls_by_kind}; inbox calls inside its own Retry-After windows: "
            f"{r.rate_limits.in_window_by_kind}, the latest {_num(r.rate_limits.latest_inbox_call_in_window, '.3f')}s "
            f"after its 429; first poll call after a poll 429: "
            f"{_num(r.rate_limits.first_search_after_poll_429, '.3f')}s"
        )
        print(f"  queue after: {r.queue_after}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[4, 16], help="[inbox] workers, one run each"
    )
    parser.add_argument("--engine", choices=ENGINES, default="sqlite")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per Jira call")
    parser.add_argument("--burst", type=int, default=20, help="429 answers per burst")
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for one drain")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", type=Path, help="keep configs, daemon logs and Jira call records here")
    args = parser.parse_args(argv)
    if args.messages < args.conversations:
        parser.error("--messages must be at least --conversations")
    runs = []
    with tempfile.TemporaryDirectory(prefix="wajira-drain-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for workers in args.workers:
            runs.append(drain_once(workdir, workers, args))
    report(runs, args)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
        print(f"\nwrote {args.json}")
    clean = all(
        not r.timed_out
        and r.jira.duplicates + r.jira.missing + r.jira.order_violations + r.jira.misplaced == 0
        for r in runs
    )
    return 0 if clean else 1


def _share(cpu_seconds: float, wall: float | None) -> str:
    return f"{cpu_seconds / wall:.0%}" if wall else "-"


if __name__ == "__main__":
    sys.exit(main())
