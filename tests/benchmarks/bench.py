"""Benchmarks of the real `wajira run` process against the loopback sandboxes. Run by hand:

    python -m tests.benchmarks.bench                       # quick: 20,000 webhooks
    python -m tests.benchmarks.bench --messages 100000 --json bench.json

Not collected by pytest (no `test_` prefix). Four parts, each against a fresh daemon and
database in a temporary directory:

1. ingest: signed webhooks (one message each, distinct wamids, so every one stores a row) per
   second and p50/p99 latency at concurrencies 1, 4, 16, alternating round by round with a
   bare threaded wsgiref server (`bot.http.server.HttpServer`, in its own process) that only
   reads the body and answers 200: the ceiling of this HTTP stack on this machine. Jira
   answers 503 meanwhile, so the inbox stays paused and the figures are the webhook's alone.
   Then the daemon's peak RSS (VmHWM) after all those messages.
2. latencies: customer -> Jira comment, customer -> AI reply on WhatsApp, agent comment ->
   WhatsApp, with simulated Jira and OpenAI latency.
3. Jira calls per inbound message (new ticket, existing ticket) and per idle and busy poll,
   counted by the Jira sandbox.
4. fsync bound: empty SQLite commits per second (WAL, synchronous=FULL) on the disk used.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bot.rules.signature import sign
from sandbox import whatsapp_payloads as wa
from sandbox.graph import GraphSandbox
from sandbox.jira import JiraSandbox
from sandbox.openai_stub import OpenAISandbox
from tests.e2e.harness import (
    ACCESS_TOKEN,
    APP_SECRET,
    OPENAI_KEY,
    REPO,
    DaemonProcess,
    config_text,
    free_port,
)

JIRA_EMAIL, JIRA_TOKEN = "bot@example.com", "bench-jira-api-token"
WEBHOOK_PATH = "/api/whatsapp/webhook"
CONCURRENCIES = (1, 4, 16)
ROUNDS = 2  # daemon and bare alternate this many times per concurrency


# -- load generation ------------------------------------------------------------------------


def make_bodies(count: int, run: int) -> list[tuple[bytes, str]]:
    """`count` signed one-message webhooks from 500 customers, every wamid distinct."""
    out = []
    now = int(time.time())
    for i in range(count):
        phone = f"4520{(run * 7919 + i) % 500:06d}"
        payload = wa.message_payload(
            [wa.text(phone, f"bench message {run}-{i}", timestamp=now)],
            contacts=[wa.contact(f"Customer {i % 500}", phone)],
        )
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()
        out.append((body, sign(APP_SECRET, body)))
    return out


def post(port: int, body: bytes, signature: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST", WEBHOOK_PATH, body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        )
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, bodies: list[tuple[bytes, str]], concurrency: int, server_pid: int) -> dict:
    """POST every body with `concurrency` threads, one connection per request (wsgiref is HTTP/1.0)."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures = [0] * concurrency

    def worker(n: int) -> None:
        for body, signature in bodies[n::concurrency]:
            t0 = time.perf_counter()
            try:
                status = post(port, body, signature)
            except OSError:
                status = 0
            latencies[n].append(time.perf_counter() - t0)
            if status != 200:
                failures[n] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    server0 = cpu_seconds(server_pid)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.perf_counter() - t0
    flat = sorted(x for lat in latencies for x in lat)
    return {
        "requests": len(flat),
        "failures": sum(failures),
        "seconds": elapsed,
        "client_cpu_seconds": time.process_time() - cpu0,
        "server_cpu_seconds": cpu_seconds(server_pid) - server0,
        "latencies": flat,
    }


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def summarise(runs: list[dict]) -> dict:
    lat = sorted(x for r in runs for x in r["latencies"])
    seconds = sum(r["seconds"] for r in runs)
    return {
        "requests": len(lat),
        "failures": sum(r["failures"] for r in runs),
        "per_second": len(lat) / seconds if seconds else 0.0,
        "p50_ms": pct(lat, 0.50) * 1000,
        "p99_ms": pct(lat, 0.99) * 1000,
        "client_cpu_share": sum(r["client_cpu_seconds"] for r in runs) / seconds if seconds else 0.0,
        "server_cpu_ms_per_request": sum(r["server_cpu_seconds"] for r in runs) / len(lat) * 1000
        if lat
        else 0.0,
        "server_cpu_share": sum(r["server_cpu_seconds"] for r in runs) / seconds if seconds else 0.0,
    }


