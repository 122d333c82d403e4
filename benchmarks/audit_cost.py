#!/usr/bin/env python3
"""The audit log's cost under load (issue 15): queries per second with the log on against off.

Runs `agora-bench --clients N` (crates/agora-bench): N concurrent clients loop over a query
file through the query service, in rounds alternating, in pairs, between a hub with the audit
log (`Hub::open`, as every front) and one whose access log does nothing (the benchmark-only
`Hub::open_with_access_log`), both in the same process on the same data directory. Adds what
agora-bench cannot see from inside: the process's CPU time per round (from /proc, every
thread, SQLite's included), so the cost per query can be read even on a machine other work
disturbs, and the load average.

    python3 benchmarks/audit_cost.py --data-dir D --dataset NAME [--cheap] \\
        [--clients 16] [--seconds 90] [--rounds 8]

`--cheap` runs four small statements (a count from metadata, a point lookup, a LIMIT 10)
instead of the OMOP suite: the worst case, where the access record is a large share of each
query's work.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

CHEAP = [
    {"id": "C1", "sql": "SELECT COUNT(*) AS n FROM person"},
    {"id": "C2", "sql": "SELECT COUNT(*) AS n FROM death"},
    {"id": "C3", "sql": "SELECT concept_name FROM concept WHERE concept_id = 28060"},
    {"id": "C4", "sql": "SELECT person_id, year_of_birth FROM person LIMIT 10"},
]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--engine", default="agora", choices=["agora", "permit"])
    ap.add_argument("--cheap", action="store_true", help="small statements instead of the OMOP suite")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=90, help="per round")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--warmup-seconds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bin", default=os.environ.get("AGORA_BENCH_BIN", str(REPO / "target/release/agora-bench")))
    ap.add_argument("--suite", default=str(REPO.parent / "shared/queries/omop_query_suite.sql"))
    args = ap.parse_args()

    if args.cheap:
        queries = CHEAP
    else:
        queries = [{"id": q.qid, "sql": q.sql} for q in suite.load_suite(Path(args.suite), suite.DEFAULT_PARAMS)]
    with tempfile.TemporaryDirectory(prefix="agora-audit-cost-") as work:
        qfile = Path(work) / "queries.json"
        qfile.write_text(json.dumps(queries))
        load_before = os.getloadavg()
        proc = subprocess.Popen(
            [args.bin, "--data-dir", args.data_dir, "--dataset", args.dataset, "--engine", args.engine,
             "--queries", str(qfile), "--clients", str(args.clients), "--seconds", str(args.seconds),
             "--rounds", str(args.rounds), "--warmup-seconds", str(args.warmup_seconds),
             "--threads", str(args.threads), "--seed", str(args.seed)],
            stdout=subprocess.PIPE, text=True)
        rounds, summary = [], None
        cpu_last = cpu_seconds(proc.pid)
        for line in proc.stdout:
            cpu_now = cpu_seconds(proc.pid)
            record = json.loads(line)
            if record.get("summary"):
                summary = record
                continue
            # The first round's interval also holds start-up and the warm-up round.
            if record["round"] > 1 or args.warmup_seconds == 0:
                record["cpu_s"] = cpu_now - cpu_last
                record["cpu_ms_per_query"] = 1e3 * record["cpu_s"] / max(record["queries"], 1)
            cpu_last = cpu_now
            rounds.append(record)
            print(json.dumps(record), flush=True)
        if proc.wait() != 0 or summary is None:
            sys.exit(f"agora-bench failed (exit status {proc.returncode})")
    load_after = os.getloadavg()

    def cpu_per_query(side):
        rs = [r for r in rounds if r["access_log"] == side and "cpu_s" in r]
        return 1e3 * sum(r["cpu_s"] for r in rs) / max(sum(r["queries"] for r in rs), 1)

    cpu_on, cpu_off = cpu_per_query("on"), cpu_per_query("off")
    pairs = summary["pair_ratios"]
    result = {
        "queries": "cheap" if args.cheap else "omop",
        "clients": args.clients,
        "rounds": args.rounds,
        "round_seconds": args.seconds,
        "qps_on": summary["on"]["qps"],
        "qps_off": summary["off"]["qps"],
        "ratio_on_off": summary["ratio_on_off"],
        "pair_ratio_median": statistics.median(pairs) if pairs else None,
        "pair_ratio_range": [min(pairs), max(pairs)] if pairs else None,
        "errors": summary["on"]["errors"] + summary["off"]["errors"],
        "cpu_ms_per_query_on": cpu_on,
        "cpu_ms_per_query_off": cpu_off,
        # What the CPU time alone allows, if the cores were the only limit.
        "cpu_bound_ratio": cpu_off / cpu_on if cpu_on else None,
        "load_average_before": load_before,
        "load_average_after": load_after,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
