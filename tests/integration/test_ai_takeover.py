"""Two instances on one database (every engine), each with its own connection: a turn claimed by
an instance that dies is answered by the other once `[openai] turn_lease_seconds` has passed,
exactly once; a live instance whose call outlives its claim steps aside instead of answering too.
"""

from __future__ import annotations

import dataclasses

import pytest

from jobs.ai import AiJob
from jobs.notes import Notes
from storage.ai_switch import AiSwitch
from storage.ai_turns import AiTurns
from storage.db import bind, open_database
from storage.inbound import InboundQueue
from storage.outbound import OutboundQueue
from storage.polling import HandledComments
from storage.schema import migrate
from tests.fakes import FakeAI
from tests.integration.test_ai_job import DEBOUNCE, KEY, World, settings

LEASE = 90.0


class Killed(BaseException):
    """kill -9 in the middle of a call: nothing after it runs, nothing is marked."""


class SlowAI(FakeAI):
    """A FakeAI whose answer takes a while: `during()` runs inside the call."""

    def __init__(self, during) -> None:
        super().__init__()
        self.during = during

    def complete(self, **kwargs):
        self.during()
        return super().complete(**kwargs)


def with_lease(lease: float):
    s = settings()
    return dataclasses.replace(s, openai=dataclasses.replace(s.openai, turn_lease_seconds=lease))


class Cluster:
    """Instance A (inbox, poll and AI jobs, as World wires them) and instance B (an AI job of its
    own, on its own connection), sharing one Jira and one clock."""

    def __init__(self, db_url: str, lease: float = LEASE) -> None:
        s = with_lease(lease)
        self.db_a, self.db_b = open_database(db_url), open_database(db_url)
        migrate(self.db_a)
        bind(self.db_a)
        self.a = World(self.db_a, s)
        self.a.job.owner = "host-a:8080"
        clock = self.a.clock
        self.ai_b = FakeAI()
        self.b = AiJob(
            settings=s,
            jira=self.a.jira,
            ai=self.ai_b,
            graph=self.a.graph,
            turns=AiTurns(self.db_b, clock=clock),
            handled=HandledComments(self.db_b, clock=clock),
            inbound=InboundQueue(self.db_b, clock=clock),
            notes=Notes(self.a.jira),
            switch=AiSwitch(self.db_b),
            owner="host-b:8080",
            clock=clock,
        )
        self.outbound_b = OutboundQueue(self.db_b, clock=clock)

    def close(self) -> None:
        self.db_a.close()
        self.db_b.close()

    def turn_due(self) -> None:
        """The customer writes; A's poll makes the AI turn; its debounce ends."""
        self.a.customer("hi, my parcel is damaged")
        self.a.poll.run()
        self.a.clock.advance(DEBOUNCE + 1)


@pytest.fixture
def cluster(db_url):
    made: list[Cluster] = []

    def make(**kw) -> Cluster:
        made.append(Cluster(db_url, **kw))
        return made[-1]

    yield make
    for c in made:
        c.close()


def test_a_killed_instances_turn_is_answered_by_the_other_after_the_lease_exactly_once(cluster):
    c = cluster()
    c.turn_due()
    c.a.ai.fail("complete", Killed())
    with pytest.raises(Killed):
        c.a.job.run()  # A claimed the turn and died inside the OpenAI call
    (turn,) = c.a.all_turns()
    assert (turn.state, turn.attempts) == ("working", 0)

    assert c.b.run() == 0  # A's claim still holds
    c.a.clock.advance(LEASE - 1)
    assert c.b.run() == 0
    c.a.clock.advance(2)
    assert c.b.run() == 1  # the lease has run out: B takes the turn over and answers

    done = c.b.turns.get(turn.id)
    assert (done.state, done.attempts) == ("done", 1)
    assert len(c.ai_b.requests) == 1 and len(c.a.ai_comments()) == 1
    assert [r.kind for r in c.outbound_b.for_issue(KEY)] == ["ai"]
    for _ in range(3):  # nothing is answered again, by either instance
        c.a.clock.advance(LEASE + 1)
        assert c.b.run() == 0 and c.a.job.run() == 0
    assert len(c.a.ai_comments()) == 1 and len(c.outbound_b.for_issue(KEY)) == 1


def test_the_lease_is_the_configured_one(cluster):
    c = cluster(lease=150.0)
    c.turn_due()
    c.a.ai.fail("complete", Killed())
    with pytest.raises(Killed):
        c.a.job.run()
    c.a.clock.advance(149)
    assert c.b.run() == 0
    c.a.clock.advance(2)
    assert c.b.run() == 1 and len(c.a.ai_comments()) == 1


def test_a_slow_call_within_the_lease_keeps_the_turn(cluster):
    c = cluster()
    c.turn_due()
    # The claim was renewed just before the call: B finds it held however long A took so far.
    c.a.job.ai = SlowAI(lambda: (c.a.clock.advance(LEASE - 5), c.b.run()))
    assert c.a.job.run() == 1
    assert c.ai_b.requests == [] and len(c.a.ai_comments()) == 1


def test_an_instance_whose_call_outlived_its_claim_does_not_answer_too(cluster):
    c = cluster()
    c.turn_due()
    took_over = []
    # A stalls past its lease (a frozen VM, a stop signal); B takes the turn over and answers.
    c.a.job.ai = SlowAI(lambda: (c.a.clock.advance(LEASE + 5), took_over.append(c.b.run())))
    assert c.a.job.run() == 0  # A's renewal before posting finds the turn gone: it posts nothing
    assert took_over == [1]
    assert len(c.a.ai_comments()) == 1 and len(c.outbound_b.for_issue(KEY)) == 1
    (turn,) = c.a.all_turns()
    assert c.b.turns.get(turn.id).state == "done"