# -- processes ------------------------------------------------------------------------------


def bare_server_main(port: int) -> None:
    """The ceiling: the daemon's HTTP server with an app that reads the body and answers 200."""
    from bot.http.server import HttpServer

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        body = b'{"status":"ok"}'
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    server = HttpServer(app, "127.0.0.1", port)
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


def start_bare() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.bench", "--bare-server", str(port)], cwd=REPO
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            post(port, b"{}", "x")
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("bare server did not start")


def make_daemon(
    workdir: Path,
    name: str,
    jira: JiraSandbox,
    *,
    graph: GraphSandbox | None = None,
    openai: OpenAISandbox | None = None,
    port: int | None = None,
    assistant: bool = False,
    poll_interval: int = 1,
    debounce: float = 0.5,
    quiet_inbox: bool = False,
) -> DaemonProcess:
    port = port or free_port()
    options = {}
    if graph is not None:
        options["graph_url"] = graph.url
    if openai is not None:
        options["openai_url"] = openai.url
    text = config_text(
        jira_url=jira.url,
        jira_email=JIRA_EMAIL,
        jira_api_token=JIRA_TOKEN,
        db_url=f"sqlite:///{workdir / (name + '.db')}",
        port=port,
        assistant=assistant,
        poll_interval=poll_interval,
        **options,
    )
    text = text.replace("debounce_seconds = 0.5", f"debounce_seconds = {debounce}")
    if quiet_inbox:
        # [inbox] comes first: after the first 503 the inbox pauses for minutes, not 2 s, so
        # its retries (four commits per conversation) do not compete with the webhook.
        text = text.replace("retry_base_seconds = 0.2", "retry_base_seconds = 600", 1)
        text = text.replace("retry_max_seconds = 2", "retry_max_seconds = 600", 1)
    config = workdir / f"{name}.toml"
    config.write_text(text)
    return DaemonProcess(config, port, workdir / f"{name}.log")


