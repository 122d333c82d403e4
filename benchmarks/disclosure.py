#!/usr/bin/env python3
"""Disclosure control's cost: the OMOP suite as an operator, as a researcher, and elsewhere.

One run, the same release files, engines alternating query by query:

- `agora`: an operator's session per query through the query service (`agora-bench --engine
  agora --stdin`), the access record included;
- `permit`: a researcher's session per query through a data permit on every table and column of
  the release under the default output policy (snds, k = 10; `agora-bench --engine permit`,
  which sets the study up through governance on first use): every answer passes disclosure
  control (release points with hidden distinct-person counts, then the rest over released rows);
- `datafusion`: plain DataFusion 55 over the same files (`agora-bench --engine datafusion`);
- `duckdb`: DuckDB in-process over the same files (unless `--no-duckdb`).

Each query runs once per engine as a warm-up, then `--reps` times per engine, rotating which
engine goes first. Agora and DataFusion are timed inside `agora-bench` (session set-up to the
last batch), DuckDB in this process (execute and fetch every row). The figure is the median.
A query the permit refuses (e.g. MIN/MAX) is reported as refused, not timed.

    python3 benchmarks/disclosure.py --data-dir D --dataset NAME [--reps 3] [--out FILE.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BENCH_ENGINES = ("agora", "permit", "datafusion")


class Bench:
    """One long-lived `agora-bench --stdin` process."""

    def __init__(self, binary, data_dir, dataset, engine, threads, memory_mb, log):
        self.engine = engine
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [binary, "--data-dir", data_dir, "--dataset", dataset, "--engine", engine,
             "--threads", str(threads), "--memory-mb", str(memory_mb), "--stdin"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)

    def query(self, qid, sql):
        self.proc.stdin.write(json.dumps({"id": qid, "sql": sql}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"agora-bench --engine {self.engine} exited with {self.proc.wait()}")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


class DuckDB:
    """DuckDB over the release's own Parquet files (read from its manifest)."""

    def __init__(self, data_dir, dataset, threads):
        import duckdb
        # The latest manifest of the dataset (a benchmark data directory holds one release).
        lake = Path(data_dir) / "lake"
        manifests = [json.loads(m.read_text()) for m in (lake / "datasets" / dataset / "manifests").glob("*.json")]
        if not manifests:
            raise RuntimeError(f"no manifest of dataset {dataset} under {lake}")
        manifest = max(manifests, key=lambda m: m["created_at"])
        self.con = duckdb.connect()
        self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute("SET integer_division = true")  # the suite is PostgreSQL SQL
        for t in manifest["tables"]:
            files = ", ".join("'" + str(lake / f["path"]).replace("'", "''") + "'" for f in t["files"])
            self.con.execute(f'CREATE VIEW "{t["name"]}" AS SELECT * FROM read_parquet([{files}])')

    def query(self, qid, sql):
        start = time.perf_counter()
        rows = self.con.execute(sql).fetchall()
        return {"id": qid, "seconds": time.perf_counter() - start, "rows": len(rows), "python": rows}

    def close(self):
        self.con.close()


