"""The OpenAI stand-in's error: OpenAI's body `{"error": {"message", "type", "param", "code"}}`,
which the `openai` SDK turns into its typed exceptions by HTTP status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.web import HttpError, Response


@dataclass
class OpenAIError(HttpError):
    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        return Response(self.status, self.body(), self.headers)
