#!/usr/bin/env python3
"""Concurrency and load: N clients run the OMOP query suite against `agora serve` over HTTP.

Each client loops over the 21 queries (in its own shuffled order, so clients do not move in
lock-step) for a fixed duration. Reports throughput, latency percentiles (overall and per
query), errors (must be 0) and the server's peak memory (VmHWM from /proc).

    python3 benchmarks/load.py --data-dir D --dataset NAME [--clients 16] [--seconds 60]

The server must already hold the dataset; this script starts and stops it.
"""

import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO.parent / "shared" / "queries" / "omop_query_suite.sql"
PARAMS = {":cond": "28060", ":drug": "19133905", ":meas": "3004249", ":threshold": "140"}


def load_suite(path: Path) -> list[tuple[str, str]]:
    """The suite's queries as (id, sql), parameters substituted."""
    text = path.read_text()
    parts = re.split(r"^(-- Q\d\d\b.*)$", text, flags=re.M)
    queries = []
    for i in range(1, len(parts), 2):
        sql = parts[i] + "\n" + parts[i + 1].strip()
        for name, value in PARAMS.items():
            sql = sql.replace(name, value)
        queries.append((parts[i][3:6], sql))
    return queries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary: str, data_dir: str, port: int, threads: int) -> subprocess.Popen:
    env = dict(os.environ)
    # A new release is profiled once, in the background of the server (a full scan for the
    # public catalogue); doing it now keeps it out of the measured load.
    subprocess.run([binary, "--data-dir", data_dir, "catalogue", "--format", "json"],
                   check=True, stdout=subprocess.DEVNULL)
    proc = subprocess.Popen(
        [binary, "--data-dir", data_dir, "serve", "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("server did not start: " + (proc.stderr.read() if proc.stderr else ""))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def client(port, token, dataset, queries, stop_at, results, seed):
    """One client: its own connection, queries in a shuffled order, until `stop_at`."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    while time.time() < stop_at:
        order = list(queries)
        rng.shuffle(order)
        for qid, sql in order:
            if time.time() >= stop_at:
                break
            body = json.dumps({"dataset": dataset, "sql": sql, "format": "tsv"})
            start = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/sql", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            results.append((qid, time.perf_counter() - start, ok))


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--bin", default=os.environ.get("AGORA_BIN", str(REPO / "target/release/agora")))
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()

    queries = load_suite(SUITE)
    token = Path(args.data_dir, "keys/operator.token").read_text().strip()
    port = free_port()
    server = start_server(args.bin, args.data_dir, port, os.cpu_count() or 2)
    results: list = []
    stop_at = time.time() + args.seconds
    threads = [threading.Thread(target=client, args=(port, token, args.dataset, queries, stop_at, results, i))
               for i in range(args.clients)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    rss = peak_rss_mib(server.pid)
    server.terminate()
    server.wait(timeout=60)

    ok = [d for _, d, good in results if good]
    errors = sum(1 for *_, good in results if not good)
    summary = {
        "clients": args.clients, "seconds": elapsed, "requests": len(results), "errors": errors,
        "throughput_qps": len(ok) / elapsed,
        "latency_s": {"p50": percentile(ok, 50), "p95": percentile(ok, 95), "p99": percentile(ok, 99)},
        "server_peak_rss_mib": rss,
        "per_query_p50_s": {q: percentile([d for qq, d, g in results if qq == q and g], 50) for q, _ in queries},
    }
    print(f"{args.clients} clients, {elapsed:.0f} s: {len(results)} requests, {errors} errors, "
          f"{summary['throughput_qps']:.1f} queries/s")
    lat = summary["latency_s"]
    print(f"latency p50 {lat['p50']*1000:.0f} ms, p95 {lat['p95']*1000:.0f} ms, p99 {lat['p99']*1000:.0f} ms; "
          f"server peak RSS {rss:.0f} MiB")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
