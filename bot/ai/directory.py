"""Several AI accounts behind one `AiPort`: a service with `[services.openai]` pays with its own.

`complete()` names no service, so the directory refuses it (`NotRoutable`): the AI job picks
the service's client first with `ai_for_service`, which a single account answers with itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bot.ports import AiPort

if TYPE_CHECKING:
    from bot.ai.client import AiReply, Tool


class NotRoutable(LookupError):
    """A completion went to the directory itself: which service's account pays is unknown."""


class AiDirectory:
    """The `[openai]` client, and the clients of services with their own account."""

    def __init__(self, default: AiPort, by_service: Mapping[str, AiPort]) -> None:
        self.default = default
        self.by_service = dict(by_service)

    def for_service(self, service_id: str) -> AiPort:
        return self.by_service.get(service_id, self.default)

    def complete(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int | None = None,
        tools: Sequence[Tool] = (),
    ) -> AiReply:
        raise NotRoutable("complete: which service pays? ask ai_for_service(...) first")


def ai_for_service(ai: AiPort, service_id: str) -> AiPort:
    """The client this service's turns use (the port itself when there is one account)."""
    return ai.for_service(service_id) if isinstance(ai, AiDirectory) else ai
