"""`wajira check`: reach everything the daemon needs, one ✓/✗ line each, with the reason.

    storage   open, migrate, ping
    Jira      /myself (who the bot is, its time zone), once per Jira account (`[jira]` and each
              distinct `[services.jira]`); per service, with its account: the project, its issue
              type among those the bot may create, and the permissions to browse, create and comment
    Graph     GET /{phone_number_id} for the configured number and every service's numbers
    OpenAI    models.retrieve for each model an enabled assistant uses, with each AI account
              (`[openai]` and every `[services.openai]`) that pays for one

Each check runs even when an earlier one failed (an operator wants the whole list at once),
except the per-service Jira checks, which are skipped when their account did not answer /myself.
Secrets never reach the output: every line is scrubbed of them.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TextIO

from bot.ai.client import AiError, AiRejected, OpenAIAdapter
from bot.bootstrap import Probes, Storage
from bot.bootstrap.vendors import JiraClient
from bot.config import ServiceSettings, Settings
from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.errors import JiraAuthFailed, JiraError, JiraRejected, JiraUnavailable
from bot.status_report import redact
from bot.whatsapp.graph import GraphAdapter, GraphAuthFailed, GraphError
from storage.db import StorageUnavailable, ping
from storage.engines import dialect
from storage.schema import SchemaTooNew

CHECK_TIMEOUT = 10.0
"""Seconds per request: a check that hangs for the daemon's 30-60 s helps nobody."""
PERMISSIONS = ("BROWSE_PROJECTS", "CREATE_ISSUES", "ADD_COMMENTS")
_WHAT_FOR = {"BROWSE_PROJECTS": "browse", "CREATE_ISSUES": "create issues", "ADD_COMMENTS": "comment"}


@dataclass(frozen=True)
class Outcome:
    ok: bool | None
    """None: not checked (nothing to check, or what it depends on failed)."""
    detail: str


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[], Outcome]


def plan(settings: Settings, config_path: pathlib.Path | str, probes: Probes) -> list[Check]:
    """The checks for these settings, in the order they run, reaching what `probes` holds."""
    s = settings
    jira, graph, ai = probes.clients.jira, probes.clients.graph, probes.clients.ai
    checks = [
        Check("config", lambda: Outcome(True, f"{config_path}: {len(s.services)} service(s)")),
        Check("storage", lambda: _storage(probes.storage)),
    ]
    if probes.clients.jira_accounts:
        checks += _jira_accounts(s, probes.clients.jira_accounts)
    else:
        jira_answered: list[bool] = []

        def whoami() -> Outcome:
            outcome = _myself(jira, s)
            jira_answered.append(bool(outcome.ok))
            return outcome

        checks.append(Check("Jira", whoami))
        checks += [
            Check(f"Jira service {svc.id}", _after(jira_answered, partial(_service, jira, svc)))
            for svc in s.services
        ]
    numbers = dict.fromkeys(
        [s.whatsapp.phone_number_id, *(n for svc in s.services for n in svc.phone_number_ids)]
    )
    checks += [Check(f"Graph {number}", partial(_phone, graph, number)) for number in numbers]
    enabled = [svc for svc in s.services if svc.assistant.enabled]
    if not enabled:
        checks.append(Check("OpenAI", lambda: Outcome(None, "no assistant enabled; not checked")))
        return checks
    # One line per (account, model): `[openai]`'s for the services without their own account.
    models = list(dict.fromkeys(svc.assistant.model for svc in enabled if svc.openai is None))
    checks += [Check(f"OpenAI {model}", partial(_model, ai, model)) for model in models]
    for index, svc in enumerate(s.services):
        own = probes.clients.ai_accounts.get(svc.id)
        if own is not None and svc.assistant.enabled:
            hint = f"services[{index}].openai api_key"
            checks.append(
                Check(
                    f"OpenAI {svc.assistant.model} ({svc.id})",
                    partial(_model, own, svc.assistant.model, hint),
                )
            )
    return checks


def _jira_accounts(s: Settings, accounts: tuple[JiraClient, ...]) -> list[Check]:
    """A /myself line per distinct Jira account, then its services' lines with that account."""
    checks: list[Check] = []
    for account in accounts:
        answered: list[bool] = []

        def whoami(account: JiraClient = account, answered: list[bool] = answered) -> Outcome:
            outcome = _myself(account.adapter, s, url=account.url, keys=account.config_keys)
            answered.append(bool(outcome.ok))
            return outcome

        label = "Jira" if account.name == "jira" else f"Jira account {', '.join(account.service_ids)}"
        checks.append(Check(label, whoami))
        checks += [
            Check(f"Jira service {svc.id}", _after(answered, partial(_service, account.adapter, svc)))
            for svc in s.services
            if svc.id in account.service_ids
        ]
    return checks


