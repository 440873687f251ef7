"""Offline evaluation of the AI's reference material (issue 14): does the knowledge section or
the resolved ticket that answers a question reach the model, and what does it cost in Jira calls?
Run by hand:

    python -m tests.benchmarks.ai_eval              # the table
    python -m tests.benchmarks.ai_eval --verbose    # and every miss, with what came instead

Not collected by pytest (no `test_` prefix); `tests/unit/test_ai_eval_data.py` checks the data and
runs a few questions. The data is in `ai_eval_data/`: three Markdown knowledge files of a
fictional homeware shop, `tickets.json` (resolved tickets, some with an internal note, and a few
unresolved ones) and `questions.json` (each question with the sources that answer it).

The real pieces run: `jobs.reference.ReferenceFinder` with the daemon's ranker, the real
`KnowledgeBase` on the files, and the real `JiraAdapter` against the loopback Jira sandbox, which
counts every call. Each question gets a new open ticket with the question as the customer's
WhatsApp comment, as the bot writes it, and one `find` on it; the clock moves past the cache
window between questions, so no question is served from another's cache. Then the same `find`
again at the same moment shows what the cache saves.

A hit: one of the question's sources is among the first 3 of its kind in the Reference (sections
for `file#Title`, tickets for `ticket:Txx`), i.e. in what fitted the budget, what the model sees.
"ranked" figures measure the same before the budget and the `resolved_examples` cut.
Exit status 1 if an internal note or an unresolved ticket ever reached the reference material.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.ai.knowledge import KnowledgeBase
from bot.bootstrap.knowledge import ranker
from bot.config import ServiceSettings
from bot.config.model import AssistantSettings
from bot.jira_api.adapter import JiraAdapter
from bot.logs import configure
from bot.rules.classify import comment_view
from bot.rules.comment_property import customer_value, ticket_properties
from bot.rules.knowledge import Section
from bot.rules.render import ticket_description, ticket_summary
from jobs.reference import Rank, ReferenceFinder
from sandbox.jira import JiraSandbox

DATA = Path(__file__).parent / "ai_eval_data"
TOP = 3
INTERNAL_MARK = "INTERNAL-ONLY"
UNRESOLVED_MARK = "UNRESOLVED-"
TICKET = "ticket:"
BOT_ACCOUNT = "bot-account-id"  # the sandbox's bot account, which the adapter writes as
JIRA_EMAIL, JIRA_TOKEN = "bot@example.com", "ai-eval-jira-token"
BUSINESS_NUMBER = "+34 960 000 000"
CACHE_SECONDS = 60.0


# -- the data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    id: str
    resolved: bool
    customer: str
    question: str
    summary: str | None = None
    """None: the bot's own summary, as on a ticket no agent renamed."""
    answer: str | None = None
    followup: str | None = None
    internal: str | None = None
    status: str = "Done"
    category: str = "done"


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    expect: tuple[str, ...]
    """`file#Title` of a section or `ticket:Txx`; any of them in the top 3 is a hit."""
    tags: tuple[str, ...] = ()


