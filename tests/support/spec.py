"""The vendors' OpenAPI descriptions, and the one checker every test uses against them.

The specs are not in this repository (megabytes, and not ours): they live in `../shared/specs`
next to the checkout, or wherever `WAJIRA_SPECS_DIR` points. Without them a spec test is
skipped on a laptop, with the path in the reason; in CI (`CI=true`, or `WAJIRA_REQUIRE_SPECS=1`)
it fails instead, so a run that checked nothing cannot pass as green.

    spec = jira_spec()
    assert spec.response_errors("GET", url, 200, answer.json()) == []
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import pytest

from tests.support.openapi import OpenAPISpec, Operation, SpecLookupError

__all__ = [
    "JIRA",
    "WHATSAPP",
    "OpenAPISpec",
    "Operation",
    "SpecLookupError",
    "jira_spec",
    "load_spec",
    "spec_path",
    "specs_required",
    "whatsapp_spec",
]

JIRA = "jira-platform-v3.openapi.json"
WHATSAPP = "whatsapp-business-messaging-v23.openapi.yaml"
_REPO = Path(__file__).resolve().parents[2]


def specs_dir() -> Path:
    return Path(os.environ.get("WAJIRA_SPECS_DIR") or _REPO.parent / "shared" / "specs")


def specs_required() -> bool:
    """True in CI: `.ci/run`'s caller sets CI=true; WAJIRA_REQUIRE_SPECS=1 asks for it anywhere."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("WAJIRA_REQUIRE_SPECS") == "1"


def spec_path(name: str) -> Path:
    """The path of spec `name`; skips the calling test when it is missing, or fails it in CI."""
    path = specs_dir() / name
    if path.exists():
        return path
    reason = f"OpenAPI description not found at {path} (set WAJIRA_SPECS_DIR)"
    if specs_required():
        pytest.fail(
            f"{reason}; CI needs the specs: the spec checks would otherwise pass unrun", pytrace=False
        )
    pytest.skip(reason)


@lru_cache(maxsize=8)
def load_spec(path: str | Path) -> OpenAPISpec:
    """Parse a spec file once per process (YAML by suffix, JSON otherwise)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        import yaml  # only YAML specs need it

        # The C loader when libyaml is there: vendor specs run to megabytes.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return OpenAPISpec(yaml.load(text, Loader=loader))  # a safe loader, C or Python
    return OpenAPISpec(json.loads(text))


def jira_spec() -> OpenAPISpec:
    """Atlassian's Jira Cloud platform REST API v3."""
    return load_spec(spec_path(JIRA))


def whatsapp_spec() -> OpenAPISpec:
    """Meta's WhatsApp Business Messaging (Cloud API) v23."""
    return load_spec(spec_path(WHATSAPP))
