"""AiPort: the same cases against `FakeAI` and against `OpenAIAdapter` on the OpenAI sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.ai.client import AiRejected, AiToolsUnsupported, OpenAIAdapter, Tool
from bot.ports import AiPort
from sandbox.openai_stub import OpenAISandbox, StubToolCall
from sandbox.openai_stub.completions import default_reply
from tests.contract.conftest import IMPLEMENTATIONS, OPENAI_KEY, AiWorld
from tests.fakes import FakeAI

MESSAGES = [
    {"role": "system", "content": "You answer customers of a shop."},
    {"role": "user", "content": "Where is my order?"},
]


def test_a_reply_has_text_and_token_usage(ai_world: AiWorld) -> None:
    reply = ai_world.ai.complete(model=ai_world.model, messages=MESSAGES, max_tokens=200)
    assert isinstance(reply.text, str) and reply.text.strip()
    assert reply.model.startswith(ai_world.model)
    assert reply.completion_tokens > 0
    assert reply.total_tokens == reply.prompt_tokens + reply.completion_tokens
    assert reply.finish_reason == "stop"


def test_max_tokens_may_be_left_to_the_model(ai_world: AiWorld) -> None:
    reply = ai_world.ai.complete(model=ai_world.model, messages=MESSAGES)
    assert reply.text.strip()


# -- tools (issue 14's `hand_over`) -----------------------------------------------------------------


@dataclass
class ToolWorld:
    """The port, with the steering its tool cases need: the model's next answer being a tool
    call, and the server losing tool calling."""

    ai: AiPort
    call_next: Callable[[str, dict[str, Any]], object]
    refuse_tools: Callable[[], None]
    model: str = "gpt-4o-mini"


@pytest.fixture(params=IMPLEMENTATIONS)
def tool_world(request: pytest.FixtureRequest) -> Iterator[ToolWorld]:
    if request.param == "fake":
        fake = FakeAI()

        def refuse_in_fake() -> None:
            fake.tools_supported = False

        yield ToolWorld(fake, call_next=fake.call_tool_next, refuse_tools=refuse_in_fake)
        return
    queued: list[StubToolCall] = []

    def reply(messages: list[dict[str, Any]]) -> str | StubToolCall:
        return queued.pop(0) if queued else default_reply(messages)

    with OpenAISandbox(api_key=OPENAI_KEY, reply=reply) as sandbox:

        def refuse_in_sandbox() -> None:
            sandbox.tools_supported = False

        yield ToolWorld(
            OpenAIAdapter.connect(api_key=OPENAI_KEY, base_url=sandbox.url),
            call_next=lambda name, arguments: queued.append(StubToolCall(name, arguments)),
            refuse_tools=refuse_in_sandbox,
        )


HAND_OVER = Tool(
    name="hand_over",
    description="Hand the conversation to a person.",
    parameters={"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]},
)
LOOK_UP = Tool(
    name="look_up", description="Look an order up.", parameters={"type": "object", "properties": {}}
)


def test_a_tool_call_comes_back_parsed(tool_world: ToolWorld) -> None:
    tool_world.call_next("hand_over", {"reason": "wants a manager", "urgent": True})
    reply = tool_world.ai.complete(model=tool_world.model, messages=MESSAGES, tools=[LOOK_UP, HAND_OVER])
    [call] = reply.tool_calls
    assert (call.name, call.arguments) == ("hand_over", {"reason": "wants a manager", "urgent": True})
    assert call.id.startswith("call_")
    assert (reply.text, reply.finish_reason) == ("", "tool_calls")
    assert reply.total_tokens == reply.prompt_tokens + reply.completion_tokens


def test_tools_offered_and_a_text_answer(tool_world: ToolWorld) -> None:
    reply = tool_world.ai.complete(model=tool_world.model, messages=MESSAGES, tools=[HAND_OVER])
    assert reply.tool_calls == () and reply.text.strip() and reply.finish_reason == "stop"


def test_a_tool_not_offered_is_never_called(tool_world: ToolWorld) -> None:
    tool_world.call_next("hand_over", {"reason": "r"})
    reply = tool_world.ai.complete(model=tool_world.model, messages=MESSAGES, tools=[LOOK_UP])
    assert reply.tool_calls == () and reply.text.strip()
    tool_world.call_next("hand_over", {"reason": "r"})
    assert tool_world.ai.complete(model=tool_world.model, messages=MESSAGES).tool_calls == ()


def test_a_server_without_tool_calling(tool_world: ToolWorld) -> None:
    tool_world.refuse_tools()
    with pytest.raises(AiToolsUnsupported) as caught:
        tool_world.ai.complete(model=tool_world.model, messages=MESSAGES, tools=[HAND_OVER])
    assert isinstance(caught.value, AiRejected) and caught.value.status == 400
    # Asked again without tools, it answers as before.
    reply = tool_world.ai.complete(model=tool_world.model, messages=MESSAGES)
    assert reply.text.strip() and reply.tool_calls == ()


# -- the fake's own steering and memory (the sandbox's are `reply`, `tool_reply`, `requests()`) ----


def test_fake_remembers_the_tools_each_request_offered() -> None:
    fake = FakeAI()
    fake.complete(model="m", messages=MESSAGES, tools=[HAND_OVER, LOOK_UP])
    fake.complete(model="m", messages=MESSAGES)
    assert fake.offered_tools == [("hand_over", "look_up"), ()]
    assert fake.requests[0]["tools"] == (HAND_OVER, LOOK_UP)


def test_fake_hand_over_next_then_the_queue_goes_on() -> None:
    fake = FakeAI()
    fake.hand_over_next("angry customer")
    fake.reply_with("second")
    first = fake.complete(model="m", messages=MESSAGES, tools=[HAND_OVER])
    second = fake.complete(model="m", messages=MESSAGES, tools=[HAND_OVER])
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("hand_over", {"reason": "angry customer"})]
    assert (second.text, second.tool_calls) == ("second", ())


def test_fake_respond_sees_messages_and_tools() -> None:
    seen: list[tuple[str, ...]] = []

    def respond(messages: list[dict[str, Any]], tools: tuple[Tool, ...]) -> str | None:
        seen.append(tuple(t.name for t in tools))
        return None if messages[-1]["content"] == "pass" else "from respond"

    fake = FakeAI(respond=respond)
    assert fake.complete(model="m", messages=MESSAGES, tools=[LOOK_UP]).text == "from respond"
    assert fake.complete(model="m", messages=[{"role": "user", "content": "pass"}]).text == fake.default_reply
    assert seen == [("look_up",), ()]


def test_fake_refusing_tools_still_records_and_a_scripted_failure_comes_first() -> None:
    fake = FakeAI(tools_supported=False)
    fake.fail("complete", AiRejected("bad key", status=401))
    with pytest.raises(AiRejected) as caught:
        fake.complete(model="m", messages=MESSAGES, tools=[HAND_OVER])
    assert not isinstance(caught.value, AiToolsUnsupported)
    with pytest.raises(AiToolsUnsupported):
        fake.complete(model="m", messages=MESSAGES, tools=[HAND_OVER])
    assert fake.complete(model="m", messages=MESSAGES).text == fake.default_reply
    assert fake.offered_tools == [("hand_over",), ("hand_over",), ()]
