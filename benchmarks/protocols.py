#!/usr/bin/env python3
"""The researcher's fronts side by side: the OMOP suite over HTTP, Arrow Flight SQL and the
PostgreSQL protocol, against DuckDB; and a large pseudonymized-rows result through Flight SQL,
the PostgreSQL protocol and a local Parquet read with pyarrow.

One `agora serve` with all three listeners, one researcher, one data permit on every table and
column of the release (`agora-bench --engine permit` sets it up through governance; this script
reuses it), the same release files for every engine, engines alternating query by query:

- `http`: `POST /api/v1/permits/{id}/sql` with `"format": "arrow"` on one keep-alive connection,
  the Arrow IPC stream read into a pyarrow Table;
- `flight`: the real ADBC Flight SQL driver (`adbc_driver_flightsql`), `fetch_arrow_table()`;
- `pg`: psycopg 3 (text protocol, the driver's default), `fetchall()`;
- `duckdb`: DuckDB in-process over the release's Parquet files (no policy at all: the
  reference for what the query costs by itself).

The three fronts reach the same query service, so their answers must be identical (checked);
the per-query overhead of a protocol is its median minus HTTP's. Part two amends the permit to
the `pseudonymized-rows` policy, reads `--rows` rows of `--rows-table` through Flight SQL
(Arrow batches end to end) and PostgreSQL (rows streamed with psycopg's `stream()`, so the client
never holds them all), and the same columns and rows from the release's Parquet files with
pyarrow; then amends the permit back.

    python3 benchmarks/protocols.py --data-dir D [--dataset bench] [--reps 3] [--out FILE.json]

`AGORA_BIN` / `AGORA_BENCH_BIN` select the binaries (default: target/release/).
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402
from engines import _tail, free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESEARCHER = "bench-researcher"  # agora-bench's (crates/agora-bench/src/main.rs)
REVIEWER = "bench-reviewer"
FRONTS = ("http", "flight", "pg")


def agora(binary, data_dir, *args, stdin=None):
    proc = subprocess.run([binary, "--data-dir", data_dir, *args], capture_output=True, text=True, input=stdin)
    if proc.returncode != 0:
        sys.exit(f"`agora {' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    return proc.stdout


def bench_permit(args):
    """The id of agora-bench's permit (created through governance on its first run)."""
    proc = subprocess.run([args.bench_bin, "--data-dir", args.data_dir, "--dataset", args.dataset,
                           "--engine", "permit", "--stdin"], input="", capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"agora-bench --engine permit failed:\n{proc.stderr.strip()[-2000:]}")
    permits = json.loads(agora(args.bin, args.data_dir, "permit", "list", "--json"))
    permits = [p for p in permits if p["status"] == "active" and RESEARCHER in p["members"]]
    if not permits:
        sys.exit("agora-bench left no active permit for " + RESEARCHER)
    return permits[-1]


