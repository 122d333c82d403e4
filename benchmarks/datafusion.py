#!/usr/bin/env python3
"""Agora's query layer against plain DataFusion, in-process, on the same release files.

`agora-bench` (crates/agora-bench) times the OMOP suite either through Agora's workspace (a new
policy-bounded session per query: lake-only store, read-only SQL, memory pool, limits) or
through a plain DataFusion 55 session over the very same Parquet files. Engines alternate by
whole-suite passes; each pass has its own warm-up run per query. The per-query ratio
Agora / DataFusion is the price of the policy layer (goal: <= 1.1).

    python3 benchmarks/datafusion.py --data-dir D --dataset NAME [--passes 3] [--memory-mb N]
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


def run_pass(binary, data_dir, dataset, engine, queries_file, threads, memory_mb, results, settings):
    out = subprocess.run(
        [binary, "--data-dir", data_dir, "--dataset", dataset, "--engine", engine,
         "--queries", queries_file, "--reps", "1", "--threads", str(threads),
         "--memory-mb", str(memory_mb), "--results", results]
        + [a for s in settings for a in ("--set", s)],
        check=True, capture_output=True, text=True)
    return {r["id"]: r["times_s"][0] for r in map(json.loads, out.stdout.splitlines())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--memory-mb", type=int, default=4096, help="Agora's per-query memory limit")
    ap.add_argument("--bin", default=os.environ.get("AGORA_BENCH_BIN", str(REPO / "target/release/agora-bench")))
    ap.add_argument("--suite", default=str(REPO.parent / "shared/queries/omop_query_suite.sql"))
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a DataFusion setting for the plain engine only (repeatable)")
    args = ap.parse_args()

    queries = suite.load_suite(Path(args.suite), suite.DEFAULT_PARAMS)
    work = Path(tempfile.mkdtemp(prefix="agora-df-"))
    qfile = work / "queries.json"
    qfile.write_text(json.dumps([{"id": q.qid, "sql": q.sql} for q in queries]))
    times = {"agora": {q.qid: [] for q in queries}, "datafusion": {q.qid: [] for q in queries}}
    for p in range(args.passes):
        order = ["agora", "datafusion"] if p % 2 == 0 else ["datafusion", "agora"]
        for engine in order:
            res = run_pass(args.bin, args.data_dir, args.dataset, engine, str(qfile), args.threads,
                           args.memory_mb, str(work / engine), args.set)
            for qid, t in res.items():
                times[engine][qid].append(t)

    mismatches = []
    for q in queries:
        _, a = suite.rows_from_tsv((work / "agora" / f"{q.qid}.tsv").read_text())
        _, d = suite.rows_from_tsv((work / "datafusion" / f"{q.qid}.tsv").read_text())
        status, detail = suite.compare(q, a, d)
        if status == "MISMATCH":
            mismatches.append(f"{q.qid}: {detail}")

    med = {e: {q: statistics.median(v) for q, v in t.items()} for e, t in times.items()}
    print(f"{'query':<6} {'agora s':>9} {'plain DF s':>11} {'ratio':>7}")
    ratios = []
    for q in queries:
        a, d = med["agora"][q.qid], med["datafusion"][q.qid]
        ratios.append(a / d)
        print(f"{q.qid:<6} {a:>9.3f} {d:>11.3f} {a / d:>7.2f}")
    ta, td = sum(med["agora"].values()), sum(med["datafusion"].values())
    print(f"{'total':<6} {ta:>9.3f} {td:>11.3f} {ta / td:>7.2f}")
    print(f"median per-query ratio {statistics.median(ratios):.2f}, worst {max(ratios):.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"medians_s": med, "passes": args.passes,
                                              "mismatches": mismatches}, indent=2))
    for m in mismatches:
        print("MISMATCH", m)
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
