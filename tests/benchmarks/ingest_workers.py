"""Ingest with several webhook processes (`[server] workers`): 1, 2 and 4 against the bare server.

    python -m tests.benchmarks.ingest_workers                     # 3,000 webhooks a round
    python -m tests.benchmarks.ingest_workers --messages 6000 --json ingest_workers.json

Not collected by pytest (no `test_` prefix). For each worker count a fresh `wajira run` and
SQLite database; Jira answers 503 so the inbox stays paused and only the webhook is measured
(as in tests/benchmarks/bench.py). Rounds alternate between the daemon and the bare server
(`bot.http.server.HttpServer` in one process, an app that only reads the body and answers
200: the ceiling of this HTTP stack in one interpreter) at 16 concurrent clients.

The clients run in `--client-processes` processes (threads in each), one connection per
request, so the load generator is not one interpreter's GIL. On a small machine the load
generator and the server share the CPUs: every figure comes with the CPU it took (server:
user + system seconds of the main process and every worker; clients: their own), the load
average, and `os.cpu_count()`, so a reader sees which side was the bound.

Targets (issue 15): workers = 2 at >= 0.6x the bare server, p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import resource
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sandbox.jira import JiraSandbox
from tests.benchmarks.bench import (
    JIRA_EMAIL,
    JIRA_TOKEN,
    WEBHOOK_PATH,
    machine,
    make_bodies,
    make_daemon,
    pct,
    start_bare,
)
from tests.e2e.harness import DaemonProcess

CONCURRENCY = 16
ROUNDS = 2
WORKER_COUNTS = (1, 2, 4)
TARGET_RATIO, TARGET_P99_MS = 0.6, 50.0


# -- the load generator ---------------------------------------------------------------------


def _client_process(port: int, bodies: list[tuple[bytes, str]], threads: int, start_at: float) -> dict:
    """One client process: `threads` threads POSTing its share of the bodies."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def run(share: list[tuple[bytes, str]]) -> None:
        mine = []
        bad = 0
        for body, signature in share:
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request(
                    "POST",
                    WEBHOOK_PATH,
                    body,
                    {"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                )
                response = conn.getresponse()
                response.read()
                status = response.status
                conn.close()
            except OSError:
                status = 0
            mine.append(time.perf_counter() - t0)
            bad += status != 200
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    workers = [threading.Thread(target=run, args=(bodies[n::threads],)) for n in range(threads)]
    time.sleep(max(0.0, start_at - time.time()))  # every process starts together
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "latencies": latencies,
        "failures": failures[0],
        "cpu_user": usage.ru_utime - usage0.ru_utime,
        "cpu_sys": usage.ru_stime - usage0.ru_stime,
    }


def process_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def family(pid: int) -> list[int]:
    """The process and its children (the webhook workers, and multiprocessing's tracker)."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                pids.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return pids


def family_cpu(pids: list[int]) -> tuple[float, float]:
    user = system = 0.0
    for pid in pids:
        try:
            u, s = process_cpu(pid)
        except OSError:
            continue
        user, system = user + u, system + s
    return user, system


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, every core and every process
    (ours, the clients', and anyone else's): /proc/stat's first line."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def load(pool, port: int, bodies: list[tuple[bytes, str]], server_pid: int, client_processes: int) -> dict:
    """POST every body at CONCURRENCY clients spread over the client processes."""
    pids = family(server_pid)
    threads = CONCURRENCY // client_processes
    start_at = time.time() + 0.3
    shares = [bodies[n::client_processes] for n in range(client_processes)]
    server0, main0, machine0 = family_cpu(pids), process_cpu(server_pid), machine_cpu()
    results = pool.starmap(_client_process, [(port, share, threads, start_at) for share in shares])
    elapsed = max(time.time() - start_at, 1e-6)  # from the moment every client process starts
    server, main1, machine1 = family_cpu(pids), process_cpu(server_pid), machine_cpu()
    latencies = sorted(x for r in results for x in r["latencies"])
    return {
        "requests": len(latencies),
        "failures": sum(r["failures"] for r in results),
        "seconds": elapsed,
        "latencies": latencies,
        "server_user": server[0] - server0[0],
        "server_sys": server[1] - server0[1],
        "server_main": sum(main1) - sum(main0),
        "client_user": sum(r["cpu_user"] for r in results),
        "client_sys": sum(r["cpu_sys"] for r in results),
        "machine_busy": machine1[0] - machine0[0],
        "machine_all": machine1[1] - machine0[1],
    }


def summarise(runs: list[dict]) -> dict:
    lat = sorted(x for r in runs for x in r["latencies"])
    seconds = sum(r["seconds"] for r in runs)

    def share(key: str) -> float:
        return sum(r[key] for r in runs) / seconds

    return {
        "requests": len(lat),
        "failures": sum(r["failures"] for r in runs),
        "per_second": len(lat) / seconds,
        "p50_ms": pct(lat, 0.50) * 1000,
        "p99_ms": pct(lat, 0.99) * 1000,
        # CPU used per wall second: 1.0 is one core busy the whole time.
        "server_cpu_user": share("server_user"),
        "server_cpu_sys": share("server_sys"),
        # The main process's part (jobs, nudges; the webhook too when workers = 1).
        "server_cpu_main": share("server_main"),
        "client_cpu_user": share("client_user"),
        "client_cpu_sys": share("client_sys"),
        # Every core, every process: near 1.0, the machine itself was the bound.
        "machine_busy": sum(r["machine_busy"] for r in runs) / sum(r["machine_all"] for r in runs),
    }


# -- the daemon -----------------------------------------------------------------------------


def start_daemon(workdir: Path, jira: JiraSandbox, workers: int, db_url: str | None) -> DaemonProcess:
    daemon = make_daemon(workdir, f"w{workers}", jira, poll_interval=60, quiet_inbox=True)
    text = daemon.config_path.read_text()
    if db_url:
        text = re.sub(r'^url = "sqlite:[^"]*"$', f'url = "{db_url}"', text, count=1, flags=re.M)
    text = re.sub(
        r"^admin_port = (\d+)$", rf"admin_port = \1\nworkers = {workers}", text, count=1, flags=re.M
    )
    # One summary line per stored webhook at info: the journal's cost, not the webhook's.
    text = text.replace('level = "info"', 'level = "warning"')
    daemon.config_path.write_text(text)
    return daemon.start()


def stored_rows(workdir: Path, workers: int, db_url: str | None) -> int:
    if not db_url:
        db = sqlite3.connect(workdir / f"w{workers}.db")
        try:
            return db.execute("SELECT COUNT(*) FROM inbound_message").fetchone()[0]
        finally:
            db.close()
    from storage.db import open_database

    server = open_database(db_url)
    try:
        return server.execute_sql("SELECT COUNT(*) FROM inbound_message").fetchone()[0]
    finally:
        server.close()


def fresh_database(engine: str) -> tuple[str | None, Callable[[], None]]:
    """None (SQLite in the work directory) or an isolated PostgreSQL/MariaDB database."""
    if engine == "sqlite":
        return None, lambda: None
    from tests.support.databases import isolated_url

    return isolated_url(engine)


def bench(
    workdir: Path, messages: int, client_processes: int, worker_counts: tuple[int, ...], engine: str
) -> dict:
    jira = JiraSandbox(email=JIRA_EMAIL, api_token=JIRA_TOKEN)
    jira.start()
    jira.faults.fail_for(24 * 3600, 503)  # the inbox stays paused: the webhook alone
    bare, bare_port = start_bare()
    ctx = multiprocessing.get_context("spawn")
    results: dict = {"levels": {}}
    run = 0
    try:
        with ctx.Pool(client_processes) as pool:
            for workers in worker_counts:
                db_url, drop = fresh_database(engine)
                daemon = start_daemon(workdir, jira, workers, db_url)
                assert daemon.proc is not None  # started
                runs: dict[str, list[dict]] = {"daemon": [], "bare": []}
                load0 = os.getloadavg()
                try:
                    for _ in range(ROUNDS):
                        for target, port, pid in (
                            ("daemon", daemon.port, daemon.proc.pid),
                            ("bare", bare_port, bare.pid),
                        ):
                            run += 1
                            bodies = make_bodies(messages, run)
                            runs[target].append(load(pool, port, bodies, pid, client_processes))
                            last = runs[target][-1]
                            print(
                                f"  workers={workers} {target:<6} {last['requests'] / last['seconds']:7.0f}/s",
                                flush=True,
                            )
                    stored = stored_rows(workdir, workers, db_url)
                finally:
                    daemon.terminate()
                    drop()
                results["levels"][workers] = {
                    **{t: summarise(r) for t, r in runs.items()},
                    "stored": stored,
                    "sent": messages * ROUNDS,
                    "loadavg_before": load0,
                    "loadavg_after": os.getloadavg(),
                }
    finally:
        bare.terminate()
        bare.wait(timeout=10)
        jira.stop()
    return results


def report(results: dict) -> bool:
    m = results["machine"]
    print(f"\nmachine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, SQLite {m['sqlite']}")
    print(f"storage: {results['engine']}")
    print(
        f"{CONCURRENCY} concurrent clients in {results['client_processes']} processes, one connection per request"
    )
    print(
        f"\n{'workers':>7} {'target':<6} {'req/s':>7} {'x bare':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'srv usr':>7} {'srv sys':>7} {'of main':>7} {'cli usr':>7} {'cli sys':>7} {'busy':>5} {'load1':>5} {'stored/sent':>12}"
    )
    passed = True
    for workers, level in results["levels"].items():
        bare_rate = level["bare"]["per_second"]
        for target in ("daemon", "bare"):
            r = level[target]
            ratio = r["per_second"] / bare_rate if bare_rate else 0.0
            stored = f"{level['stored']}/{level['sent']}" if target == "daemon" else ""
            print(
                f"{workers:>7} {target:<6} {r['per_second']:7.0f} {ratio:6.2f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} "
                f"{r['server_cpu_user']:7.2f} {r['server_cpu_sys']:7.2f} {r['server_cpu_main']:7.2f} "
                f"{r['client_cpu_user']:7.2f} "
                f"{r['client_cpu_sys']:7.2f} {r['machine_busy']:5.0%} {level['loadavg_after'][0]:5.2f} {stored:>12}"
            )
        if int(workers) == 2:
            d = level["daemon"]
            ok_ratio = d["per_second"] >= TARGET_RATIO * bare_rate
            ok_p99 = d["p99_ms"] <= TARGET_P99_MS
            passed = ok_ratio and ok_p99 and level["stored"] == level["sent"] and not d["failures"]
            print(
                f"\nworkers = 2: {d['per_second'] / bare_rate:.2f}x bare (wanted >= {TARGET_RATIO}) "
                f"{'PASS' if ok_ratio else 'FAIL'}; p99 {d['p99_ms']:.1f} ms (wanted <= {TARGET_P99_MS:.0f}) "
                f"{'PASS' if ok_p99 else 'FAIL'}"
            )
    print(
        "CPU columns: CPU seconds per wall second (1.00 = one core busy throughout); "
        f"server = main process + every worker; {results['machine']['nproc']} cores in all;\n"
        "of main: the main process's part of srv usr + srv sys (its commits, the jobs).\n"
        "busy: the whole machine's CPU (all cores, every process, anyone's) during the rounds."
    )
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000, help="webhooks per round and target")
    parser.add_argument("--client-processes", type=int, default=2, choices=(1, 2, 4, 8, 16))
    parser.add_argument("--workers", type=int, action="append", help="worker counts (default 1, 2, 4)")
    parser.add_argument(
        "--engine",
        choices=("sqlite", "postgres", "mysql"),
        default="sqlite",
        help="storage (postgres/mysql: a fresh database on WAJIRA_TEST_POSTGRES_URL / _MYSQL_URL)",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    counts = tuple(args.workers or WORKER_COUNTS)
    with tempfile.TemporaryDirectory(prefix="wajira-bench-workers-") as tmp:
        results = bench(Path(tmp), args.messages, args.client_processes, counts, args.engine)
    results["machine"] = machine()
    results["engine"] = args.engine
    results["client_processes"] = args.client_processes
    passed = report(results)
    if args.json:
        for level in results["levels"].values():
            for target in ("daemon", "bare"):
                level[target].pop("latencies", None)
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
