"""Config for the AI's knowledge and hand-over: `[services.assistant]` `knowledge_files`,
`resolved_examples`, `reference_chars`, `hand_over`, `hand_over_message`, `hand_over_label`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, parse_config
from bot.config.model import HAND_OVER_MESSAGE
from tests.unit.test_config import minimal, with_value


def parse(data: dict[str, Any], source: str = "config.toml"):
    return parse_config(data, {}, source=source)


def error_of(data: dict[str, Any], source: str = "config.toml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(data, source)
    return info.value


def assistant(**values: Any) -> dict[str, Any]:
    return with_value(minimal(), "services[0].assistant", values)


def test_defaults() -> None:
    a = parse(minimal()).services[0].assistant
    assert a.knowledge_files == ()
    assert a.resolved_examples == 3
    assert a.reference_chars == 6000
    assert a.hand_over is True
    assert a.hand_over_message == HAND_OVER_MESSAGE
    assert a.hand_over_label == "wajira-handover"


def test_knowledge_files_are_read_from_the_config_files_directory(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "returns.md").write_text("# Returns\n30 days.\n")
    config = tmp_path / "config.toml"
    a = parse(assistant(knowledge_files=["kb/returns.md"]), str(config)).services[0].assistant
    assert a.knowledge_files == (str((tmp_path / "kb" / "returns.md").resolve()),)


def test_an_absolute_knowledge_file_stays_where_it_is(tmp_path: Path) -> None:
    file = tmp_path / "faq.md"
    file.write_text("# FAQ\n")
    a = parse(assistant(knowledge_files=[str(file)]), "/etc/wajira/config.toml").services[0].assistant
    assert a.knowledge_files == (str(file.resolve()),)


@pytest.mark.parametrize("name", ["missing.md", "kb"])
def test_a_knowledge_file_that_is_not_a_file_names_its_index(tmp_path: Path, name: str) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "ok.md").write_text("# OK\n")
    error = error_of(assistant(knowledge_files=["ok.md", name]), str(tmp_path / "config.toml"))
    assert error.key == "services[0].assistant.knowledge_files[1]"
    assert "not a readable file" in str(error)


def test_an_empty_knowledge_file_name_is_refused() -> None:
    error = error_of(assistant(knowledge_files=["  "]))
    assert error.key == "services[0].assistant.knowledge_files"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("resolved_examples", -1),
        ("resolved_examples", 11),
        ("resolved_examples", "3"),
        ("reference_chars", 100),
        ("reference_chars", 1_000_000),
        ("hand_over", "yes"),
        ("hand_over_message", ""),
        ("hand_over_message", "Hi {customer}"),
        ("hand_over_message", "Hi {name.__class__}"),
        ("hand_over_message", "x" * 4097),
        ("hand_over_label", "needs person"),
        ("hand_over_label", 'a"b'),
    ],
)
def test_wrong_values_name_their_key(key: str, value: Any) -> None:
    error = error_of(assistant(**{key: value}))
    assert error.key == f"services[0].assistant.{key}"


def test_a_complete_assistant_parses() -> None:
    a = (
        parse(
            assistant(
                resolved_examples=0,
                reference_chars=2000,
                hand_over=False,
                hand_over_message="{name}, a colleague takes over {issue_key}.",
                hand_over_label="",
            )
        )
        .services[0]
        .assistant
    )
    assert (a.resolved_examples, a.reference_chars, a.hand_over) == (0, 2000, False)
    assert a.hand_over_message == "{name}, a colleague takes over {issue_key}."
    assert a.hand_over_label == ""