def load_tickets(path: Path = DATA / "tickets.json") -> tuple[str, list[Ticket]]:
    """(project key, tickets) from the data file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["project"], [Ticket(**t) for t in data["tickets"]]


def load_questions(path: Path = DATA / "questions.json") -> list[Question]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        Question(q["id"], q["text"], tuple(q["expect"]), tuple(q.get("tags", ()))) for q in data["questions"]
    ]


def knowledge_files(folder: Path = DATA / "knowledge") -> list[tuple[str, Path]]:
    """(name, path) of each knowledge file, as the daemon names them (the file name)."""
    return [(p.name, p) for p in sorted(folder.glob("*.md"))]


def section_id(section: Section) -> str:
    return f"{section.source}#{section.title}"


# -- one run ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    question: Question
    sections: list[str]
    """In the Reference, in order."""
    tickets: list[str]
    """Ticket ids (`ticket:Txx`) in the Reference, in order."""
    ranked_sections: list[str]
    ranked_tickets: list[str]
    """Before the budget and the `resolved_examples` cut."""
    calls: int
    searches: int
    cached_searches: int
    """Searches of the same `find` again within the cache window."""
    seconds: float
    leaks: list[str] = field(default_factory=list)

    def rank(self, *, ranked: bool = False) -> int | None:
        """1-based position of the best-placed expected source in its own list; None when absent."""
        sections = self.ranked_sections if ranked else self.sections
        tickets = self.ranked_tickets if ranked else self.tickets
        positions = []
        for source in self.question.expect:
            found = tickets if source.startswith(TICKET) else sections
            if source in found:
                positions.append(found.index(source) + 1)
        return min(positions, default=None)

    def hit(self, *, ranked: bool = False) -> bool:
        position = self.rank(ranked=ranked)
        return position is not None and position <= TOP


class _RecordingKnowledge:
    """The knowledge base, remembering what its last search ranked."""

    def __init__(self, base: KnowledgeBase) -> None:
        self.base = base
        self.last: list[str] = []

    def search(self, terms: Sequence[str], *, limit: int = 5) -> list[Section]:
        found = self.base.search(terms, limit=limit)
        self.last = [section_id(s) for s in found]
        return found


class _RecordingRank:
    """The daemon's ranker, remembering which seeded tickets it put first (told apart by the
    customer's question, which is in each ticket's description)."""

    def __init__(self, rank: Rank, tickets: Sequence[Ticket]) -> None:
        self.rank = rank
        self.tickets = tickets
        self.last: list[str] = []

    def __call__(self, terms: Sequence[str], documents: Sequence[str]) -> list[int]:
        order = self.rank(terms, documents)
        self.last = [self._which(documents[i]) for i in order]
        return order

    def _which(self, document: str) -> str:
        return next((TICKET + t.id for t in self.tickets if t.question in document), "?")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _phone(index: int) -> tuple[str, str]:
    """(display phone, wa_id) of a made-up customer."""
    return f"+34 600 000 {index:03d}", f"34600000{index:03d}"


def _open_ticket(
    jira: JiraAdapter, project: str, name: str, index: int, first_message: str, summary: str | None = None
) -> str:
    phone, wa_id = _phone(index)
    ref = jira.create_issue(
        project_key=project,
        issue_type="Task",
        summary=summary or ticket_summary(name, phone),
        description=ticket_description(name, phone, wa_id, BUSINESS_NUMBER, first_message),
        labels=["whatsapp"],
        properties=ticket_properties(
            conversation=f"eval:{wa_id}", wa_id=wa_id, user_id=None, service="shop", phone_number_id=None
        ),
    )
    return ref.key


def _customer_says(jira: JiraAdapter, key: str, name: str, text: str, wamid: str) -> None:
    jira.add_comment(key, f"[WhatsApp] {name}: {text}", prop=customer_value(wamid))


def seed(sandbox: JiraSandbox, jira: JiraAdapter, project: str, tickets: Sequence[Ticket]) -> dict[str, str]:
    """Create the tickets as the bot and the agents would have; returns `ticket:Txx` → Jira key."""
    sandbox.add_project(project)
    keys: dict[str, str] = {}
    for index, t in enumerate(tickets):
        # A summary an agent wrote, or the bot's own: the same ticket as after a rename.
        key = _open_ticket(jira, project, t.customer, index, t.question, t.summary)
        _customer_says(jira, key, t.customer, t.question, f"wamid.eval-{t.id}-1")
        if t.answer:
            sandbox.add_agent_comment(key, t.answer)
        if t.followup:
            _customer_says(jira, key, t.customer, t.followup, f"wamid.eval-{t.id}-2")
        if t.internal:
            sandbox.add_agent_comment(key, t.internal, internal=True)
        sandbox.set_status(key, t.status, t.category)
        keys[TICKET + t.id] = key
    return keys


@dataclass
class Bench:
    """Everything one evaluation run holds: the sandbox, the real adapter, the finder under test."""

    sandbox: JiraSandbox
    jira: JiraAdapter
    project: str
    tickets: list[Ticket]
    keys: dict[str, str]
    """`ticket:Txx` → Jira key."""
    finder: ReferenceFinder
    knowledge: _RecordingKnowledge
    rank: _RecordingRank
    clock: _Clock
    service: ServiceSettings


def _calls_since(sandbox: JiraSandbox, before: Counter[str]) -> tuple[int, int]:
    """(Jira calls, of which searches) the sandbox served since the snapshot `before`."""
    new = sandbox.calls - before
    return sum(new.values()), sum(n for route, n in new.items() if "/search" in route)


def leaks(tickets: Sequence[Ticket], text: str, returned: Sequence[str], own_key: str) -> list[str]:
    """What must never be in reference material and is: internal notes, unresolved tickets, the
    customer's own ticket.

    Args:
        tickets: the seeded tickets.
        text: the reference text.
        returned: the tickets the reference names (`ticket:Txx`, or a Jira key for any other).
        own_key: the Jira key of the ticket being answered.
    """
    found = []
    notes = [t.internal for t in tickets if t.internal]
    if INTERNAL_MARK.lower() in text.lower() or any(n in text for n in notes):
        found.append("internal note in the text")
    unresolved = {TICKET + t.id for t in tickets if not t.resolved}
    if UNRESOLVED_MARK.lower() in text.lower() or unresolved & set(returned):
        found.append("unresolved ticket")
    if own_key in returned:
        found.append("the customer's own ticket")
    return found


def ask(bench: Bench, question: Question, index: int) -> Outcome:
    """One AI turn's reference lookup for `question`, on a new ticket of its own."""
    bench.clock.now += CACHE_SECONDS + 1  # no question is served from another's cache
    name = "Alex"
    key = _open_ticket(bench.jira, bench.project, name, 500 + index, question.text)
    _customer_says(bench.jira, key, name, question.text, f"wamid.eval-{question.id}")
    # What the AI job reads before it asks for reference material: the ticket's comments.
    conversation = [comment_view(key, c) for c in bench.jira.list_comments(key)]
    bench.knowledge.last, bench.rank.last = [], []

    before = bench.sandbox.calls
    started = time.perf_counter()
    reference = bench.finder.find(bench.service, key, conversation, bot_account_id=BOT_ACCOUNT)
    seconds = time.perf_counter() - started
    calls, searches = _calls_since(bench.sandbox, before)
    ranked_sections, ranked_tickets = bench.knowledge.last, bench.rank.last

    before = bench.sandbox.calls
    again = bench.finder.find(bench.service, key, conversation, bot_account_id=BOT_ACCOUNT)
    _, cached_searches = _calls_since(bench.sandbox, before)

    by_key = {jira_key: local for local, jira_key in bench.keys.items()}
    tickets = [by_key.get(k, k) for k in reference.tickets]
    found = leaks(bench.tickets, reference.text, tickets, key)
    found += leaks(bench.tickets, again.text, [by_key.get(k, k) for k in again.tickets], key)
    return Outcome(
        question=question,
        sections=list(reference.sections),
        tickets=tickets,
        ranked_sections=ranked_sections,
        ranked_tickets=ranked_tickets,
        calls=calls,
        searches=searches,
        cached_searches=cached_searches,
        seconds=seconds,
        leaks=sorted(set(found)),
    )


