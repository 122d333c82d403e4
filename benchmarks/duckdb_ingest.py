"""DuckDB's side of the ingest benchmark: every `<table>.csv` of a directory to zstd Parquet.

Run as its own process (by run.py) so that its peak memory is measured apart from the rest of
the harness, as Agora's ingest is. Prints one JSON object on stdout: the seconds spent from
connecting to the last COPY (interpreter start-up and `import duckdb` excluded, which favours
DuckDB slightly), rows written per table, and its own peak RSS.

    python duckdb_ingest.py CSV_DIR OUT_DIR --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import duckdb


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    csvs = sorted(args.csv_dir.glob("*.csv"))
    rows: dict[str, int] = {}
    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {int(args.threads)}")
    for csv in csvs:
        out = args.out_dir / f"{csv.stem}.parquet"
        # COPY returns the number of rows written.
        (n,) = con.execute(
            f"COPY (SELECT * FROM read_csv({sql_string(str(csv))}, header = true)) "
            f"TO {sql_string(str(out))} (FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()
        rows[csv.stem] = int(n)
    con.close()
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({
        "seconds": seconds,
        "rows": rows,
        "parquet_bytes": sum(p.stat().st_size for p in args.out_dir.glob("*.parquet")),
        "peak_rss_mib": peak_kib / 1024,
        "duckdb_version": duckdb.__version__,
    }))


if __name__ == "__main__":
    main()
