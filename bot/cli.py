"""`wajira` command line. `main(argv) -> exit code`; 2 means the configuration is wrong.

Each command takes its parts from the composition root, `bot.bootstrap`, and only those it
needs: `status`, `queue retry` and `export` open storage and build no vendor client; `forget`
adds the Jira client its notes need.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot import logs
from bot.config import ConfigError, Settings, load_config, resolve_config_path

if TYPE_CHECKING:
    from bot.rules.person import Person

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wajira", description="WhatsApp conversations into Jira.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument(
            "--config", metavar="PATH", help="config file (default: $WAJIRA_CONFIG, then ./config.toml)"
        )
        return sub

    with_config("run", "run the daemon: webhook server and scheduled jobs")
    with_config("check", "validate the config, then reach storage, Jira, WhatsApp and OpenAI")
    status = with_config("status", "queues, lags, last poll and recent failures")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    queue = commands.add_parser("queue", help="act on queued rows")
    queue_commands = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    retry = queue_commands.add_parser("retry", help="requeue dead inbound messages")
    retry.add_argument(
        "--config", metavar="PATH", help="config file (default: $WAJIRA_CONFIG, then ./config.toml)"
    )
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="inbound row ids (see `wajira status`)")
    retry.add_argument("--all-dead", action="store_true", help="every dead inbound message")
    catch_up = with_config("catch-up", "one JQL pass over a window, answering and sending what was missed")
    catch_up.add_argument("--since", required=True, metavar="WHEN", help="30m, 2h, 1d, or an ISO 8601 time")
    catch_up.add_argument(
        "--dry-run", action="store_true", help="list what would be done; record and send nothing"
    )
    export = with_config("export", "print as JSON everything stored about one customer (access request)")
    export.add_argument("person", metavar="PHONE", help="their number in any spelling, or a user id (US.…)")
    forget = with_config("forget", "erase everything stored about one customer and note it on their tickets")
    forget.add_argument("person", metavar="PHONE", help="their number in any spelling, or a user id (US.…)")
    forget.add_argument(
        "--ticket",
        action="append",
        default=[],
        metavar="KEY",
        help="also note the erasure on this ticket (a rerun after Jira could not take the notes)",
    )
    forget.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for a worker busy with their conversation (default 60)",
    )
    commands.add_parser("demo", help="play a conversation against sandbox services; needs no config")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from bot.demo import run_demo

        return run_demo()
    if args.command == "queue" and bool(args.ids) == args.all_dead:
        parser.error("queue retry: give inbound row ids, or --all-dead")
    person = None
    if args.command in ("export", "forget"):
        from bot.rules.person import NotAPerson, person_from_argument

        try:
            person = person_from_argument(args.person)
        except NotAPerson as exc:
            print(f"wajira {args.command}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    config_path = resolve_config_path(args.config)
    try:
        settings = load_config(config_path)
    except ConfigError as exc:
        print(f"wajira: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "run":
        logs.configure(settings.logging.level, settings.logging.format, settings.secrets())
    else:
        # The one-shot commands answer on stdout (`status --json` gets parsed): their log
        # lines go to stderr, and below debug only warnings, so no chatter buries the answer.
        level = "debug" if settings.logging.level == "debug" else "warning"
        logs.configure(level, settings.logging.format, settings.secrets(), stream=sys.stderr)
    if args.command == "run":
        return _run(settings)
    if args.command == "check":
        return _check(settings, config_path)
    if args.command == "status":
        return _status(settings, as_json=args.json)
    if args.command == "queue":
        return _queue_retry(settings, None if args.all_dead else args.ids)
    if args.command == "catch-up":
        from bot.catchup import run_catch_up

        return run_catch_up(settings, args.since, dry_run=args.dry_run)
    if person is not None and args.command == "export":
        return _export(settings, person)
    if person is not None and args.command == "forget":
        return _forget(settings, person, tickets=args.ticket, wait_seconds=args.wait)
    return EXIT_FAILED  # argparse guarantees we never get here


def _run(settings: Settings) -> int:
    from bot.daemon import Daemon
    from storage.db import StorageUnavailable

    try:
        return Daemon(settings).run_until_signalled()
    except ConfigError as exc:  # found only at start, e.g. [flows] private_key_file unreadable
        print(f"wajira: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StorageUnavailable as exc:
        print(f"wajira: storage unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # the port is taken, the SQLite directory is not writable, …
        print(f"wajira: cannot start: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _check(settings: Settings, config_path: pathlib.Path) -> int:
    from bot import checks
    from bot.bootstrap import probes

    reach = probes(settings, max_timeout=checks.CHECK_TIMEOUT)
    passed = checks.run(checks.plan(settings, config_path, reach), sys.stdout, secrets=settings.secrets())
    return EXIT_OK if passed else EXIT_FAILED


def _status(settings: Settings, *, as_json: bool) -> int:
    from bot import status_report
    from bot.bootstrap import open_storage
    from storage.db import StorageUnavailable
    from storage.schema import SchemaTooNew

    try:
        storage = open_storage(settings)
        report = status_report.gather(storage, secrets=settings.secrets())
    except (StorageUnavailable, SchemaTooNew) as exc:
        print(f"wajira: storage unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(report, indent=2) if as_json else status_report.render(report))
    storage.close()
    return EXIT_OK


def _queue_retry(settings: Settings, ids: list[int] | None) -> int:
    from bot import status_report
    from bot.bootstrap import open_storage
    from storage.db import StorageUnavailable
    from storage.schema import SchemaTooNew

    try:
        storage = open_storage(settings)
        result = status_report.retry_dead(storage, ids)
    except (StorageUnavailable, SchemaTooNew) as exc:
        print(f"wajira: storage unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    storage.close()
    print(f"requeued {result.requeued} dead inbound message(s)")
    for row_id, why in result.refused:
        print(f"wajira: inbound #{row_id} was not requeued: {why}", file=sys.stderr)
    return EXIT_FAILED if result.refused else EXIT_OK


def _export(settings: Settings, person: Person) -> int:
    from bot.bootstrap import open_storage
    from storage.db import StorageUnavailable
    from storage.erasure import PersonalRecords
    from storage.schema import SchemaTooNew

    try:
        storage = open_storage(settings)
        found = PersonalRecords(storage.db).export(person)
    except (StorageUnavailable, SchemaTooNew) as exc:
        print(f"wajira: storage unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    storage.close()
    print(json.dumps(found.as_json(), indent=2, sort_keys=True, ensure_ascii=False))
    return EXIT_OK


def _forget(settings: Settings, person: Person, *, tickets: list[str], wait_seconds: float) -> int:
    import os
    import socket

    from bot.bootstrap import open_storage
    from bot.bootstrap.vendors import connect_jira_accounts
    from jobs.erasure import Erasure
    from jobs.notes import Notes
    from storage.db import StorageUnavailable
    from storage.erasure import ConversationBusy, PersonalRecords
    from storage.schema import SchemaTooNew

    owner = f"wajira-forget@{socket.gethostname()}:{os.getpid()}"
    try:
        storage = open_storage(settings)
        erasure = Erasure(PersonalRecords(storage.db), Notes(connect_jira_accounts(settings)), owner)
        done = erasure.forget(person, also_tickets=tickets, wait_seconds=wait_seconds)
    except ConversationBusy as exc:
        print(f"wajira forget: nothing erased: {exc}; try again", file=sys.stderr)
        return EXIT_FAILED
    except (StorageUnavailable, SchemaTooNew) as exc:
        print(f"wajira forget: nothing erased: storage unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    storage.close()
    for issue_key in done.tickets:
        print(issue_key)
    rows = ", ".join(f"{table} {count}" for table, count in sorted(done.deleted.items())) or "none"
    print(f"wajira forget: erased {sum(done.deleted.values())} row(s): {rows}", file=sys.stderr)
    if done.checkpointed is False:
        print(
            "wajira forget: the SQLite WAL is still in use; it empties at the next checkpoint",
            file=sys.stderr,
        )
    if done.notes_missing:
        keys = " ".join(f"--ticket {k}" for k in done.notes_missing)
        print(
            "wajira forget: the erasure is done, but Jira did not take the note on "
            f"{', '.join(done.notes_missing)}; later run: wajira forget PHONE {keys}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK
