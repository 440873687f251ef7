"""A decrypted data-exchange request → the answer `[[flows.screens]]` configures for it. Pure.

Meta's request: `{"version": "3.0", "action": …, "screen": …, "data": {…}, "flow_token": …}`.
- `ping` (Meta's health check) → `{"data": {"status": "active"}}`.
- any request whose `data` has `error` is an error notification (a previous answer of ours was
  wrong) → `{"data": {"acknowledged": true}}`; Meta's docs say to look for it before the action.
- `INIT` (the flow opens; names no screen) → the table with `id = "INIT"`.
- `data_exchange` (a screen was submitted) → the table whose `id` is that screen.
- `BACK` (back pressed onto a screen with `refresh_on_back`) → that screen again, with the data
  of the table that leads to it (its `next_screen`), else no data.
A table answers `{"screen": next_screen, "data": …}`; `next_screen = "SUCCESS"` closes the
flow instead, with the data as `extension_message_response.params` (plus the `flow_token`).
A request no table answers gets the same screen back with `error_message`, which the flow
shows to the user, rather than an HTTP error that would only say "something went wrong".
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from bot.config.model import FLOW_UNAVAILABLE, FlowScreen
from bot.flows.templates import fill

INIT = "INIT"
SUCCESS = "SUCCESS"
UNAVAILABLE = FLOW_UNAVAILABLE  # the default of `[flows] unavailable_message`


def answer_request(
    request: Mapping[str, Any], screens: Sequence[FlowScreen], unavailable: str = UNAVAILABLE
) -> tuple[dict[str, Any], str]:
    """The answer to one decrypted request, and an outcome name for logs and metrics.

    Outcomes: "ping", "error_notification", "init", "data_exchange", "back", "unanswered".
    """
    action = request.get("action")
    if action == "ping":
        return {"data": {"status": "active"}}, "ping"
    data = request.get("data")
    data = data if isinstance(data, dict) else {}
    if "error" in data:
        return {"data": {"acknowledged": True}}, "error_notification"
    token = request.get("flow_token")
    values = {"flow_token": token if isinstance(token, str) else "", **data}
    screen = request.get("screen") if isinstance(request.get("screen"), str) else ""
    if action == "BACK" and screen:
        leading = next((s for s in screens if s.next_screen == screen), None)
        answer_data = _filled(leading.data, values) if leading else {}
        return {"screen": screen, "data": answer_data}, "back"
    wanted = INIT if action == INIT else screen if action == "data_exchange" else None
    table = next((s for s in screens if s.id == wanted), None) if wanted else None
    if table is None:
        return {"screen": screen, "data": {"error_message": unavailable}}, "unanswered"
    outcome = "init" if action == INIT else "data_exchange"
    answer_data = _filled(table.data, values)
    if table.next_screen == SUCCESS:
        params = {"flow_token": values["flow_token"], **answer_data}
        return {"screen": SUCCESS, "data": {"extension_message_response": {"params": params}}}, outcome
    return {"screen": table.next_screen, "data": answer_data}, outcome


def _filled(data: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    # Top-level strings are templates; anything else (numbers, booleans, the arrays a dropdown
    # lists) is sent as written.
    return {
        key: fill(value, values) if isinstance(value, str) else copy.deepcopy(value)
        for key, value in data.items()
    }