class Server:
    """`agora serve` with HTTP, Flight SQL and PostgreSQL listeners on free loopback ports."""

    def __init__(self, args, log):
        self.http_port, self.flight_port, self.pg_port = free_port(), free_port(), free_port()
        self.log_path = log
        env = dict(os.environ)
        # The 10M-row part needs more than the default result limits (1M rows, 256 MiB).
        env.update({"AGORA_QUERY_MAX_ROWS": str(max(args.rows, 1_000_000)),
                    "AGORA_QUERY_MAX_RESULT_MB": str(args.max_result_mb),
                    "AGORA_QUERY_MEMORY_MB": str(args.memory_mb)})
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [args.bin, "--data-dir", args.data_dir, "serve", "--listen", f"127.0.0.1:{self.http_port}",
             "--flight-listen", f"127.0.0.1:{self.flight_port}", "--pg-listen", f"127.0.0.1:{self.pg_port}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"agora serve exited with {self.proc.returncode}:\n{_tail(log)}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                sys.exit(f"agora serve did not start:\n{_tail(log)}")
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class Http:
    """A researcher's `POST /api/v1/permits/{id}/sql`, Arrow IPC, on one keep-alive connection."""

    def __init__(self, server, token, permit):
        self.port, self.token, self.permit = server.http_port, token, permit
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3600)

    def query(self, sql):
        return self.post(f"/api/v1/permits/{self.permit}/sql", {"sql": sql, "format": "arrow"})

    def post(self, path, request):
        """Seconds from sending `request` to holding its whole Arrow answer, and the answer."""
        import pyarrow as pa
        body = json.dumps(request)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        for attempt in (1, 2):
            try:
                start = time.perf_counter()
                self.conn.request("POST", path, body=body, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (OSError, http.client.HTTPException):
                # The server closes a kept-alive connection idle past its header timeout
                # (10 s) while other engines run: reconnect and time afresh.
                self.conn.close()
                if attempt == 2:
                    raise
        if response.status != 200:
            return {"error": payload[:300].decode(errors="replace")}
        table = pa.ipc.open_stream(payload).read_all()
        return {"seconds": time.perf_counter() - start, "rows": table.num_rows, "table": table}

    def close(self):
        self.conn.close()


class Flight:
    def __init__(self, server, token, permit):
        import adbc_driver_flightsql.dbapi as flight_sql
        self.conn = flight_sql.connect(
            f"grpc://127.0.0.1:{server.flight_port}",
            db_kwargs={"adbc.flight.sql.authorization_header": "Bearer " + token,
                       "adbc.flight.sql.rpc.call_header.x-agora-permit": permit})

    def query(self, sql):
        start = time.perf_counter()
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql)
                table = cur.fetch_arrow_table()
        except Exception as e:  # noqa: BLE001 (a refusal is reported, not fatal)
            return {"error": str(e).splitlines()[0]}
        return {"seconds": time.perf_counter() - start, "rows": table.num_rows, "table": table}

    def close(self):
        self.conn.close()


class Pg:
    def __init__(self, server, token, permit):
        import psycopg
        self.psycopg = psycopg
        self.conn = psycopg.connect(host="127.0.0.1", port=server.pg_port, dbname=permit,
                                    user=RESEARCHER, password=token, autocommit=True)

    def query(self, sql):
        start = time.perf_counter()
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
        except self.psycopg.Error as e:
            return {"error": str(e).splitlines()[0]}
        return {"seconds": time.perf_counter() - start, "rows": len(rows), "python": rows}

    def stream(self, sql):
        """Every row of `sql` read and dropped (psycopg's single-row mode): rows, seconds."""
        start = time.perf_counter()
        n = 0
        with self.conn.cursor() as cur:
            for _ in cur.stream(sql):
                n += 1
        return n, time.perf_counter() - start

    def close(self):
        self.conn.close()


def rows_of(answer):
    """An answer's rows as the suite's comparable values."""
    if "table" in answer:
        return suite.rows_from_python([tuple(r.values()) for r in answer["table"].to_pylist()])
    return suite.rows_from_python(answer["python"])


def release_files(data_dir, dataset):
    lake = Path(data_dir) / "lake"
    manifests = [json.loads(m.read_text()) for m in (lake / "datasets" / dataset / "manifests").glob("*.json")]
    manifest = max(manifests, key=lambda m: m["created_at"])
    return {t["name"]: [str(lake / f["path"]) for f in t["files"]] for t in manifest["tables"]}


class OperatorHttp(Http):
    """The operator's `POST /api/v1/sql` on the release (`permit` is the dataset here): no
    permit, no pseudonyms."""

    def query(self, sql):
        return self.post("/api/v1/sql", {"dataset": self.permit, "sql": sql, "format": "arrow"})


