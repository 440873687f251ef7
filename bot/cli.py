"""`wajira` command line. `main(argv) -> exit code`; 2 means the configuration is wrong."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from bot.config import ConfigError, Settings, load_config, resolve_config_path
from bot import logs

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
    status = with_config("status", "queues, lags and recent failures")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    catch_up = with_config("catch-up", "one JQL pass over a window, answering and sending what was missed")
    catch_up.add_argument("--since", required=True, metavar="WHEN", help="30m, 2h, 1d, or an ISO 8601 time")
    catch_up.add_argument("--dry-run", action="store_true", help="list what would be done; record and send nothing")
    commands.add_parser("demo", help="play a conversation against sandbox services; needs no config")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from bot.demo import run_demo

        return run_demo()
    try:
        settings = load_config(resolve_config_path(args.config))
    except ConfigError as exc:
        print(f"wajira: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(settings.logging.level, settings.logging.format, settings.secrets())
    if args.command == "run":
        return _run(settings)
    if args.command == "status":
        return _status(settings, as_json=args.json)
    if args.command == "catch-up":
        from bot.catchup import run_catch_up

        return run_catch_up(settings, args.since, dry_run=args.dry_run)
    return EXIT_FAILED  # argparse guarantees we never get here


def _run(settings: Settings) -> int:
    from bot.daemon import Daemon
    from storage.db import StorageUnavailable

    try:
        return Daemon(settings).run_until_signalled()
    except StorageUnavailable as exc:
        print(f"wajira: storage unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # the port is taken, the SQLite directory is not writable, …
        print(f"wajira: cannot start: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _status(settings: Settings, *, as_json: bool) -> int:
    from storage.db import StorageUnavailable, bind, open_database
    from storage.inbound import InboundQueue
    from storage.schema import migrate

    try:
        db = open_database(settings.storage.url)
        migrate(db)
        bind(db)
        queue = InboundQueue(db)
        report = {"inbound": queue.stats(), "recent_failures": queue.recent_failures(10)}
    except StorageUnavailable as exc:
        print(f"wajira: storage unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return EXIT_OK
    inbound = report["inbound"]
    age = inbound.get("oldest_pending_age_seconds")
    print("inbound queue")
    print(f"  pending   {inbound['pending']}  (retrying {inbound['retrying']})")
    print(f"  dead      {inbound['dead']}")
    print(f"  done      {inbound['done']}")
    print(f"  oldest pending  {'-' if age is None else f'{age:.0f}s'}")
    if report["recent_failures"]:
        print("recent failures")
        for failure in report["recent_failures"]:
            print(f"  #{failure['id']} {failure['state']} after {failure['attempts']} attempts: {failure['last_error']}")
    return EXIT_OK
