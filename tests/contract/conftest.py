"""Each port's implementations side by side: the fake, and the real adapter talking to its
sandbox on loopback. A contract test takes one of the `*_world` fixtures and runs once for each.

A world is the port plus the few steering calls a case needs that the port has no word for
(a customer writing, a medium on Meta's side), done the fake's way or the sandbox's way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from bot.ai.client import OpenAIAdapter
from bot.jira_api.adapter import JiraAdapter
from bot.ports import AiPort, GraphPort, JiraPort
from bot.whatsapp.graph import GraphAdapter
from sandbox.graph import GraphSandbox
from sandbox.jira import JiraSandbox
from sandbox.openai_stub import OpenAISandbox
from tests.fakes import FakeAI, FakeGraph, FakeJira

IMPLEMENTATIONS = ["fake", "sandbox"]
PNID = "106540352242922"  # the Graph sandbox's default business number
# Made-up credentials the sandboxes are told to accept; not shaped like real ones.
JIRA_EMAIL, JIRA_TOKEN = "bot@example.com", "contract-jira-token"
GRAPH_TOKEN = "contract-graph-token"
OPENAI_KEY = "contract-openai-key"


@dataclass
class JiraWorld:
    jira: JiraPort
    project_key: str = "WA"


@dataclass
class GraphWorld:
    graph: GraphPort
    customer_wrote: Callable[[str, float], None]
    """(wa_id, epoch seconds): the customer last wrote to `PNID` then."""
    add_media: Callable[[str, bytes, str], None]
    """(media_id, data, mime type): a medium Meta holds."""
    phone_number_id: str = PNID


@dataclass
class AiWorld:
    ai: AiPort
    model: str = "gpt-4o-mini"


@pytest.fixture(params=IMPLEMENTATIONS)
def jira_world(request: pytest.FixtureRequest) -> Iterator[JiraWorld]:
    if request.param == "fake":
        yield JiraWorld(FakeJira(clock=time.time))
        return
    with JiraSandbox(email=JIRA_EMAIL, api_token=JIRA_TOKEN) as sandbox:
        yield JiraWorld(JiraAdapter.connect(sandbox.url, email=JIRA_EMAIL, api_token=JIRA_TOKEN))


@pytest.fixture(params=IMPLEMENTATIONS)
def graph_world(request: pytest.FixtureRequest) -> Iterator[GraphWorld]:
    if request.param == "fake":
        fake = FakeGraph(enforce_window=True)
        yield GraphWorld(
            fake,
            customer_wrote=lambda wa_id, at: fake.customer_wrote(wa_id, PNID, at),
            add_media=fake.add_media,
        )
        return
    with GraphSandbox(access_token=GRAPH_TOKEN) as sandbox:
        adapter = GraphAdapter.connect(base_url=sandbox.url, api_version="v23.0", access_token=GRAPH_TOKEN)
        yield GraphWorld(
            adapter,
            customer_wrote=lambda wa_id, at: sandbox.customer_wrote(wa_id, at, PNID),
            add_media=sandbox.add_media,
        )


@pytest.fixture(params=IMPLEMENTATIONS)
def ai_world(request: pytest.FixtureRequest) -> Iterator[AiWorld]:
    if request.param == "fake":
        yield AiWorld(FakeAI())
        return
    with OpenAISandbox(api_key=OPENAI_KEY) as sandbox:
        yield AiWorld(OpenAIAdapter.connect(api_key=OPENAI_KEY, base_url=sandbox.url))
