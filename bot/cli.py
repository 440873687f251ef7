"""`wajira` command line. `main(argv) -> exit code`; 2 means the configuration is wrong.

Each command takes its parts from the composition root, `bot.bootstrap`, and only those it
needs: `status` and `queue retry` open storage and build no vendor client.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

from bot import logs
from bot.config import ConfigError, Settings, load_config, resolve_config_path

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
