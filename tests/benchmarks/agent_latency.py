"""Agents' words to WhatsApp, and what live chats cost in Jira calls. Run by hand:

    python -m tests.benchmarks.agent_latency            # about 6 minutes
    python -m tests.benchmarks.agent_latency --quick    # about 3 minutes: fewer samples, 30 s windows

Not collected by pytest (no `test_` prefix); it prints figures and asserts nothing. Against the
real `wajira run` process and the loopback Jira and Graph sandboxes, in a temporary directory:

1. latency: an agent's public comment added to the Jira sandbox → the text accepted by the Graph
   sandbox, p50/p95/max, on a hot ticket (the customer just wrote; `[poller] hot_interval_seconds`
   3, `interval_seconds` 30) and on a cold one (`hot_minutes = 0`: only the 30 s pass finds it).
   Comments are spread over the interval's phase with a random pause between samples.
2. idle calls: Jira requests per minute, counted by the Jira sandbox by route, with 0, 1 and 50
   hot tickets and nothing new in Jira (one daemon; customers are added between the windows, and
   each window starts once their tickets and comments are settled).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sandbox import whatsapp_payloads as wa
from sandbox.graph import GraphSandbox
from sandbox.jira import JiraSandbox
from sandbox.meta import MetaSender
from tests.benchmarks.bench import machine, pct, wait_for
from tests.e2e.harness import ACCESS_TOKEN, APP_SECRET, DaemonProcess, config_text, free_port

JIRA_EMAIL, JIRA_TOKEN = "bot@example.com", "bench-jira-api-token"
FULL_INTERVAL = 30
HOT_INTERVAL = 3.0
AGENT = "Agent Bench"


class Rig:
    """One daemon with its own Jira and Graph sandboxes and database."""

    def __init__(self, workdir: Path, name: str, *, hot_minutes: float) -> None:
        self.jira = JiraSandbox(email=JIRA_EMAIL, api_token=JIRA_TOKEN)
        self.jira.start()
        port = free_port()
        self.graph = GraphSandbox(
            access_token=ACCESS_TOKEN,
            app_secret=APP_SECRET,
            webhook_url=f"http://127.0.0.1:{port}/api/whatsapp/webhook",
        )
        self.graph.start()
        config = workdir / f"{name}.toml"
        config.write_text(
            config_text(
                jira_url=self.jira.url,
                jira_email=JIRA_EMAIL,
                jira_api_token=JIRA_TOKEN,
                db_url=f"sqlite:///{workdir / (name + '.db')}",
                port=port,
                graph_url=self.graph.url,
                poll_interval=FULL_INTERVAL,
                poller=f"hot_interval_seconds = {HOT_INTERVAL}\nhot_minutes = {hot_minutes}",
            ).replace('level = "info"', 'level = "warning"')
        )
        self.daemon = DaemonProcess(config, port, workdir / f"{name}.log").start()
        self.meta = MetaSender(self.daemon.webhook_url, APP_SECRET)

    def customer_writes(self, phone: str, text: str) -> None:
        payload = wa.message_payload(
            [wa.text(phone, text)], contacts=[wa.contact(f"Customer {phone}", phone)]
        )
        self.graph.observe_webhook(payload)
        assert self.meta.deliver(payload) == 200

    def comment_count(self) -> int:
        return sum(len(self.jira.comments(i["key"])) for i in self.jira.issues())

    def agent_bodies(self) -> set[str]:
        return {m.get("body") or "" for m in self.graph.sent() if m.get("type") == "text"}

    def close(self) -> None:
        self.daemon.terminate()
        self.graph.stop()
        self.jira.stop()


def first_ticket(rig: Rig, phone: str) -> str:
    rig.customer_writes(phone, "hello, I need help")
    wait_for(lambda: rig.jira.issues(), 60, 0.05)
    key = rig.jira.issues()[0]["key"]
    wait_for(lambda: len(rig.jira.comments(key)) == 1, 60, 0.05)
    return key


def agent_latencies(rig: Rig, key: str, samples: int, max_pause: float, timeout: float) -> list[float]:
    """Seconds from adding each agent comment to its text being accepted by the Graph sandbox."""
    rng = random.Random(12)
    out = []
    for n in range(samples):
        time.sleep(rng.uniform(0, max_pause))
        body = f"*{AGENT}:* bench answer {n}"
        started = time.monotonic()
        rig.jira.add_agent_comment(key, f"bench answer {n}", author=AGENT)
        wait_for(lambda body=body: body in rig.agent_bodies(), timeout, 0.01)
        out.append(time.monotonic() - started)
        print(f"    sample {n + 1}/{samples}: {out[-1]:.2f} s", flush=True)
    return out


def bench_latency(workdir: Path, hot_samples: int, cold_samples: int) -> dict:
    results = {}
    for label, hot_minutes, samples in (("hot", 15, hot_samples), ("cold", 0, cold_samples)):
        print(f"  {label} ticket ({samples} comments)", flush=True)
        rig = Rig(workdir, f"latency-{label}", hot_minutes=hot_minutes)
        try:
            key = first_ticket(rig, "4560000001")
            time.sleep(2)  # the nudged pass records the customer's comment
            pause = HOT_INTERVAL if label == "hot" else FULL_INTERVAL / 3
            results[label] = sorted(agent_latencies(rig, key, samples, pause, FULL_INTERVAL * 2 + 10))
        finally:
            rig.close()
    return results


def calls_in_window(rig: Rig, seconds: float) -> Counter[str]:
    rig.jira.reset_calls()
    time.sleep(seconds)
    return rig.jira.calls


def bench_idle_calls(workdir: Path, window: float) -> dict:
    """Jira calls per minute while nothing changes, with 0, 1 and 50 hot tickets."""
    rig = Rig(workdir, "calls", hot_minutes=15)
    scale = 60 / window
    out: dict = {}
    try:
        time.sleep(2)  # the first full pass (and /myself) at start-up
        for hot, phones in ((0, []), (1, ["4570000000"]), (50, [f"45700{i:05d}" for i in range(1, 50)])):
            before = rig.comment_count()
            for phone in phones:
                rig.customer_writes(phone, "a live chat")
            wanted = before + len(phones)
            wait_for(lambda wanted=wanted: rig.comment_count() == wanted, 120, 0.1)
            time.sleep(HOT_INTERVAL * 2 + 2)  # every new comment read and recorded
            print(f"  {hot} hot tickets: counting for {window:.0f} s", flush=True)
            calls = calls_in_window(rig, window)
            out[hot] = {
                "per_minute": sum(calls.values()) * scale,
                "search_per_minute": sum(n for r, n in calls.items() if "search" in r) * scale,
                "routes": {r: n * scale for r, n in sorted(calls.items())},
            }
    finally:
        rig.close()
    return out


def report(latency: dict, calls: dict, args: argparse.Namespace) -> None:
    print(f"\nmachine: {machine()}")
    print(
        f"\nagent comment -> WhatsApp (interval_seconds {FULL_INTERVAL}, hot_interval_seconds {HOT_INTERVAL})"
    )
    print(f"  {'ticket':<6} {'n':>3} {'p50':>8} {'p95':>8} {'max':>8} {'mean':>8}")
    for label, values in latency.items():
        print(
            f"  {label:<6} {len(values):>3} {pct(values, 0.5):>7.2f}s {pct(values, 0.95):>7.2f}s "
            f"{max(values):>7.2f}s {statistics.fmean(values):>7.2f}s"
        )
    note = f" ({args.window:.0f} s windows scaled x{60 / args.window:g})" if args.window != 60 else ""
    print(f"\nJira calls per minute while idle{note}")
    print(f"  {'hot tickets':>11} {'all calls':>10} {'searches':>9}  routes")
    for hot, c in calls.items():
        routes = ", ".join(f"{r} {n:g}" for r, n in c["routes"].items())
        print(f"  {hot:>11} {c['per_minute']:>10g} {c['search_per_minute']:>9g}  {routes}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and 30 s call windows")
    parser.add_argument("--hot-samples", type=int, help="agent comments timed on the hot ticket (20)")
    parser.add_argument("--cold-samples", type=int, help="agent comments timed on the cold ticket (5)")
    args = parser.parse_args(argv)
    hot_samples = args.hot_samples or (10 if args.quick else 20)
    cold_samples = args.cold_samples or (3 if args.quick else 5)
    args.window = 30.0 if args.quick else 60.0
    with tempfile.TemporaryDirectory(prefix="wajira-agent-bench-") as tmp:
        workdir = Path(tmp)
        print("latency: agent comment -> WhatsApp", flush=True)
        latency = bench_latency(workdir, hot_samples, cold_samples)
        print("Jira calls while idle", flush=True)
        calls = bench_idle_calls(workdir, args.window)
    report(latency, calls, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
