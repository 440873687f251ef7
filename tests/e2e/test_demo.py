"""The README's first command: `wajira demo` must tell the whole story and exit 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.harness import REPO

pytestmark = pytest.mark.e2e


def test_demo_plays_the_whole_story_and_exits_zero():
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "demo finished" in out
    assert "WhatsApp → Ana García: *Agent Smith:*" in out  # the agent's reply reached the customer
    assert "Jira attachment: 1003383421387256.png" in out  # the photo's bytes landed in Jira
    assert "document delivery-note.pdf (67 bytes, the same bytes)" in out  # the agent's file went as a file
    assert "(internal): Internal: courier" in out and "refund" not in out.split("What Jira shows")[0]
