#!/usr/bin/env python3
"""Agora vs DuckDB on synthetic OMOP data: ingest time, query times, answers and memory.

One run does everything, so figures always come from the same data, binary and machine:

  1. data     generates (or reuses) a synthetic OMOP CDM 5.4 extract with `agora generate omop`,
              under benchmarks/data/omop-p<persons>-s<seed>/ (keyed by persons and seed);
  2. ingest   `agora ingest omop` of those CSVs into a fresh data dir, against DuckDB converting
              the same CSVs to zstd Parquet; engines alternate first/second across repetitions;
  3. queries  the OMOP query suite (../shared/queries/omop_query_suite.sql) through `agora serve`
              over HTTP, against plain DataFusion (agora-bench) and DuckDB reading the very same
              Parquet files of the Agora release; one warm-up, then --reps repetitions rotating
              the engines' order; medians; every engine's answers are compared with DuckDB's;
  4. report   benchmarks/results/<timestamp>-<persons>.json, a table on stdout, and a PNG plot
              of the per-query ratios next to the JSON.

Exits with 1 if any answer differs or any query fails, 2 if the benchmark could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import duckdb

import plot
import suite
from engines import (Agora, AgoraServer, BenchError, DuckDBEngine, PlainDataFusion, self_peak_rss_mib,
                     timed_duckdb_ingest)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
ENGINES = ["agora", "datafusion", "duckdb"]
DEFAULT_SUITE = REPO_ROOT / ".." / "shared" / "queries" / "omop_query_suite.sql"


def log(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the final report."""
    print(message, file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--persons", type=int, default=20000, help="persons in the synthetic extract (default 20000)")
    p.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions per query and engine (default 5)")
    p.add_argument("--ingest-reps", type=int, default=3, help="timed ingest repetitions per engine (default 3)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="DuckDB threads; Agora uses all cores, so the default is all cores "
                        f"(here {os.cpu_count()})")
    p.add_argument("--suite", type=Path, default=DEFAULT_SUITE, help="query suite SQL file")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a query parameter (defaults: "
                        + ", ".join(f"{k}={v}" for k, v in suite.DEFAULT_PARAMS.items()) + ")")
    p.add_argument("--only", help="comma-separated query ids to run, e.g. Q05,Q17")
    p.add_argument("--skip-ingest", action="store_true",
                   help="ingest once (untimed) and only benchmark queries")
    p.add_argument("--data-root", type=Path, default=BENCH_DIR / "data", help="where data is generated")
    p.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results", help="where result JSON goes")
    p.add_argument("--keep", action="store_true", help="keep this run's Agora data dirs and DuckDB outputs")
    args = p.parse_args()
    if args.reps < 1 or args.ingest_reps < 1 or args.threads < 1 or args.persons < 1:
        p.error("--persons, --reps, --ingest-reps and --threads must be at least 1")
    return args


def find_binary() -> Path:
    """AGORA_BIN, else the release build of this repository."""
    env = os.environ.get("AGORA_BIN")
    binary = Path(env).expanduser().resolve() if env else REPO_ROOT / "target" / "release" / "agora"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        where = f"AGORA_BIN={env}" if env else f"{binary}"
        raise BenchError(f"no agora binary at {where}.\nBuild the optimized binary first:\n"
                         f"    cargo build --release -p agora-cli\n"
                         f"or point AGORA_BIN at one (a debug build works but its times mean little).")
    return binary


def git_commit() -> str | None:
    """The checked-out commit, read from .git without running git (best effort)."""
    head = REPO_ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if not ref.startswith("ref: "):
            return ref
        name = ref[5:]
        loose = REPO_ROOT / ".git" / name
        if loose.exists():
            return loose.read_text().strip()
        for line in (REPO_ROOT / ".git" / "packed-refs").read_text().splitlines():
            if line.endswith(" " + name):
                return line.split()[0]
    except OSError:
        pass
    return None


def machine_info(threads: int) -> dict:
    cpu = None
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gib = None
    try:
        kb = int(next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")))
        mem_gib = round(kb / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "mem_gib": mem_gib,
            "os": platform.platform(), "python": platform.python_version(), "duckdb": duckdb.__version__}


# --- 1. data ---------------------------------------------------------------------------------------

def ensure_data(binary: Path, root: Path, persons: int, seed: int) -> Path:
    """The generated CSV directory for (persons, seed), generating it once.

    Generation goes to a temporary directory renamed on success, so an interrupted run never
    leaves a half-written extract that a later run would take for complete.
    """
    final = root / f"omop-p{persons}-s{seed}"
    if final.is_dir() and any(final.glob("*.csv")):
        log(f"data: reusing {final}")
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-omop-p{persons}-s{seed}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"data: generating {persons} persons (seed {seed}) into {final} ...")
    start = time.perf_counter()
    Agora(binary, root / ".generate-home").generate_omop(persons, seed, tmp)
    tmp.rename(final)
    log(f"data: generated in {time.perf_counter() - start:.1f} s")
    return final


def csv_stats(csv_dir: Path) -> dict:
    files = sorted(csv_dir.glob("*.csv"))
    return {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}


# --- 2. ingest -------------------------------------------------------------------------------------

def fresh_agora(binary: Path, path: Path) -> Agora:
    shutil.rmtree(path, ignore_errors=True)
    agora = Agora(binary, path)
    agora.init()
    return agora


def bench_ingest(binary: Path, csv_dir: Path, work: Path, reps: int, threads: int, keep: bool) -> tuple[dict, Agora]:
    """Times both ingests `reps` times; returns the results and the last Agora data dir (kept for queries)."""
    stats = csv_stats(csv_dir)
    runs: dict[str, list[dict]] = {"agora": [], "duckdb": []}
    last_agora: Agora | None = None
    for rep in range(reps):
        order = ["agora", "duckdb"] if rep % 2 == 0 else ["duckdb", "agora"]
        for engine in order:
            if engine == "agora":
                if last_agora is not None and not keep:
                    shutil.rmtree(last_agora.data_dir, ignore_errors=True)
                agora = fresh_agora(binary, work / f"agora-ingest-{rep + 1}")
                result = agora.timed_ingest(csv_dir, work)
                last_agora = agora
                report = result["report"]
                result["rows"] = {t["table"]: t["rows_stored"] for t in report["tables"]}
                result["rows_quarantined"] = report.get("rows_quarantined", 0)
                result["reported_seconds"] = report.get("elapsed_ms", 0) / 1000  # Agora's own clock
                result["parquet_bytes"] = sum(f.stat().st_size for f in (agora.data_dir / "lake").rglob("*.parquet"))
                del result["report"]
            else:
                out = work / f"duckdb-ingest-{rep + 1}"
                shutil.rmtree(out, ignore_errors=True)
                result = timed_duckdb_ingest(csv_dir, out, threads)
                if not keep:
                    shutil.rmtree(out, ignore_errors=True)
            runs[engine].append(result)
            log(f"ingest rep {rep + 1}/{reps}: {engine:<6} {result['seconds']:8.2f} s  "
                f"peak RSS {result['peak_rss_mib']:.0f} MiB")

    total_rows = sum(runs["duckdb"][0]["rows"].values())
    summary: dict = {"csv_files": stats["files"], "csv_bytes": stats["bytes"], "rows": total_rows,
                     "repetitions": reps, "runs": runs, "engines": {}}
    for engine, results in runs.items():
        secs = statistics.median(r["seconds"] for r in results)
        summary["engines"][engine] = {
            "median_seconds": secs,
            "mb_per_s": stats["bytes"] / 1e6 / secs,
            "rows_per_s": total_rows / secs,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
            "parquet_bytes": results[-1]["parquet_bytes"],
        }
    summary["ratio_agora_over_duckdb"] = (summary["engines"]["agora"]["median_seconds"]
                                          / summary["engines"]["duckdb"]["median_seconds"])
    # Both engines must have stored every row (Agora quarantines bad rows; the generator makes none).
    a_rows, d_rows = runs["agora"][-1]["rows"], runs["duckdb"][-1]["rows"]
    summary["row_count_differences"] = {t: {"agora": a_rows.get(t), "duckdb": d_rows.get(t)}
                                        for t in sorted(set(a_rows) | set(d_rows)) if a_rows.get(t) != d_rows.get(t)}
    assert last_agora is not None
    return summary, last_agora


# --- 3. queries ------------------------------------------------------------------------------------

def bench_queries(agora: Agora, bench_bin: Path, queries: list[suite.Query], reps: int, threads: int,
                  work: Path) -> dict:
    """Per query: a warm-up on each engine (whose answers are compared with DuckDB's), then `reps`
    timed runs per engine, rotating which engine goes first."""
    files = agora.release_files()
    duck = DuckDBEngine(files, threads)
    plain = PlainDataFusion(bench_bin, agora, threads, work / "agora-bench.log")
    results = []
    # The server profiles each new release once, in the background, for the public catalogue: a
    # full scan. Computing it first (as `agora catalogue` does) keeps it out of the timed queries.
    agora.run("catalogue", "--format", "json")
    with AgoraServer(agora, work / "agora-serve.log") as server:
        engines = {"agora": server.query, "datafusion": plain.query, "duckdb": duck.query}
        for q in queries:
            entry = {"id": q.qid, "title": q.title, "ordered": q.ordered,
                     "seconds": {e: [] for e in ENGINES}, "error": None}
            try:
                _, tsv = server.query(q.sql)
                _, df_tsv = plain.query(q.sql)
                _, rows = duck.query(q.sql)
                duck_rows = suite.rows_from_python(rows)
                agora_rows = suite.rows_from_tsv(tsv)[1]
                df_rows = suite.rows_from_tsv(df_tsv)[1]
                entry["rows"] = {"agora": len(agora_rows), "datafusion": len(df_rows), "duckdb": len(duck_rows)}
                entry["answer"], entry["answer_detail"] = suite.compare(q, agora_rows, duck_rows)
                df_answer, df_detail = suite.compare(q, df_rows, duck_rows)
                if df_answer == "MISMATCH" and entry["answer"] != "MISMATCH":
                    entry["answer"], entry["answer_detail"] = "MISMATCH", f"plain DataFusion vs DuckDB: {df_detail}"
                for rep in range(reps):
                    shift = rep % len(ENGINES)
                    for engine in ENGINES[shift:] + ENGINES[:shift]:
                        seconds, _ = engines[engine](q.sql)
                        entry["seconds"][engine].append(seconds)
                for engine in ENGINES:
                    entry[f"{engine}_median_s"] = statistics.median(entry["seconds"][engine])
                entry["ratio"] = entry["agora_median_s"] / entry["duckdb_median_s"]
                entry["ratio_datafusion"] = entry["agora_median_s"] / entry["datafusion_median_s"]
            except (BenchError, duckdb.Error) as e:
                entry["error"] = str(e)
                entry["answer"] = "ERROR"
            results.append(entry)
            if entry["error"]:
                log(f"query {q.qid}: ERROR {entry['error']}")
            else:
                log(f"query {q.qid}: agora {entry['agora_median_s'] * 1000:9.1f} ms  "
                    f"datafusion {entry['datafusion_median_s'] * 1000:9.1f} ms  "
                    f"duckdb {entry['duckdb_median_s'] * 1000:9.1f} ms  x{entry['ratio']:.2f}  {entry['answer']}")
                if entry["answer_detail"]:
                    log("    " + entry["answer_detail"].replace("\n", "\n    "))
        server_peak = server.peak_rss_mib()
    plain.close()
    duck.close()

    timed = [r for r in results if not r["error"]]
    totals = {e: sum(r[f"{e}_median_s"] for r in timed) for e in ENGINES}
    return {
        "repetitions": reps,
        "warmup": 1,
        "queries": results,
        "total_agora_s": totals["agora"],
        "total_datafusion_s": totals["datafusion"],
        "total_duckdb_s": totals["duckdb"],
        "total_ratio": totals["agora"] / totals["duckdb"] if totals["duckdb"] else None,
        "geomean_ratio": statistics.geometric_mean([r["ratio"] for r in timed]) if timed else None,
        "total_ratio_datafusion": totals["agora"] / totals["datafusion"] if totals["datafusion"] else None,
        "median_ratio_datafusion": statistics.median([r["ratio_datafusion"] for r in timed]) if timed else None,
        "peak_rss_mib": {"agora_server": server_peak, "duckdb_process": self_peak_rss_mib()},
        "parquet_files": sum(len(v) for v in files.values()),
        "parquet_bytes": sum(p.stat().st_size for v in files.values() for p in v),
    }


# --- 4. report -------------------------------------------------------------------------------------

def render(result: dict) -> str:
    out: list[str] = []
    cfg = result["config"]
    out.append(f"Agora vs DuckDB — {cfg['persons']} persons (seed {cfg['seed']}), "
               f"{result['machine']['cores']} cores, DuckDB threads {cfg['threads']}, {result['agora_version']}")
    out.append(f"load average at start/end: {result['load_average_start'][0]:.2f} / {result['load_average_end'][0]:.2f}")
    ing = result.get("ingest")
    if ing:
        out.append("")
        out.append(f"Ingest: {ing['csv_files']} CSV files, {ing['csv_bytes'] / 1e6:.1f} MB, {ing['rows']:,} rows "
                   f"(median of {ing['repetitions']})")
        out.append(f"  {'engine':<8}{'seconds':>10}{'MB/s':>10}{'rows/s':>12}{'Parquet MB':>12}{'peak RSS MiB':>14}")
        for name, e in ing["engines"].items():
            out.append(f"  {name:<8}{e['median_seconds']:>10.2f}{e['mb_per_s']:>10.1f}{e['rows_per_s']:>12,.0f}"
                       f"{e['parquet_bytes'] / 1e6:>12.1f}{e['peak_rss_mib']:>14.0f}")
        out.append(f"  ratio Agora/DuckDB: {ing['ratio_agora_over_duckdb']:.2f}")
        if ing["row_count_differences"]:
            out.append(f"  ROW COUNTS DIFFER: {ing['row_count_differences']}")
    qs = result["queries"]
    out.append("")
    out.append(f"Queries: median of {qs['repetitions']} after 1 warm-up; Agora over HTTP (TSV), plain "
               f"DataFusion and DuckDB in-process, on the same {qs['parquet_files']} Parquet files")
    out.append(f"  {'id':<5}{'agora ms':>10}{'DF ms':>10}{'duckdb ms':>11}{'/DF':>7}{'/duckdb':>9}{'rows':>7}  "
               f"{'answer':<9}title")
    for r in qs["queries"]:
        title = r["title"][:44]
        if r["error"]:
            out.append(f"  {r['id']:<5}{'-':>10}{'-':>10}{'-':>11}{'-':>7}{'-':>9}{'-':>7}  {'ERROR':<9}{title}")
            continue
        out.append(f"  {r['id']:<5}{r['agora_median_s'] * 1000:>10.1f}{r['datafusion_median_s'] * 1000:>10.1f}"
                   f"{r['duckdb_median_s'] * 1000:>11.1f}{r['ratio_datafusion']:>7.2f}{r['ratio']:>9.2f}"
                   f"{r['rows']['agora']:>7}  {r['answer']:<9}{title}")
    if qs["total_ratio"] is not None:
        out.append(f"  {'total':<5}{qs['total_agora_s'] * 1000:>10.1f}{qs['total_datafusion_s'] * 1000:>10.1f}"
                   f"{qs['total_duckdb_s'] * 1000:>11.1f}{qs['total_ratio_datafusion']:>7.2f}{qs['total_ratio']:>9.2f}")
        out.append(f"  geometric mean of Agora/DuckDB ratios {qs['geomean_ratio']:.2f}; "
                   f"median of Agora/DataFusion ratios {qs['median_ratio_datafusion']:.2f}")
        n_err = sum(1 for r in qs["queries"] if r["error"])
        if n_err:
            out.append(f"  (total leaves out the {n_err} queries that failed)")
    rss = qs["peak_rss_mib"]
    out.append(f"  peak RSS: agora server {rss['agora_server'] or 0:.0f} MiB, "
               f"duckdb (python process) {rss['duckdb_process']:.0f} MiB")
    problems = [r for r in qs["queries"] if r["answer"] in ("MISMATCH", "ERROR")]
    warnings = [r for r in qs["queries"] if r["answer"] == "order"]
    out.append("")
    for r in problems:
        detail = r["error"] or r["answer_detail"]
        out.append(f"!! {r['id']} {r['answer']}: {detail}")
    for r in warnings:
        out.append(f"note: {r['id']} {r['answer_detail']}")
    out.append("ALL ANSWERS MATCH" if not problems else f"!! {len(problems)} QUERIES WITH WRONG OR NO ANSWER")
    return "\n".join(out)


def main() -> int:
    args = parse_args()
    binary = find_binary()
    bench_bin = binary.with_name("agora-bench")
    if not bench_bin.is_file():
        raise BenchError(f"no agora-bench next to {binary}: build it with\n"
                         f"    cargo build --release -p agora-cli -p agora-bench")
    params = dict(suite.DEFAULT_PARAMS)
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            raise BenchError(f"--param wants NAME=VALUE, got {item!r}")
        params[name] = value
    suite_path = args.suite.resolve()
    if not suite_path.is_file():
        raise BenchError(f"query suite not found: {suite_path}")
    queries = suite.load_suite(suite_path, params)
    if args.only:
        wanted = {q.strip().upper() for q in args.only.split(",")}
        queries = [q for q in queries if q.qid in wanted]

    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    work = args.data_root / "runs" / stamp
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        log(f"warning: load average is {load:.1f} on {os.cpu_count()} cores; other work will skew the times")
    try:
        csv_dir = ensure_data(binary, args.data_root, args.persons, args.seed)
        result: dict = {
            "timestamp": stamp,
            "config": {"persons": args.persons, "seed": args.seed, "reps": args.reps,
                       "ingest_reps": 0 if args.skip_ingest else args.ingest_reps, "threads": args.threads,
                       "params": params, "suite": str(suite_path), "agora_bin": str(binary)},
            "agora_version": Agora(binary, work).version(),
            "git_commit": git_commit(),
            "machine": machine_info(args.threads),
            "load_average_start": os.getloadavg(),
        }
        if args.skip_ingest:
            agora = fresh_agora(binary, work / "agora-ingest-1")
            agora.timed_ingest(csv_dir, work)
            result["ingest"] = None
        else:
            result["ingest"], agora = bench_ingest(binary, csv_dir, work, args.ingest_reps, args.threads, args.keep)
        result["queries"] = bench_queries(agora, bench_bin, queries, args.reps, args.threads, work)
        result["elapsed_s"] = time.perf_counter() - started
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if not any(work.parent.iterdir()):
                work.parent.rmdir()
    result["load_average_end"] = os.getloadavg()

    args.results_dir.mkdir(parents=True, exist_ok=True)
    out_path = args.results_dir / f"{stamp}-{args.persons}.json"
    out_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(render(result))
    print(f"\nfull results: {out_path} (whole run {result['elapsed_s']:.0f} s)")
    try:
        print(f"plot: {plot.plot(result, out_path.with_suffix('.png'))}")
    except ImportError:
        print("no plot: matplotlib is missing (pip install -r benchmarks/requirements.txt)")
    failed = any(r["answer"] in ("MISMATCH", "ERROR") for r in result["queries"]["queries"])
    failed |= bool(result["ingest"] and result["ingest"]["row_count_differences"])
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
