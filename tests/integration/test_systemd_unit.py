"""systemd/wajira.service: structure and required settings always; systemd's own checks
(`systemd-analyze verify` and `security --offline`) where the binary is installed."""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import subprocess
import sys

import pytest

from bot.config import model

UNIT = pathlib.Path(__file__).resolve().parents[2] / "systemd" / "wajira.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze binary is missing (no systemd installed); structural checks only"
)


def _lines() -> list[str]:
    return UNIT.read_text(encoding="utf-8").splitlines()


def _directives() -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in file order."""
    section, found = "", []
    for line in _lines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("["):
            section = stripped.strip("[]")
            continue
        key, sep, value = stripped.partition("=")
        assert sep, f"not an assignment: {line!r}"
        found.append((section, key.strip(), value.strip()))
    return found


def _values(key: str, section: str = "Service") -> list[str]:
    return [v for s, k, v in _directives() if s == section and k == key]


def _one(key: str, section: str = "Service") -> str:
    values = _values(key, section)
    assert len(values) == 1, f"{section}.{key}: expected once, found {values}"
    return values[0]


def test_every_directive_line_is_preceded_by_a_comment():
    lines = _lines()
    uncommented = [
        f"line {n + 1}: {line}"
        for n, line in enumerate(lines)
        if line.strip()
        and not line.lstrip().startswith(("#", ";", "["))
        and not (n > 0 and lines[n - 1].lstrip().startswith("#"))
    ]
    assert uncommented == []


def test_no_line_is_continued_or_indented():
    # A trailing backslash would hide a directive from the comment check above.
    assert [line for line in _lines() if line.endswith("\\") or line[:1].isspace()] == []


@pytest.mark.parametrize(
    "key, expected",
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("ExecStart", "/opt/wajira/bin/wajira run --config /etc/wajira/config.toml"),
        ("WorkingDirectory", "/"),
        ("WatchdogSec", "30"),
        ("LimitNOFILE", "65536"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "2"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "wajira"),
        ("UMask", "0077"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("SystemCallErrorNumber", "EPERM"),
    ],
)
def test_required_service_settings(key, expected):
    assert _one(key) == expected


def test_system_calls_are_limited_to_an_ordinary_service():
    assert _values("SystemCallFilter")[0] == "@system-service"


def test_stop_timeout_leaves_room_for_a_running_ai_turn():
    # Running jobs finish on SIGTERM; an OpenAI call may take its whole timeout.
    assert int(_one("TimeoutStopSec")) > model.OpenAISettings().timeout_seconds


def test_sigterm_reaches_the_main_process_which_stops_the_webhook_workers():
    # [server] workers > 1: the main process stops its workers in order (bot.workers); only
    # the final SIGKILL goes to the whole control group. Only the main process notifies.
    assert _one("KillMode") == "mixed"
    assert _one("NotifyAccess") == "main"


def test_reload_is_not_offered():
    # SIGHUP only logs that a restart is needed; `systemctl reload` must not pretend otherwise.
    assert _values("ExecReload") == []


def test_it_starts_at_boot_after_the_network():
    assert _one("WantedBy", "Install") == "multi-user.target"
    assert "network-online.target" in _one("Wants", "Unit")
    assert "network-online.target" in _one("After", "Unit")


def _env_names() -> set[str]:
    """Every variable the config reads from the environment or $CREDENTIALS_DIRECTORY."""
    names = set()
    for section in vars(model).values():
        if dataclasses.is_dataclass(section) and isinstance(section, type):
            names |= {f.metadata["env"] for f in dataclasses.fields(section) if f.metadata.get("env")}
    return names


def test_every_secret_the_config_reads_comes_through_load_credential():
    credentials = dict(v.split(":", 1) for v in _values("LoadCredential"))
    assert {"WHATSAPP_APP_SECRET", "JIRA_API_TOKEN", "OPENAI_API_KEY"} <= _env_names()
    assert set(credentials) == _env_names()
    for name, path in credentials.items():
        assert path == f"/etc/wajira/credentials/{name}"
    # Secrets never go into the unit (readable by every user) as Environment= lines.
    assert not [v for v in _values("Environment") if v.split("=", 1)[0] in _env_names()]


def test_the_default_sqlite_database_lands_in_the_state_directory():
    url = model.StorageSettings().url
    assert url.startswith("sqlite:///") and not url.startswith("sqlite:////")
    database = pathlib.PurePosixPath(_one("WorkingDirectory")) / url.removeprefix("sqlite:///")
    assert database.parent == pathlib.PurePosixPath("/var/lib") / _one("StateDirectory")


def test_a_config_error_exits_with_the_status_the_unit_does_not_restart(tmp_path, capsys):
    from bot.cli import main

    broken = tmp_path / "config.toml"
    broken.write_text("[server]\nport = 'eighty'\n")
    assert main(["run", "--config", str(broken)]) == int(_one("RestartPreventExitStatus"))
    assert "server.port" in capsys.readouterr().err


# -- systemd's own checks -------------------------------------------------------------------


def _verify(tmp_path: pathlib.Path, text: str) -> tuple[int, list[str]]:
    # /opt/wajira is not installed here, and verify rejects a missing ExecStart binary:
    # point it at an executable that exists, keeping the arguments.
    text = text.replace("ExecStart=/opt/wajira/bin/wajira ", f"ExecStart={sys.executable} ")
    unit = tmp_path / "wajira.service"
    unit.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 on unknown keys and bad values ("..., ignoring"): any line about our
    # unit is a failure. Lines about the host's own units are not ours to judge.
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "wajira.service" in line]
    return done.returncode, ours


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    returncode, complaints = _verify(tmp_path, UNIT.read_text(encoding="utf-8"))
    assert (returncode, complaints) == (0, [])


@needs_analyze
def test_systemd_analyze_verify_would_notice_a_mistake(tmp_path):
    # Proves the check above can fail: a misspelt key is reported, not silently passed.
    _returncode, complaints = _verify(
        tmp_path, UNIT.read_text(encoding="utf-8").replace("ProtectSystem=", "ProtectSytem=")
    )
    assert any("ProtectSytem" in line for line in complaints)


@needs_analyze
def test_systemd_analyze_security_rates_the_unit_well():
    # The threshold is in tenths of the printed exposure: 20 fails above "2.0 OK" (the unit
    # scores 1.2; what remains is network access, which a network bridge needs).
    done = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--threshold=20", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in done.stderr and "unrecognized" in done.stderr:
        pytest.skip("systemd-analyze is older than 250: no offline security review")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