def run_pseudonyms(args, researcher, operator, queries):
    """The suite as the operator and as a researcher under `pseudonymized-rows` with every
    column at `exact` precision: the same rows, person keys re-keyed. The ratio is what the
    permit path (policy tables, per-project pseudonyms, opt-out anti-join) costs."""
    engines = {"operator": operator, "pseudonyms": researcher}
    names = list(engines)
    out = {}
    for q in queries:
        first = {e: engines[e].query(q.sql) for e in names}
        if any("error" in a for a in first.values()):
            out[q.qid] = {"errors": {e: a["error"] for e, a in first.items() if "error" in a}}
            continue
        times = {e: [] for e in names}
        for rep in range(args.reps):
            for e in names[rep % 2:] + names[:rep % 2]:
                times[e].append(engines[e].query(q.sql)["seconds"])
        med = {e: statistics.median(t) for e, t in times.items()}
        out[q.qid] = {"median_s": med, "times_s": times, "ratio": med["pseudonyms"] / med["operator"],
                      "rows": {e: first[e]["rows"] for e in names}}
        print(f"{q.qid} operator={med['operator'] * 1000:.1f}ms pseudonyms={med['pseudonyms'] * 1000:.1f}ms "
              f"ratio={out[q.qid]['ratio']:.3f}", file=sys.stderr, flush=True)
    return out


def exact_everywhere(permit):
    """The permit's datasets with every permitted column at `exact` precision."""
    datasets = json.loads(json.dumps(permit["datasets"]))
    for d in datasets:
        for t in d["tables"]:
            t["precision"] = {c: "exact" for c in t["columns"]}
    return datasets


def amend_output(args, permit_id, output, datasets=None):
    """Amends the permit's output policy (and scope) as agora-bench's reviewer."""
    reviewer = agora(args.bin, args.data_dir, "user", "token", "issue", REVIEWER).strip().splitlines()[-1].strip()
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump({"output": output, **({"datasets": datasets} if datasets else {})}, f)
        f.flush()
        agora(args.bin, args.data_dir, "permit", "amend", permit_id, "--token", reviewer, "--file", f.name,
              "--reason", "benchmarks/protocols.py: the output policy under test")


def run_suite(args, fronts, duck, queries):
    names = list(fronts) + ["duckdb"]
    results = {}
    for q in queries:
        first = {e: fronts[e].query(q.sql) for e in fronts}
        first["duckdb"] = duck.query(q.qid, q.sql)
        times = {e: [] for e in names}
        for rep in range(args.reps):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for e in order:
                if "error" in first[e]:
                    continue
                answer = duck.query(q.qid, q.sql) if e == "duckdb" else fronts[e].query(q.sql)
                if "error" in answer:
                    sys.exit(f"{q.qid} {e}: {answer['error']}")
                times[e].append(answer["seconds"])
        outcomes = {e: ("refused" if "error" in first[e] else f"{first[e]['rows']} rows") for e in fronts}
        same = len(set(outcomes.values())) == 1
        if same and "error" not in first["http"]:
            reference = rows_of(first["http"])
            for e in ("flight", "pg"):
                verdict = suite.compare(q, rows_of(first[e]), reference)
                if verdict[0] == "MISMATCH":
                    same = False
                    print(f"{q.qid} {e} differs from http: {verdict[1:]}", file=sys.stderr)
        med = {e: statistics.median(t) if t else None for e, t in times.items()}
        results[q.qid] = {"title": q.title, "times_s": times, "median_s": med, "fronts_agree": same,
                          "outcome": outcomes["http"],
                          "errors": {e: first[e]["error"] for e in names if "error" in first[e]}}
        print(f"{q.qid} " + " ".join(f"{e}={m * 1000:.1f}ms" if m else f"{e}=-" for e, m in med.items())
              + f" | {outcomes['http']}{'' if same else ' | FRONTS DISAGREE'}", file=sys.stderr, flush=True)
    return results


