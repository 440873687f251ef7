"""mypy proves here that the real adapters, the storage classes and the fakes satisfy the ports.

Nothing runs: each function only returns its argument as the port, and mypy rejects the
module when a signature drifts (a renamed keyword, a narrower parameter, another return type).
Checked with the rest of the tree (`[tool.mypy] files` includes `tests/contract` and
`tests/fakes`).
"""

from __future__ import annotations

from bot.ai.client import OpenAIAdapter
from bot.jira_api.adapter import JiraAdapter
from bot.ports import (
    AiPort,
    AiSwitchPort,
    AiTurnsPort,
    CustomerWindowPort,
    GraphPort,
    HandledCommentsPort,
    HotTicketsPort,
    InboundQueuePort,
    IssueStatesPort,
    JiraPort,
    LeasesPort,
    MappingsPort,
    MediaTasksPort,
    OutboundQueuePort,
    PersonalRecordsPort,
    PollStatePort,
    RetentionPort,
    StatusFeedPort,
    TicketHistoryPort,
)
from bot.whatsapp.graph import GraphAdapter
from storage.ai_switch import AiSwitch
from storage.ai_turns import AiTurns
from storage.customer_window import CustomerWindow
from storage.erasure import PersonalRecords
from storage.hot_tickets import HotTickets
from storage.inbound import InboundQueue
from storage.issue_states import IssueStates
from storage.leases import Leases
from storage.mappings import Mappings
from storage.media import MediaTasks
from storage.outbound import OutboundQueue
from storage.polling import HandledComments, PollState
from storage.retention import Retention
from storage.statuses import StatusFeed
from storage.ticket_history import TicketHistory
from tests.fakes import FakeAI, FakeGraph, FakeJira

# -- the adapters and their fakes -----------------------------------------------------------------


def jira_adapter(real: JiraAdapter) -> JiraPort:
    return real


def jira_fake(fake: FakeJira) -> JiraPort:
    return fake


def graph_adapter(real: GraphAdapter) -> GraphPort:
    return real


def graph_fake(fake: FakeGraph) -> GraphPort:
    return fake


def ai_adapter(real: OpenAIAdapter) -> AiPort:
    return real


def ai_fake(fake: FakeAI) -> AiPort:
    return fake


# -- storage --------------------------------------------------------------------------------------


def inbound_queue(real: InboundQueue) -> InboundQueuePort:
    return real


def customer_window(real: CustomerWindow) -> CustomerWindowPort:
    return real


def outbound_queue(real: OutboundQueue) -> OutboundQueuePort:
    return real


def status_feed(real: StatusFeed) -> StatusFeedPort:
    return real


def ai_turns(real: AiTurns) -> AiTurnsPort:
    return real


def media_tasks(real: MediaTasks) -> MediaTasksPort:
    return real


def leases(real: Leases) -> LeasesPort:
    return real


def mappings(real: Mappings) -> MappingsPort:
    return real


def issue_states(real: IssueStates) -> IssueStatesPort:
    return real


def ticket_history(real: TicketHistory) -> TicketHistoryPort:
    return real


def poll_state(real: PollState) -> PollStatePort:
    return real


def handled_comments(real: HandledComments) -> HandledCommentsPort:
    return real


def ai_switch(real: AiSwitch) -> AiSwitchPort:
    return real


def hot_tickets(real: HotTickets) -> HotTicketsPort:
    return real


def personal_records(real: PersonalRecords) -> PersonalRecordsPort:
    return real


def retention(real: Retention) -> RetentionPort:
    return real