def outcome(answer, operator_rows):
    """What the permit did to a query's answer, in words."""
    if "error" in answer:
        return ("refused: " if answer.get("refused") else "failed: ") + answer["error"].splitlines()[0][:120]
    d = answer.get("disclosure") or {}
    parts = [f"{answer['rows']}/{operator_rows} rows"]
    if d.get("groups_withheld"):
        parts.append(f"{d['groups_withheld']} groups withheld")
    if d.get("cells_suppressed"):
        parts.append(f"{d['cells_suppressed']} cells suppressed")
    return ", ".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--memory-mb", type=int, default=4096, help="Agora's per-query memory limit")
    ap.add_argument("--bin", default=os.environ.get("AGORA_BENCH_BIN", str(REPO / "target/release/agora-bench")))
    ap.add_argument("--suite", default=str(REPO.parent / "shared/queries/omop_query_suite.sql"))
    ap.add_argument("--only", help="comma-separated query ids")
    ap.add_argument("--no-duckdb", action="store_true")
    ap.add_argument("--out", help="write every measurement as JSON here")
    args = ap.parse_args()

    queries = suite.load_suite(Path(args.suite), suite.DEFAULT_PARAMS)
    if args.only:
        wanted = set(args.only.split(","))
        queries = [q for q in queries if q.qid in wanted]
    logs = Path(args.out).with_suffix("") if args.out else Path("/tmp/agora-disclosure")
    logs.mkdir(parents=True, exist_ok=True)
    engines = {e: Bench(args.bin, args.data_dir, args.dataset, e, args.threads, args.memory_mb,
                        logs / f"{e}.log") for e in BENCH_ENGINES}
    if not args.no_duckdb:
        engines["duckdb"] = DuckDB(args.data_dir, args.dataset, args.threads)
    names = list(engines)
    results = {}
    try:
        for q in queries:
            first = {e: engines[e].query(q.qid, q.sql) for e in names}  # warm-up, kept for the checks
            times = {e: [] for e in names}
            for rep in range(args.reps):
                order = names[rep % len(names):] + names[:rep % len(names)]
                for e in order:
                    if "error" in first[e]:
                        continue
                    answer = engines[e].query(q.qid, q.sql)
                    if "error" in answer:
                        raise RuntimeError(f"{q.qid} {e}: {answer['error']}")
                    times[e].append(answer["seconds"])
            checks = {}
            if "error" not in first["agora"]:
                _, op_rows = suite.rows_from_tsv(first["agora"]["tsv"])
                for e in ("datafusion", "duckdb"):
                    if e in first and "error" not in first[e]:
                        other = (suite.rows_from_python(first[e]["python"]) if e == "duckdb"
                                 else suite.rows_from_tsv(first[e]["tsv"])[1])
                        checks[e] = suite.compare(q, op_rows, other)[0]
                if "error" not in first["permit"]:
                    _, pr = suite.rows_from_tsv(first["permit"]["tsv"])
                    checks["permit_same_as_operator"] = suite.compare(q, pr, op_rows)[0] != "MISMATCH"
            med = {e: statistics.median(t) if t else None for e, t in times.items()}
            results[q.qid] = {
                "title": q.title, "times_s": times, "median_s": med, "checks": checks,
                "rows": {e: first[e].get("rows") for e in names},
                "errors": {e: first[e]["error"] for e in names if "error" in first[e]},
                "permit_refused": bool(first["permit"].get("refused")),
                "disclosure": first["permit"].get("disclosure"),
                "permit_outcome": outcome(first["permit"], first["agora"].get("rows")),
            }
            r = results[q.qid]
            print(f"{q.qid} " + " ".join(f"{e}={m * 1000:.0f}ms" if m else f"{e}=-" for e, m in med.items())
                  + f" | {r['permit_outcome']}", file=sys.stderr, flush=True)
    finally:
        for e in engines.values():
            e.close()

    def ms(x):
        return f"{x * 1000:,.0f}" if x is not None else "-"

    has_duck = "duckdb" in names
    print(f"{'query':<6} {'agora ms':>9} {'permit ms':>10} {'p/agora':>8} {'DF ms':>8}"
          + (f" {'duckdb ms':>10} {'p/duckdb':>9}" if has_duck else "") + "  permit outcome")
    ratios, duck_ratios = {}, {}
    for qid, r in results.items():
        m = r["median_s"]
        ratio = m["permit"] / m["agora"] if m["permit"] and m["agora"] else None
        dr = m["permit"] / m["duckdb"] if has_duck and m["permit"] and m.get("duckdb") else None
        if ratio is not None:
            ratios[qid] = ratio
        if dr is not None:
            duck_ratios[qid] = dr
        r["ratio_permit_agora"], r["ratio_permit_duckdb"] = ratio, dr
        print(f"{qid:<6} {ms(m['agora']):>9} {ms(m['permit']):>10} {ratio or 0:>8.2f} {ms(m['datafusion']):>8}"
              + (f" {ms(m.get('duckdb')):>10} {dr or 0:>9.2f}" if has_duck else "") + f"  {r['permit_outcome']}")
    summary = {}
    if ratios:
        worst = max(ratios, key=ratios.get)
        summary = {"median_ratio_permit_agora": statistics.median(ratios.values()),
                   "geomean_ratio_permit_agora": statistics.geometric_mean(ratios.values()),
                   "worst": worst, "worst_ratio": ratios[worst], "answered": len(ratios),
                   "refused": [q for q, r in results.items() if r["permit_refused"]]}
        if duck_ratios:
            summary["median_ratio_permit_duckdb"] = statistics.median(duck_ratios.values())
        print(f"permit/agora: median {summary['median_ratio_permit_agora']:.3f}, geometric mean "
              f"{summary['geomean_ratio_permit_agora']:.3f}, worst {worst} ({ratios[worst]:.2f}) "
              f"over {len(ratios)} answered queries; refused: {', '.join(summary['refused']) or 'none'}")
        if duck_ratios:
            print(f"permit/duckdb: median {summary['median_ratio_permit_duckdb']:.3f}")
    mismatches = [f"{q} {e}" for q, r in results.items() for e, c in r["checks"].items()
                  if e in ("datafusion", "duckdb") and c == "MISMATCH"]
    for m in mismatches:
        print("MISMATCH", m)
    if args.out:
        for r in results.values():
            r.pop("python", None)
        Path(args.out).write_text(json.dumps({"reps": args.reps, "threads": args.threads,
                                              "summary": summary, "queries": results}, indent=2))
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
