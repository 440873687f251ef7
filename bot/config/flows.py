"""`[flows]`: the data-exchange endpoint, its private key and the screens it answers.

How a completed Flow fills a ticket is per service (`[[services.flows]]`, in `services`).
"""

from __future__ import annotations

import math

from bot.config import formats
from bot.config.model import FlowScreen, FlowsSettings
from bot.config.reader import Table, toml_type
from bot.flows.keys import KeyFileError, load_private_key_file


def flows(t: Table) -> FlowsSettings:
    settings = FlowsSettings(
        endpoint_path=formats.url_path(t, "endpoint_path"),
        private_key_file=t.string("private_key_file"),
        private_key_passphrase=t.secret("private_key_passphrase"),
        screens=_flow_screens(t),
        unavailable_message=t.string("unavailable_message", non_empty=True),
    )
    if settings.private_key_file:
        # Loaded here, not first at daemon start: `wajira check` and `wajira run` then exit 2
        # on a bad key, like on any other config error, instead of failing later.
        try:
            load_private_key_file(settings.private_key_file, settings.private_key_passphrase)
        except KeyFileError as exc:
            raise t.error(
                "private_key_passphrase" if exc.passphrase else "private_key_file", exc.reason
            ) from None
    return settings


def _flow_screens(flows: Table) -> tuple[FlowScreen, ...]:
    screens: list[FlowScreen] = []
    for t in flows.tables("screens"):
        screen = FlowScreen(
            id=t.string("id", pattern=formats.FLOW_NAME, hint=formats.FLOW_NAME_HINT + ', or "INIT"'),
            next_screen=t.string(
                "next_screen", pattern=formats.FLOW_NAME, hint=formats.FLOW_NAME_HINT + ', or "SUCCESS"'
            ),
            data=t.mapping("data"),
        )
        if screen.id == "SUCCESS":
            raise t.error("id", '"SUCCESS" ends a flow; no request comes from it')
        if any(screen.id == earlier.id for earlier in screens):
            raise t.error("id", f"duplicate screen id {screen.id!r}")
        for name, value in screen.data.items():
            _check_json(t, f"data.{name}", value)
            if isinstance(value, str):
                formats.check_template(t, f"data.{name}", value)
        screens.append(screen)
    return tuple(screens)


def _check_json(t: Table, key: str, value: object) -> None:
    # The answer is JSON: TOML dates and times have no JSON form.
    if isinstance(value, dict):
        for name, item in value.items():
            _check_json(t, f"{key}.{name}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(t, f"{key}[{index}]", item)
    elif not isinstance(value, (str, int, float, bool)):
        raise t.error(key, f"{toml_type(value)} has no JSON form; write it as a string")
    elif isinstance(value, float) and not math.isfinite(value):
        raise t.error(key, f"{value} has no JSON form")
