"""Ports: what the jobs need from the outside world, as `typing.Protocol`s.

A job names the port it needs (`JiraPort.add_comment`, `GraphPort.send_text`), never a concrete
adapter or table class. The real adapters (`bot.jira_api.adapter.JiraAdapter`,
`bot.whatsapp.graph.GraphAdapter`, `bot.ai.client.OpenAIAdapter`), the storage classes and the
fakes in `tests/fakes/` all satisfy them structurally: `tests/contract/port_typing.py` makes
mypy say so, and `tests/contract/` runs the same cases against the fakes and against the real
adapters talking to `sandbox/` over loopback, so a fake cannot drift from what it stands in for.

Nothing here imports an I/O library at run time: the value types the ports mention (`IssueRef`,
`Recipient`, `QueuedMessage`, …) are imported for type checking only.
"""

from bot.ports.adapters import AiPort, GraphPort, JiraPort
from bot.ports.stores import (
    AiSwitchPort,
    AiTurnsPort,
    CsatRatingsPort,
    CustomerWindowPort,
    HandledCommentsPort,
    HotTicketsPort,
    InboundQueuePort,
    IssueStatesPort,
    LeasesPort,
    MappingsPort,
    MediaTasksPort,
    OutboundQueuePort,
    PersonalRecordsPort,
    PollStatePort,
    RetentionPort,
    StatusFeedPort,
    StatusWatchPort,
    TicketHistoryPort,
)

__all__ = [
    "AiPort",
    "AiSwitchPort",
    "AiTurnsPort",
    "CsatRatingsPort",
    "CustomerWindowPort",
    "GraphPort",
    "HandledCommentsPort",
    "HotTicketsPort",
    "InboundQueuePort",
    "IssueStatesPort",
    "JiraPort",
    "LeasesPort",
    "MappingsPort",
    "MediaTasksPort",
    "OutboundQueuePort",
    "PersonalRecordsPort",
    "PollStatePort",
    "RetentionPort",
    "StatusFeedPort",
    "StatusWatchPort",
    "TicketHistoryPort",
]
