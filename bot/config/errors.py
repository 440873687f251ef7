"""The one exception configuration problems raise."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration value is missing, unknown or wrong.

    `key` is the dotted path of the offending value (`whatsapp.app_secret`,
    `services[1].labels`; list indices count from 0), or `config` for the file itself.
    The CLI prints `str(error)` and exits 2, so the operator reads which line of
    config.toml to fix and systemd does not restart-loop on a broken file.
    """

    def __init__(self, key: str, reason: str) -> None:
        # Both go to Exception.args so the error pickles and reprs sensibly.
        super().__init__(key, reason)
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"
