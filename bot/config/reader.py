"""Typed reads from one TOML table, each failure naming the dotted key.

A `Table` reads a table against the dataclass that will hold it: the dataclass's fields
are the allowed keys and its defaults are the defaults, so neither is written twice. A
sub-table's dataclass is the type of the parent's field of that name, so a reader names a
table by its key alone (`root.table("server")`) and the model says what it holds.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import math
import pathlib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.config.errors import ConfigError
from bot.config.placeholders import placeholder_reason

_MISSING: Any = object()


def toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type, as the operator wrote it."""
    # bool before int: bool is an int subclass in Python but not in TOML.
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, (datetime.date, datetime.time)):
        return "date/time"
    return type(value).__name__


@dataclass(frozen=True)
class Supplied:
    """A value and where it came from, for messages that must not show the value itself."""

    value: str
    origin: str
    """"$WHATSAPP_APP_SECRET", "credential file /run/credentials/…", or the config file's name."""


class SecretSource:
    """Values that win over config.toml: the environment, then systemd credentials.

    With `LoadCredential=WHATSAPP_APP_SECRET:...` in the unit, systemd puts a file of that
    name in `$CREDENTIALS_DIRECTORY`, which keeps the secret out of the environment (and so
    out of /proc/*/environ and child processes).
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        directory = env.get("CREDENTIALS_DIRECTORY") or ""
        self._directory = pathlib.Path(directory) if directory else None

    def lookup(self, name: str, key: str) -> Supplied | None:
        """The value for variable `name` and where it came from, or None when neither source sets it.

        An empty value counts as unset, so `FOO=` in an env file does not blank a secret
        the config file sets.
        """
        value = self._env.get(name)
        if value:
            return Supplied(value, f"${name}")
        if self._directory is None:
            return None
        path = self._directory / name
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(key, f"cannot read credential file {path}: {exc}") from exc
        # `echo secret > file` and systemd-creds leave a newline no token contains.
        value = text.rstrip("\r\n")
        return Supplied(value, f"credential file {path}") if value else None


@functools.cache
def _table_schema(parent: type, name: str) -> type:
    """The dataclass a sub-table `name` of `parent` is read into: the field's type, or the
    element type of a `tuple[X, ...]` field (an array of tables)."""
    hint = typing.get_type_hints(parent)[name]
    if typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]
    elif isinstance(hint, types.UnionType):  # `X | None`: an optional table
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
        raise TypeError(f"{parent.__name__}.{name} is not a table in the model")
    return hint


class Table:
    """One TOML table, read against the dataclass `schema` that will hold it."""

    def __init__(
        self,
        data: Any,
        path: str,
        schema: type,
        secrets: SecretSource,
        source: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path or "config", f"expected a table, got {toml_type(data)}")
        self.path = path
        self._data = data
        self._schema = schema
        self._fields = {f.name: f for f in dataclasses.fields(schema)}
        self._secrets = secrets
        self._source = source
        self._env = dict(env or {})
        """Variable names for this table's fields, over the model's own (`env=` in `table()`)."""
        # Unknown keys first: a misspelt key would otherwise surface as a confusing
        # "missing required value" for the key the operator meant.
        for name in data:
            if name not in self._fields:
                raise ConfigError(self.key(name), "unknown key")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def source_dir(self) -> pathlib.Path:
        """The directory of the config file: relative paths in it are read from there."""
        return pathlib.Path(self._source).expanduser().parent

    def error(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.key(name), reason)

    # -- scalars ---------------------------------------------------------------------------

    def string(
        self,
        name: str,
        *,
        non_empty: bool = False,
        choices: tuple[str, ...] = (),
        pattern: str = "",
        hint: str = "",
    ) -> str:
        """A string; `pattern` must match all of it, `hint` says in words what it wants."""
        value = self._raw(name, str, "a string")
        if non_empty and not value:
            raise self.error(name, "must not be empty")
        if choices and value not in choices:
            allowed = ", ".join(f'"{c}"' for c in choices)
            raise self.error(name, f"must be one of {allowed}, got {value!r}")
        if pattern and not re.fullmatch(pattern, value):
            hint = hint or f"does not match {pattern}"
            raise self.error(name, f"{value!r} {hint}")
        return value

    def env_string(self, name: str, *, required: bool = False) -> str:
        """A string the environment (or a systemd credential) may supply instead of the file."""
        value = self._supplied(name).value
        if required and not value.strip():  # " " is no secret
            raise self.missing(name)
        return value

    def secret(self, name: str, *, required: bool = False, min_length: int = 0) -> str:
        """A secret field: like `env_string`, and refused when set to a placeholder.

        "" passes unless `required` (optional secrets are unset that way); anything else
        must pass `refuse_placeholder`.
        """
        value = self.env_string(name, required=required)
        if value:
            self.refuse_placeholder(name, min_length=min_length)
        return value

    def refuse_placeholder(self, name: str, *, min_length: int = 0) -> None:
        """Raise when the final value of `name` is empty, a placeholder or too short.

        The message names the key and where the value came from, never the value.
        """
        supplied = self._supplied(name)
        reason = placeholder_reason(supplied.value, min_length=min_length)
        if reason:
            raise self.error(name, f"{reason} (read from {supplied.origin})")

    def integer(self, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
        value = self._raw(name, int, "an integer")
        self._check_range(name, value, lo, hi)
        return value

    def number(self, name: str, *, lo: float | None = None, hi: float | None = None) -> float:
        """A float; integers are accepted too, since `timeout_seconds = 30` is natural TOML."""
        value = self._raw(name, (int, float), "a number")
        if not math.isfinite(value):
            raise self.error(name, f"must be a finite number, got {value}")
        self._check_range(name, value, lo, hi)
        return float(value)

    def boolean(self, name: str) -> bool:
        return self._raw(name, bool, "a boolean (true or false)")

    def strings(self, name: str, *, pattern: str = "", hint: str = "") -> tuple[str, ...]:
        """An array of strings; element errors name the array and the index in the reason."""
        value = self._raw(name, list, "an array of strings", convert=tuple)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                got = toml_type(item)
                raise self.error(name, f"expected an array of strings, item {index} is {got}")
            if pattern and not re.fullmatch(pattern, item):
                hint = hint or f"does not match {pattern}"
                raise self.error(name, f"item {index} {item!r} {hint}")
        return tuple(value)

    def mapping(self, name: str) -> dict[str, Any]:
        """A table of free-form keys (`custom_fields = { customfield_10010 = "…" }`); the
        caller checks its keys and values, naming them `{key(name)}.{inner key}`."""
        return dict(self._raw(name, dict, "a table", convert=dict))

    def missing(self, name: str) -> ConfigError:
        variable = self._variable(name)
        where = f"set it in {self._source}"
        if variable:
            where += f", ${variable} or the systemd credential {variable}"
        return self.error(name, f"missing required value ({where})")

    # -- nested tables ---------------------------------------------------------------------

    def has(self, name: str) -> bool:
        """Whether the file sets `name` (for tables whose absence means something)."""
        return name in self._data

    def table(self, name: str, *, env: Mapping[str, str] | None = None) -> Table:
        """A sub-table; an absent one reads as empty so every key takes its default.

        Args:
            env: field name → the variable that may supply it, for fields whose variable depends
                on where the table is (a service's own secrets: `WAJIRA_SERVICE_<ID>_…`).
        """
        data = self._data.get(name, {})
        if not isinstance(data, dict):
            raise self.error(name, f"expected a table ([{self.key(name)}]), got {toml_type(data)}")
        schema = _table_schema(self._schema, name)
        return Table(data, self.key(name), schema, self._secrets, self._source, env=env)

    def tables(self, name: str) -> list[Table]:
        """An array of tables (`[[name]]`); an absent one reads as empty."""
        data = self._data.get(name, [])
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            header = f"[[{self.key(name)}]]"
            raise self.error(name, f"expected an array of tables ({header}), got {toml_type(data)}")
        schema = _table_schema(self._schema, name)
        return [
            Table(item, f"{self.key(name)}[{index}]", schema, self._secrets, self._source)
            for index, item in enumerate(data)
        ]

    # -- internals -------------------------------------------------------------------------

    def _supplied(self, name: str) -> Supplied:
        # The environment, then a credential file, then this file (its default when absent).
        variable = self._variable(name)
        found = self._secrets.lookup(variable, self.key(name)) if variable else None
        return found or Supplied(self._raw(name, str, "a string"), self._source)

    def _variable(self, name: str) -> str | None:
        return self._env.get(name) or self._fields[name].metadata.get("env")

    def _default(self, name: str) -> Any:
        f = self._fields[name]
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return _MISSING

    def _raw(self, name: str, types: type | tuple[type, ...], expected: str, convert: Any = None) -> Any:
        if name not in self._data:
            default = self._default(name)
            if default is _MISSING:
                raise self.missing(name)
            return default
        value = self._data[name]
        # Exact check on bool: `port = true` is a mistake, not the integer 1.
        if isinstance(value, bool) != (types is bool) or not isinstance(value, types):
            raise self.error(name, f"expected {expected}, got {toml_type(value)}")
        return convert(value) if convert else value

    def _check_range(self, name: str, value: float, lo: float | None, hi: float | None) -> None:
        if lo is not None and hi is not None and not lo <= value <= hi:
            raise self.error(name, f"must be between {lo} and {hi}, got {value}")
        if lo is not None and value < lo:
            raise self.error(name, f"must be at least {lo}, got {value}")
        if hi is not None and value > hi:
            raise self.error(name, f"must be at most {hi}, got {value}")