def evaluate(questions: Sequence[Question] | None = None) -> list[Outcome]:
    """Seed a fresh Jira sandbox, index the knowledge files, and ask each question once."""
    project, tickets = load_tickets()
    questions = load_questions() if questions is None else questions
    base = KnowledgeBase(knowledge_files())
    base.load()
    with JiraSandbox(email=JIRA_EMAIL, api_token=JIRA_TOKEN, account_id=BOT_ACCOUNT) as sandbox:
        jira = JiraAdapter.connect(sandbox.url, email=JIRA_EMAIL, api_token=JIRA_TOKEN)
        keys = seed(sandbox, jira, project, tickets)
        knowledge = _RecordingKnowledge(base)
        rank = _RecordingRank(ranker(), tickets)
        clock = _Clock()
        service = ServiceSettings(
            id="shop",
            project_key=project,
            assistant=AssistantSettings(knowledge_files=tuple(str(p) for _, p in knowledge_files())),
        )
        finder = ReferenceFinder(
            jira=jira, knowledge={service.id: knowledge}, rank=rank, clock=clock, cache_seconds=CACHE_SECONDS
        )
        bench = Bench(sandbox, jira, project, tickets, keys, finder, knowledge, rank, clock, service)
        return [ask(bench, q, i) for i, q in enumerate(questions)]


# -- the figures ------------------------------------------------------------------------------


def kind(question: Question) -> str:
    """ "ticket" or "section": the kind of the question's first (main) source."""
    return "ticket" if question.expect[0].startswith(TICKET) else "section"