def run(checks: list[Check], out: TextIO, *, secrets: list[str]) -> bool:
    """Run each check and print its line as soon as it is known; True when none failed."""
    marks = _marks(out)
    width = max(len(c.name) for c in checks)
    ok = True
    for check in checks:
        try:
            outcome = check.run()
        except Exception as exc:  # a check reports every failure as a line, not a traceback
            outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
        ok = ok and outcome.ok is not False
        print(
            f"{marks[outcome.ok]} {check.name:<{width}}  {redact(outcome.detail, secrets)}",
            file=out,
            flush=True,
        )
    return ok


def _marks(out: TextIO) -> dict[bool | None, str]:
    try:
        "✓✗–".encode(getattr(out, "encoding", None) or "utf-8")
    except (LookupError, UnicodeEncodeError):  # a latin-1 terminal, a log file with a legacy codec
        return {True: "+", False: "x", None: "-"}
    return {True: "✓", False: "✗", None: "–"}


def _after(answered: list[bool], check: Callable[[], Outcome]) -> Callable[[], Outcome]:
    def run_if_answered() -> Outcome:
        if not (answered and answered[-1]):
            return Outcome(None, "skipped: Jira did not answer /myself")
        return check()

    return run_if_answered


# -- the checks ---------------------------------------------------------------------------------


def _storage(open_storage: Callable[[], Storage]) -> Outcome:
    try:
        storage = open_storage()
        ping(storage.db)
    except (StorageUnavailable, SchemaTooNew, ValueError) as exc:
        return Outcome(False, str(exc))
    storage.close()
    return Outcome(True, f"{dialect(storage.db)}, schema version {storage.schema_version}")


def _myself(jira: JiraAdapter, s: Settings, *, url: str = "", keys: str = "") -> Outcome:
    url = url or s.jira.url
    try:
        me = jira.myself() or {}
    except JiraAuthFailed as exc:
        keys = keys or ("[jira] email and api_token" if jira.cloud else "[jira] token")
        return Outcome(False, f"{exc} (check {keys})")
    except JiraUnavailable as exc:
        return Outcome(False, f"{exc} ({url})")
    except JiraError as exc:
        return Outcome(False, f"{exc} (is {url} a Jira site?)")
    name = me.get("displayName") or me.get("name") or me.get("accountId") or "?"
    kind = "Cloud" if jira.cloud else "Server/Data Center"
    return Outcome(True, f"{url} ({kind}) as {name}, time zone {me.get('timeZone') or 'unknown'}")


def _service(jira: JiraAdapter, service: ServiceSettings) -> Outcome:
    key = service.project_key
    try:
        project = jira.get_project(key)
    except JiraRejected as exc:
        if exc.status == 404:
            return Outcome(False, f"project {key} does not exist or this account may not see it ({exc})")
        return Outcome(False, f"project {key}: {exc}")
    except JiraError as exc:
        return Outcome(False, f"project {key}: {exc}")
    try:
        types = [str(t.get("name")) for t in jira.creatable_issue_types(key)]
        if service.issue_type.casefold() not in {t.casefold() for t in types}:
            return Outcome(
                False,
                f"project {key} has no issue type {service.issue_type!r} this account may "
                f"create (it may create: {', '.join(types) or 'none'})",
            )
        held = jira.my_permissions(key, list(PERMISSIONS))
    except JiraError as exc:
        return Outcome(False, f"project {key}: {exc}")
    missing = [p for p in PERMISSIONS if not held.get(p)]
    if missing:
        return Outcome(False, f"in project {key} this account lacks {', '.join(missing)}")
    return Outcome(
        True,
        f"project {key} ({project.get('name', '?')}), issue type {service.issue_type}, "
        f"may {', '.join(_WHAT_FOR[p] for p in PERMISSIONS)}",
    )


def _phone(graph: GraphAdapter, phone_number_id: str) -> Outcome:
    try:
        node = graph.phone_number(phone_number_id)
    except GraphAuthFailed as exc:
        return Outcome(False, f"{exc} (check [whatsapp] access_token)")
    except GraphError as exc:
        return Outcome(False, str(exc))
    name = node.get("verified_name")
    return Outcome(True, f"{node.get('display_phone_number', '?')}{f' ({name})' if name else ''}")


def _model(ai: OpenAIAdapter, model: str, keys: str = "[openai] api_key") -> Outcome:
    try:
        ai.check_model(model)
    except AiRejected as exc:
        hint = f" (check {keys})" if exc.status == 401 else ""
        return Outcome(False, f"{exc}{hint}")
    except AiError as exc:
        return Outcome(False, str(exc))
    return Outcome(True, "model available")