def run_rows(args, fronts, permit):
    """Flight SQL vs PostgreSQL vs a local pyarrow read of the same rows."""
    import pyarrow.parquet as pq
    sql = f"SELECT * FROM {args.rows_table} LIMIT {args.rows}"
    # Warm-up through Flight, which also tells which columns the policy releases.
    warm = fronts["flight"].query(sql)
    if "error" in warm:
        sys.exit(f"rows query refused: {warm['error']}")
    columns = [c for c in warm["table"].column_names]
    files = release_files(args.data_dir, args.dataset)[args.rows_table]
    stored = pq.read_schema(files[0]).names
    local_columns = [c for c in columns if c in stored]

    def pyarrow_read():
        # Only as many row groups as the rows need (the table may hold far more than fits).
        import pyarrow as pa
        start = time.perf_counter()
        batches, n = [], 0
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(columns=local_columns, batch_size=65536):
                batches.append(batch)
                n += batch.num_rows
                if n >= args.rows:
                    break
            if n >= args.rows:
                break
        table = pa.Table.from_batches(batches).slice(0, args.rows)
        return table.num_rows, time.perf_counter() - start

    def flight_read():
        a = fronts["flight"].query(sql)
        return a["rows"], a["seconds"]

    def pg_read():
        return fronts["pg"].stream(sql)

    del warm
    runs = {"flight": flight_read, "pg": pg_read, "pyarrow": pyarrow_read}
    names = list(runs)
    times, rows = {e: [] for e in names}, {}
    for rep in range(args.rows_reps):
        for e in names[rep % 3:] + names[:rep % 3]:
            n, s = runs[e]()
            rows[e] = n
            times[e].append(s)
            print(f"rows rep {rep} {e}: {n} rows in {s:.2f} s", file=sys.stderr, flush=True)
    med = {e: statistics.median(t) for e, t in times.items()}
    return {"sql": sql, "columns": columns, "pyarrow_columns": local_columns, "rows": rows,
            "times_s": times, "median_s": med,
            "rows_per_s": {e: rows[e] / med[e] for e in names},
            "pg_over_flight": med["pg"] / med["flight"], "flight_over_pyarrow": med["flight"] / med["pyarrow"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", default="bench")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="DuckDB's threads")
    ap.add_argument("--memory-mb", type=int, default=4096)
    ap.add_argument("--max-result-mb", type=int, default=8192)
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the large result (0: skip)")
    ap.add_argument("--rows-table", default="measurement")
    ap.add_argument("--rows-reps", type=int, default=3)
    ap.add_argument("--no-pseudonyms", dest="pseudonyms", action="store_false",
                    help="skip the operator vs pseudonymized-rows comparison")
    ap.add_argument("--bin", default=os.environ.get("AGORA_BIN", str(REPO / "target/release/agora")))
    ap.add_argument("--bench-bin", default=os.environ.get("AGORA_BENCH_BIN", str(REPO / "target/release/agora-bench")))
    ap.add_argument("--suite", default=str(REPO.parent / "shared/queries/omop_query_suite.sql"))
    ap.add_argument("--only", help="comma-separated query ids")
    ap.add_argument("--out", help="write every measurement as JSON here")
    args = ap.parse_args()

    from disclosure import DuckDB
    queries = suite.load_suite(Path(args.suite), suite.DEFAULT_PARAMS)
    if args.only:
        queries = [q for q in queries if q.qid in set(args.only.split(","))]
    permit = bench_permit(args)
    output = permit["output"]
    token = agora(args.bin, args.data_dir, "user", "token", "issue", RESEARCHER).strip().splitlines()[-1].strip()
    server = Server(args, Path(tempfile.gettempdir()) / "agora-protocols-serve.log")
    fronts = {}
    try:
        fronts = {"http": Http(server, token, permit["id"]), "flight": Flight(server, token, permit["id"]),
                  "pg": Pg(server, token, permit["id"])}
        duck = DuckDB(args.data_dir, args.dataset, args.threads)
        results = run_suite(args, fronts, duck, queries)
        duck.close()
        rows = pseudonyms = None
        if args.pseudonyms:
            amend_output(args, permit["id"], {"policy": "pseudonymized-rows"}, exact_everywhere(permit))
            try:
                fronts["http"].close()
                operator_token = (Path(args.data_dir) / "keys" / "operator.token").read_text().strip()
                fronts["http"] = Http(server, token, permit["id"])
                operator = OperatorHttp(server, operator_token, args.dataset)
                pseudonyms = run_pseudonyms(args, fronts["http"], operator, queries)
                operator.close()
            finally:
                amend_output(args, permit["id"], output, permit["datasets"])
        rows = None
        if args.rows:
            amend_output(args, permit["id"], {"policy": "pseudonymized-rows"})
            try:
                # A new connection per front: the permit's new version applies to new sessions.
                for f in fronts.values():
                    f.close()
                fronts = {"flight": Flight(server, token, permit["id"]), "pg": Pg(server, token, permit["id"])}
                rows = run_rows(args, fronts, permit["id"])
            finally:
                amend_output(args, permit["id"], output)
    finally:
        for f in fronts.values():
            try:
                f.close()
            except Exception:  # noqa: BLE001
                pass
        server.stop()

    def ratio(a, b):
        return a / b if a and b else None

    print(f"{'query':<6} {'http ms':>8} {'flight ms':>10} {'pg ms':>8} {'duckdb ms':>10}"
          f" {'flight/http':>12} {'pg/http':>8} {'http/duckdb':>12}  outcome")
    per = {"flight": [], "pg": []}
    overhead = {"flight": [], "pg": []}
    for qid, r in results.items():
        m = r["median_s"]
        for e in per:
            if ratio(m[e], m["http"]):
                per[e].append(m[e] / m["http"])
                overhead[e].append(m[e] - m["http"])
        cells = [f"{m[e] * 1000:.1f}" if m[e] else "-" for e in ("http", "flight", "pg", "duckdb")]
        rs = [ratio(m["flight"], m["http"]), ratio(m["pg"], m["http"]), ratio(m["http"], m["duckdb"])]
        print(f"{qid:<6} {cells[0]:>8} {cells[1]:>10} {cells[2]:>8} {cells[3]:>10} "
              + " ".join(f"{x:>{w}.2f}" if x else f"{'-':>{w}}" for x, w in zip(rs, (12, 8, 12)))
              + f"  {r['outcome']}{'' if r['fronts_agree'] else ' FRONTS DISAGREE'}")
    summary = {e: {"median_ratio_to_http": statistics.median(per[e]),
                   "median_overhead_ms": statistics.median(overhead[e]) * 1000} for e in per if per[e]}
    for e, s in summary.items():
        print(f"{e}/http: median ratio {s['median_ratio_to_http']:.3f}, "
              f"median overhead {s['median_overhead_ms']:+.1f} ms per query")
    if rows:
        print(f"{rows['rows']['flight']:,} rows of {args.rows_table}: flight {rows['median_s']['flight']:.2f} s, "
              f"pg {rows['median_s']['pg']:.2f} s, pyarrow {rows['median_s']['pyarrow']:.2f} s; "
              f"pg/flight {rows['pg_over_flight']:.2f}x, flight/pyarrow {rows['flight_over_pyarrow']:.2f}x")
    # The permit's differencing ledger grows with every answer, so a group released to one
    # front may be withheld from the next; a disagreement is reported for a look, and the
    # exit status says so.
    if pseudonyms:
        ratios = [r["ratio"] for r in pseudonyms.values() if "ratio" in r]
        worst = max((q for q in pseudonyms if "ratio" in pseudonyms[q]), key=lambda q: pseudonyms[q]["ratio"])
        summary["pseudonyms"] = {"median_ratio_to_operator": statistics.median(ratios),
                                 "worst": worst, "worst_ratio": pseudonyms[worst]["ratio"]}
        print(f"pseudonymized rows (every column exact) / operator: median {statistics.median(ratios):.3f}, "
              f"worst {worst} {pseudonyms[worst]['ratio']:.2f} over {len(ratios)} queries")
    disagree = [q for q, r in results.items() if not r["fronts_agree"]]
    for q in disagree:
        print("FRONTS DISAGREE", q)
    if args.out:
        Path(args.out).write_text(json.dumps({"reps": args.reps, "summary": summary, "rows": rows,
                                              "pseudonyms": pseudonyms,
                                              "queries": results}, indent=2, default=str))
    sys.exit(1 if disagree else 0)


if __name__ == "__main__":
    main()
