"""Run the Jira sandbox on its own: ``python -m sandbox.jira --port N --email E --api-token T``.

Prints the base URL on one line (so a parent process can read it), then serves
until interrupted or terminated.
"""

from __future__ import annotations

import argparse
import signal
import threading

from .sandbox import JiraSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.jira", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--email", default="agent@example.com")
    parser.add_argument("--api-token", default="sandbox-api-token")
    parser.add_argument("--pat", default=None, help="also accept this bearer token")
    parser.add_argument("--deployment", choices=("cloud", "server"), default="cloud")
    parser.add_argument("--time-zone", default="UTC")
    args = parser.parse_args(argv)

    sandbox = JiraSandbox(
        email=args.email,
        api_token=args.api_token,
        pat=args.pat,
        deployment=args.deployment,
        time_zone=args.time_zone,
    )
    print(sandbox.start(args.host, args.port), flush=True)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    while not stopping.wait(0.5):  # a timed wait keeps signal handling prompt
        pass
    sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
