"""Each service's knowledge files, read and indexed once at start (then re-read when changed)."""

from __future__ import annotations

import functools
import pathlib

from bot.ai.knowledge import KnowledgeBase, KnowledgeError, rank
from bot.config import ConfigError, Settings
from jobs.reference import Rank

CANDIDATES = 20
"""Resolved tickets ranked per search: the one page `jobs.reference` asks Jira for."""


def knowledge_bases(settings: Settings) -> dict[str, KnowledgeBase]:
    """Service id → its loaded knowledge base, for services that list knowledge files.

    Raises:
        ConfigError: a file cannot be read or is not UTF-8 text, naming the service's key (the
            loader already checked that each file exists).
    """
    bases: dict[str, KnowledgeBase] = {}
    for index, service in enumerate(settings.services):
        files = service.assistant.knowledge_files
        if not files:
            continue
        base = KnowledgeBase([(pathlib.Path(f).name, pathlib.Path(f)) for f in files])
        try:
            base.load()
        except KnowledgeError as exc:
            raise ConfigError(f"services[{index}].assistant.knowledge_files", str(exc)) from None
        bases[service.id] = base
    return bases


def ranker() -> Rank:
    return functools.partial(rank, limit=CANDIDATES)
