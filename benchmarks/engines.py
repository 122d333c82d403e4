"""The three engines under test, behind small wrappers that time exactly one thing each.

Agora is driven as a user drives it: the `agora` binary for init/generate/ingest, and
`agora serve` over loopback HTTP for queries (so query times include request parsing, session
set-up, audit and TSV rendering: what a client actually waits for). DuckDB runs in-process through
its Python API, on the very same Parquet files as the Agora release, so the comparison is between
query engines and not between storage layouts. Plain DataFusion (the engine Agora is built on,
with its default settings and none of Agora's layers) runs in `agora-bench --stdin`, a
long-lived process reading the same files, timed inside that process.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

BENCH_DIR = Path(__file__).resolve().parent
DATASET = "bench"


class BenchError(RuntimeError):
    """A failure that stops the benchmark, with a message meant for the person running it."""


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Agora:
    """The `agora` command line, for one data directory."""

    binary: Path
    data_dir: Path

    def _cmd(self, *args: str) -> list[str]:
        return [str(self.binary), "--data-dir", str(self.data_dir), *args]

    def run(self, *args: str) -> str:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True)
        if proc.returncode != 0:
            raise BenchError(f"`agora {' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
        return proc.stdout

    def version(self) -> str:
        return self.run("--version").strip()

    def init(self) -> None:
        self.run("init")

    def generate_omop(self, persons: int, seed: int, out: Path) -> None:
        self.run("generate", "omop", "--persons", str(persons), "--seed", str(seed), "--out", str(out))

    def timed_ingest(self, csv_dir: Path, log_dir: Path) -> dict:
        """Runs `agora ingest omop --json` and returns its report plus wall seconds and peak RSS.

        The wall time of the whole process is what is compared (start-up of a native binary is a
        few milliseconds). Output goes to files rather than pipes so the child can never block on
        a full pipe while we wait for it; os.wait4 gives this child's own peak RSS.
        """
        out_path, err_path = log_dir / "ingest.stdout", log_dir / "ingest.stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(self._cmd("ingest", "omop", "--dataset", DATASET, "--json", str(csv_dir)),
                                    stdout=out, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise BenchError(f"agora ingest failed (exit {proc.returncode}):\n{_tail(err_path)}")
        report = json.loads(out_path.read_text())
        return {"seconds": seconds, "report": report, "peak_rss_mib": usage.ru_maxrss / 1024}

    def release_files(self) -> dict[str, list[Path]]:
        """Parquet files of the latest release of the benchmark dataset, per table, from its manifest."""
        listing = json.loads(self.run("datasets", "--json"))
        entry = next((d for d in listing if d["dataset"]["name"] == DATASET), None)
        if entry is None or not entry["releases"]:
            raise BenchError(f"dataset {DATASET} has no release in {self.data_dir}")
        release = max(entry["releases"], key=lambda r: r["number"])
        lake = self.data_dir / "lake"
        manifest = json.loads((lake / release["manifest_path"]).read_text())
        return {t["name"]: [lake / f["path"] for f in t["files"]] for t in manifest["tables"]}


def free_port() -> int:
    """A loopback port free right now (the server binds it a moment later; fine on a quiet host)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgoraServer:
    """`agora serve` on a free loopback port, queried over one keep-alive HTTP connection."""

    def __init__(self, agora: Agora, log_path: Path, timeout_s: float = 1800):
        self.agora = agora
        self.port = free_port()
        self.log_path = log_path
        self.timeout_s = timeout_s
        self.token = (agora.data_dir / "keys" / "operator.token").read_text().strip()
        self.proc: subprocess.Popen | None = None
        self.conn: http.client.HTTPConnection | None = None

    def __enter__(self) -> "AgoraServer":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.agora._cmd("serve", "--listen", f"127.0.0.1:{self.port}"),
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_healthy()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_healthy(self, within_s: float = 60) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"agora serve exited with {self.proc.returncode}:\n{_tail(self.log_path)}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise BenchError(f"agora serve did not answer /health within {within_s:.0f} s:\n{_tail(self.log_path)}")

    def query(self, sql: str) -> tuple[float, str]:
        """Wall seconds from sending the request to having read the whole TSV answer, and the TSV."""
        body = json.dumps({"dataset": DATASET, "sql": sql, "format": "tsv"})
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        for attempt in (1, 2):
            try:
                start = time.perf_counter()
                self.conn.request("POST", "/api/v1/sql", body=body, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                seconds = time.perf_counter() - start
                break
            except (OSError, http.client.HTTPException) as e:
                # A keep-alive connection the server closed while idle: reconnect and time afresh.
                self.conn.close()
                if attempt == 2 or self.proc.poll() is not None:
                    state = f"server exited with {self.proc.returncode}" if self.proc.poll() is not None else "server up"
                    raise BenchError(f"request failed ({e!r}; {state}):\n{_tail(self.log_path)}") from e
        text = payload.decode("utf-8", errors="replace")
        if response.status != 200:
            try:
                message = json.loads(text)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = text[:500]
            raise BenchError(f"HTTP {response.status}: {message}")
        return seconds, text

    def peak_rss_mib(self) -> float | None:
        """VmHWM of the server process: its peak resident memory since it started."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
        except OSError:
            pass
        return None

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful shutdown, like Ctrl-C
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None


class PlainDataFusion:
    """`agora-bench --engine datafusion --stdin` over one Agora release: plain DataFusion 55 with
    its default settings, one listing table per release table, one session for all queries."""

    def __init__(self, binary: Path, agora: Agora, threads: int, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(binary), "--data-dir", str(agora.data_dir), "--dataset", DATASET,
             "--engine", "datafusion", "--threads", str(threads), "--stdin"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True)

    def query(self, sql: str) -> tuple[float, str]:
        """Seconds from planning to the last batch (measured in the process), and the TSV."""
        self.proc.stdin.write(json.dumps({"id": "q", "sql": sql}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"agora-bench exited with {self.proc.wait()}:\n{_tail(self.log_path)}")
        answer = json.loads(line)
        if "error" in answer:
            raise BenchError(f"plain DataFusion: {answer['error']}")
        return answer["seconds"], answer["tsv"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self._log.close()


class DuckDBEngine:
    """In-process DuckDB with one view per table over the Agora release's own Parquet files."""

    def __init__(self, files: dict[str, list[Path]], threads: int):
        self.con = duckdb.connect()
        self.con.execute(f"SET threads = {int(threads)}")
        # The suite is PostgreSQL/ANSI SQL, where integer / integer truncates (Q03's decades; its
        # published expected results show 1930, not 1932.0). DuckDB's `/` is float division unless told.
        self.con.execute("SET integer_division = true")
        for table, paths in sorted(files.items()):
            file_list = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
            self.con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM read_parquet([{file_list}])')

    def query(self, sql: str) -> tuple[float, list[tuple]]:
        """Wall seconds to run the query and fetch every row into Python, and the rows."""
        start = time.perf_counter()
        rows = self.con.execute(sql).fetchall()
        return time.perf_counter() - start, rows

    def close(self) -> None:
        self.con.close()


def timed_duckdb_ingest(csv_dir: Path, out_dir: Path, threads: int) -> dict:
    """DuckDB's CSV -> Parquet conversion in a child process (see duckdb_ingest.py)."""
    proc = subprocess.run([sys.executable, str(BENCH_DIR / "duckdb_ingest.py"), str(csv_dir), str(out_dir),
                           "--threads", str(threads)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"DuckDB ingest failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def self_peak_rss_mib() -> float:
    """Peak RSS of this Python process (which runs DuckDB's queries), KiB on Linux."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