def memory_kb(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out


def wait_for(predicate, timeout: float, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s")


# -- the parts ------------------------------------------------------------------------------


def bench_ingest(workdir: Path, messages: int, log_level_quiet: bool = True) -> dict:
    jira = JiraSandbox(email=JIRA_EMAIL, api_token=JIRA_TOKEN)
    jira.start()
    jira.faults.fail_for(24 * 3600, 503)  # the inbox stays paused: we measure the webhook alone
    daemon = make_daemon(workdir, "ingest", jira, poll_interval=60, quiet_inbox=True).start()
    bare, bare_port = start_bare()
    per_run = max(1, messages // (len(CONCURRENCIES) * ROUNDS))
    result: dict = {
        "messages_per_run": per_run,
        "rounds": ROUNDS,
        "levels": {},
        "memory_kb_at_start": memory_kb(daemon.proc.pid),
    }
    try:
        run = 0
        for concurrency in CONCURRENCIES:
            runs: dict[str, list[dict]] = {"daemon": [], "bare": []}
            for _ in range(ROUNDS):
                for target, port, pid in (
                    ("daemon", daemon.port, daemon.proc.pid),
                    ("bare", bare_port, bare.pid),
                ):
                    run += 1
                    bodies = make_bodies(per_run, run)
                    runs[target].append(load(port, bodies, concurrency, pid))
                    print(
                        f"  ingest c={concurrency:<2} {target:<6} round: "
                        f"{runs[target][-1]['requests'] / runs[target][-1]['seconds']:7.0f}/s",
                        flush=True,
                    )
            result["levels"][concurrency] = {t: summarise(r) for t, r in runs.items()}
        db = sqlite3.connect(workdir / "ingest.db")
        result["rows_stored"] = db.execute("SELECT COUNT(*) FROM inbound_message").fetchone()[0]
        db.close()
        result["webhooks_sent"] = per_run * len(CONCURRENCIES) * ROUNDS
        result["memory_kb"] = memory_kb(daemon.proc.pid)
    finally:
        bare.terminate()
        bare.wait(timeout=10)
        daemon.terminate()
        jira.stop()
    return result


def bench_latencies(
    workdir: Path, samples: int, jira_latency: float, ai_latency: float, debounce: float, poll_interval: int
) -> dict:
    jira = JiraSandbox(email=JIRA_EMAIL, api_token=JIRA_TOKEN)
    jira.start()
    openai = OpenAISandbox(api_key=OPENAI_KEY, latency=ai_latency)
    openai.start()
    port = free_port()
    graph = GraphSandbox(
        access_token=ACCESS_TOKEN, app_secret=APP_SECRET, webhook_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    )
    graph.start()
    daemon = make_daemon(
        workdir,
        "latency",
        jira,
        graph=graph,
        openai=openai,
        port=port,
        assistant=True,
        poll_interval=poll_interval,
        debounce=debounce,
    ).start()
    jira.faults.set_latency(jira_latency)
    out: dict[str, list[float]] = {
        "comment_new_ticket": [],
        "comment_existing_ticket": [],
        "ai_reply": [],
        "agent_to_whatsapp": [],
    }

    def comments_with(token: str):
        for issue in jira.issues():
            for c in jira.comments(issue["key"]):
                if token in json.dumps(c["body"]):
                    return issue["key"]
        return None

    def texts_to(phone: str) -> list[dict]:
        return [m for m in graph.sent() if m.get("type") == "text" and m.get("to") == phone]

    def say(phone: str, token: str) -> float:
        payload = wa.message_payload(
            [wa.text(phone, f"Where is order {token}?")], contacts=[wa.contact("Bench Customer", phone)]
        )
        graph.observe_webhook(payload)
        body = json.dumps(payload, separators=(",", ":")).encode()
        t0 = time.perf_counter()
        assert post(daemon.port, body, sign(APP_SECRET, body)) == 200
        return t0

    try:
        for i in range(samples):
            phone = f"4530{i:06d}"
            for step, kind in ((0, "comment_new_ticket"), (1, "comment_existing_ticket")):
                token = f"Z{i}X{step}Q"
                t0 = say(phone, token)
                key = wait_for(lambda token=token: comments_with(token), 30)
                out[kind].append(time.perf_counter() - t0)
                wait_for(lambda phone=phone, step=step: len(texts_to(phone)) > step, 30)
                out["ai_reply"].append(time.perf_counter() - t0)
            time.sleep(0.2)
            t0 = time.perf_counter()
            jira.add_agent_comment(key, f"Agent answer {i}", author="Agent Smith")
            wait_for(
                lambda phone=phone: any("Agent answer" in m.get("body", "") for m in texts_to(phone)), 30
            )
            out["agent_to_whatsapp"].append(time.perf_counter() - t0)
            print(
                f"  latency sample {i + 1}/{samples}: comment {out['comment_new_ticket'][-1]:.2f}s, "
                f"AI {out['ai_reply'][-1]:.2f}s, agent {out['agent_to_whatsapp'][-1]:.2f}s",
                flush=True,
            )
    finally:
        daemon.terminate()
        graph.stop()
        openai.stop()
        jira.stop()
    return {
        kind: {"n": len(v), "p50_s": statistics.median(v), "p95_s": pct(sorted(v), 0.95), "max_s": max(v)}
        for kind, v in out.items()
        if v
    }


def bench_calls(workdir: Path, poll_interval: int) -> dict:
    jira = JiraSandbox(email=JIRA_EMAIL, api_token=JIRA_TOKEN)
    jira.start()
    port = free_port()
    graph = GraphSandbox(
        access_token=ACCESS_TOKEN, app_secret=APP_SECRET, webhook_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    )
    graph.start()
    daemon = make_daemon(
        workdir, "calls", jira, graph=graph, port=port, assistant=False, poll_interval=poll_interval
    ).start()
    phone = "4540000001"
    out: dict = {}

    def comment_count() -> int:
        return sum(len(jira.comments(i["key"])) for i in jira.issues())

    def settle() -> None:
        time.sleep(poll_interval * 0.5 + 0.5)

    def is_poll(route: str) -> bool:
        return "search" in route

    def split(calls) -> dict:
        return {
            "inbox": sum(n for r, n in calls.items() if not is_poll(r)),
            "search": sum(n for r, n in calls.items() if is_poll(r)),
            "routes": dict(calls),
        }

    try:
        time.sleep(poll_interval + 0.5)
        for label in ("new_ticket", "existing_ticket", "existing_ticket_2"):
            before = comment_count()
            settle()
            jira.reset_calls()
            payload = wa.message_payload(
                [wa.text(phone, f"calls {label}")], contacts=[wa.contact("Calls Customer", phone)]
            )
            graph.observe_webhook(payload)
            body = json.dumps(payload, separators=(",", ":")).encode()
            assert post(daemon.port, body, sign(APP_SECRET, body)) == 200
            wait_for(lambda before=before: comment_count() > before, 30)
            # The inbox's calls are done when the comment exists; the poll it nudges follows.
            out[label] = split(jira.calls)
        # idle polls: nothing changes in Jira
        settle()
        jira.reset_calls()
        time.sleep(poll_interval * 5 + 0.2)
        idle = jira.calls
        out["idle"] = {
            "polls": sum(n for r, n in idle.items() if is_poll(r)),
            "calls": sum(idle.values()),
            "routes": dict(idle),
        }
        # a busy poll: one new agent comment to push to WhatsApp
        [issue] = jira.issues()
        settle()
        jira.reset_calls()
        jira.add_agent_comment(issue["key"], "Agent reply for the busy poll", author="Agent Smith")
        wait_for(lambda: any("busy poll" in m.get("body", "") for m in graph.sent()), 30)
        time.sleep(0.3)
        busy = jira.calls
        out["busy"] = {
            "polls": sum(n for r, n in busy.items() if is_poll(r)),
            "calls": sum(busy.values()),
            "routes": dict(busy),
        }
    finally:
        daemon.terminate()
        graph.stop()
        jira.stop()
    return out


def bench_fsync(workdir: Path, commits: int = 300) -> dict:
    """Empty-ish commits (one tiny insert) per second with the daemon's pragmas: the fsync bound."""
    path = workdir / "fsync.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=wal")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (x INTEGER)")
    t0 = time.perf_counter()
    for i in range(commits):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (i,))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return {"commits": commits, "per_second": commits / elapsed, "ms_per_commit": elapsed / commits * 1000}


# -- report -----------------------------------------------------------------------------------


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "",
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(results: dict, args: argparse.Namespace) -> list[dict]:
    checks = []

    def check(name: str, value: str, target: str, ok: bool) -> None:
        checks.append({"target": name, "value": value, "wanted": target, "pass": ok})

    m = results["machine"]
    print(
        f"\nmachine: {m['nproc']} cores, {m['cpu']}, {m['memory']}, Python {m['python']}, SQLite {m['sqlite']}"
    )
    if "ingest" in results:
        ing = results["ingest"]
        print(
            f"\ningest ({ing['webhooks_sent']} webhooks to each server, one message each, "
            f"{ing['rows_stored']} rows stored)"
        )
        print(
            f"{'conc':>4} | {'daemon/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'bare/s':>7} {'p50 ms':>7} "
            f"{'p99 ms':>7} | ratio | server CPU ms/req | client CPU"
        )
        for c, lv in ing["levels"].items():
            d, b = lv["daemon"], lv["bare"]
            print(
                f"{c:>4} | {d['per_second']:9.0f} {d['p50_ms']:7.2f} {d['p99_ms']:7.2f} | {b['per_second']:7.0f} "
                f"{b['p50_ms']:7.2f} {b['p99_ms']:7.2f} | {d['per_second'] / b['per_second']:5.2f} | "
                f"{d['server_cpu_ms_per_request']:.2f}/{b['server_cpu_ms_per_request']:.2f} "
                f"({d['server_cpu_share']:.0%}/{b['server_cpu_share']:.0%}) | "
                f"{d['client_cpu_share']:.0%}/{b['client_cpu_share']:.0%}"
            )
        best = max(ing["levels"].values(), key=lambda lv: lv["daemon"]["per_second"])
        check(
            "webhooks/s (best concurrency)",
            f"{best['daemon']['per_second']:.0f}",
            ">= 1500",
            best["daemon"]["per_second"] >= 1500,
        )
        ratio = best["daemon"]["per_second"] / best["bare"]["per_second"]
        check("vs bare wsgiref (same concurrency)", f"{ratio:.2f}x", ">= 0.6x", ratio >= 0.6)
        for c, lv in ing["levels"].items():
            check(
                f"p99 at concurrency {c}",
                f"{lv['daemon']['p99_ms']:.1f} ms",
                "<= 50 ms",
                lv["daemon"]["p99_ms"] <= 50,
            )
        failures = sum(lv[t]["failures"] for lv in ing["levels"].values() for t in lv)
        check("non-200 answers", str(failures), "0", failures == 0)
        rss = ing["memory_kb"]["VmHWM"] / 1024
        print(
            f"daemon RSS at start {ing['memory_kb_at_start']['VmRSS'] / 1024:.1f} MB, "
            f"now {ing['memory_kb']['VmRSS'] / 1024:.1f} MB, peak {rss:.1f} MB"
        )
        check(f"peak RSS after {ing['webhooks_sent']} messages", f"{rss:.1f} MB", "<= 100 MB", rss <= 100)
    if "fsync" in results:
        f = results["fsync"]
        print(
            f"\nSQLite WAL synchronous=FULL on this disk: {f['per_second']:.0f} commits/s "
            f"({f['ms_per_commit']:.2f} ms per commit, one writer)"
        )
    if "latencies" in results:
        lat = results["latencies"]
        print(
            f"\nlatencies (Jira {args.jira_latency}s per call, OpenAI {args.ai_latency}s, "
            f"debounce {args.debounce}s, poll interval {args.poll_interval}s)"
        )
        for kind, v in lat.items():
            print(
                f"  {kind:<24} n={v['n']:<3} p50 {v['p50_s']:.3f}s  p95 {v['p95_s']:.3f}s  max {v['max_s']:.3f}s"
            )
        budget = args.ai_latency + 2 * args.jira_latency + 1
        check(
            "AI reply p95",
            f"{lat['ai_reply']['p95_s']:.2f} s",
            f"<= {budget:.2f} s (AI + 2 Jira + 1 s)",
            lat["ai_reply"]["p95_s"] <= budget,
        )
    if "calls" in results:
        calls = results["calls"]
        print("\nJira calls (counted by the sandbox)")
        for label in ("new_ticket", "existing_ticket", "existing_ticket_2"):
            c = calls[label]
            print(f"  message, {label:<18} inbox {c['inbox']}  (+{c['search']} search)  {c['routes']}")
        for label in ("idle", "busy"):
            c = calls[label]
            print(
                f"  {label} poll{'s' if label == 'idle' else ''}: {c['calls']} calls in {c['polls']} polls  {c['routes']}"
            )
        existing = max(calls["existing_ticket"]["inbox"], calls["existing_ticket_2"]["inbox"])
        check("Jira calls per message, existing ticket", str(existing), "<= 1", existing <= 1)
        idle = calls["idle"]
        per_poll = idle["calls"] / idle["polls"] if idle["polls"] else float("inf")
        check("Jira calls per idle poll", f"{per_poll:.2f}", "1", per_poll <= 1)
    print(f"\n{'target':<42} {'measured':>12}  {'wanted':<28} result")
    for c in checks:
        print(f"{c['target']:<42} {c['value']:>12}  {c['wanted']:<28} {verdict(c['pass'])}")
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20000, help="webhooks sent to the daemon in all")
    parser.add_argument("--samples", type=int, default=8, help="conversations timed for latencies")
    parser.add_argument("--jira-latency", type=float, default=0.05)
    parser.add_argument("--ai-latency", type=float, default=0.5)
    parser.add_argument("--debounce", type=float, default=0.2)
    parser.add_argument("--poll-interval", type=int, default=1)
    parser.add_argument("--only", choices=("ingest", "latencies", "calls", "fsync"), action="append")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        bare_server_main(args.bare_server)
        return 0
    parts = args.only or ["fsync", "ingest", "latencies", "calls"]
    results: dict = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="wajira-bench-") as tmp:
        workdir = Path(tmp)
        if "fsync" in parts:
            results["fsync"] = bench_fsync(workdir)
        if "ingest" in parts:
            print(f"ingest: {args.messages} webhooks to the daemon, as many to the bare server")
            results["ingest"] = bench_ingest(workdir, args.messages)
        if "latencies" in parts:
            print("latencies")
            results["latencies"] = bench_latencies(
                workdir, args.samples, args.jira_latency, args.ai_latency, args.debounce, args.poll_interval
            )
        if "calls" in parts:
            print("Jira calls")
            results["calls"] = bench_calls(workdir, max(2, args.poll_interval))
    results["checks"] = report(results, args)
    if args.json:
        for lv in results.get("ingest", {}).get("levels", {}).values():
            for t in lv.values():
                t.pop("latencies", None)
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0 if all(c["pass"] for c in results["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