def _share(outcomes: Sequence[Outcome], *, ranked: bool = False) -> float:
    return sum(o.hit(ranked=ranked) for o in outcomes) / len(outcomes) if outcomes else float("nan")


def summarise(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """The figures the table prints, by name."""
    n = len(outcomes)
    sections = [o for o in outcomes if kind(o.question) == "section"]
    tickets = [o for o in outcomes if kind(o.question) == "ticket"]
    return {
        "questions": n,
        "recall@3": _share(outcomes),
        "recall@3 sections": _share(sections),
        "recall@3 tickets": _share(tickets),
        "recall@3 ranked": _share(outcomes, ranked=True),
        "MRR": sum(1 / r for o in outcomes if (r := o.rank()) is not None) / n if n else float("nan"),
        "searches/turn": sum(o.searches for o in outcomes) / n if n else float("nan"),
        "max searches/turn": max((o.searches for o in outcomes), default=0),
        "Jira calls/turn": sum(o.calls for o in outcomes) / n if n else float("nan"),
        "searches on repeat": sum(o.cached_searches for o in outcomes),
        "leaks": sum(len(o.leaks) for o in outcomes),
        "ms/turn p50": statistics.median(o.seconds for o in outcomes) * 1000 if n else float("nan"),
        "ms/turn max": max((o.seconds for o in outcomes), default=0.0) * 1000,
    }


def _by_tag(outcomes: Sequence[Outcome]) -> list[tuple[str, int, int]]:
    """(tag, hits, questions) per tag; "plain" for questions without one."""
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        for tag in o.question.tags or ("plain",):
            groups.setdefault(tag, []).append(o)
    return [(tag, sum(o.hit() for o in group), len(group)) for tag, group in sorted(groups.items())]


def table(outcomes: Sequence[Outcome]) -> str:
    f = summarise(outcomes)
    sections = sum(kind(o.question) == "section" for o in outcomes)
    rows = [
        (
            "questions",
            f"{f['questions']:.0f} ({sections} for a section, {len(outcomes) - sections} for a ticket)",
        ),
        ("recall@3 overall", f"{f['recall@3']:.2f}"),
        ("recall@3 sections", f"{f['recall@3 sections']:.2f}"),
        ("recall@3 tickets", f"{f['recall@3 tickets']:.2f}"),
        ("recall@3 before budget", f"{f['recall@3 ranked']:.2f}"),
        ("MRR", f"{f['MRR']:.2f}"),
        ("searches/turn", f"{f['searches/turn']:.2f} (max {f['max searches/turn']:.0f})"),
        ("Jira calls/turn (the find alone)", f"{f['Jira calls/turn']:.2f}"),
        (f"searches, same turn again within {CACHE_SECONDS:.0f} s", f"{f['searches on repeat']:.0f}"),
        ("internal leaks / unresolved", f"{f['leaks']:.0f}"),
        ("wall time/turn", f"p50 {f['ms/turn p50']:.1f} ms, max {f['ms/turn max']:.1f} ms"),
    ]
    rows += [(f"  hits, {tag}", f"{hits}/{n}") for tag, hits, n in _by_tag(outcomes)]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def misses(outcomes: Sequence[Outcome]) -> str:
    lines = []
    for o in outcomes:
        if o.hit() and not o.leaks:
            continue
        q = o.question
        tags = f" [{', '.join(q.tags)}]" if q.tags else ""
        lines.append(f"{q.id}{tags} {q.text!r}")
        lines.append(f"    expected {', '.join(q.expect)}  (before budget: rank {o.rank(ranked=True)})")
        lines.append(f"    sections {o.sections}")
        lines.append(f"    tickets  {o.tickets}  (ranked {o.ranked_tickets[:5]})")
        if o.leaks:
            lines.append(f"    LEAK     {', '.join(o.leaks)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.ai_eval", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--verbose", action="store_true", help="list every miss")
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N questions")
    args = parser.parse_args(argv)
    configure(level="warning", stream=sys.stderr)  # one line per call at debug would bury the table
    questions = load_questions()[: args.limit]
    outcomes = evaluate(questions)
    print(table(outcomes))
    if args.verbose:
        print("\nmisses:\n" + (misses(outcomes) or "none"))
    return 1 if summarise(outcomes)["leaks"] else 0


if __name__ == "__main__":
    sys.exit(main())
