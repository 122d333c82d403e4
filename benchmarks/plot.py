#!/usr/bin/env python3
"""Plots per-query ratios (Agora / DuckDB) of a `run.py` result as a PNG.

    python3 benchmarks/plot.py benchmarks/results/<run>.json [out.png]

Bars below the 1.0 line are queries where Agora is faster. Needs matplotlib
(`pip install -r benchmarks/requirements.txt`).
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else src.with_suffix(".png")
    result = json.loads(src.read_text())
    queries = [q for q in result["queries"]["queries"] if q.get("ratio")]
    ids = [q["id"] for q in queries]
    ratios = [q["ratio"] for q in queries]
    persons = result["config"].get("persons", "?")

    fig, ax = plt.subplots(figsize=(11, 4.5))
    colours = ["#2a9d8f" if r <= 1 else "#e76f51" for r in ratios]
    ax.bar(ids, ratios, color=colours)
    ax.axhline(1.0, color="black", linewidth=0.8)
    total = result["queries"]["total_agora_s"] / result["queries"]["total_duckdb_s"]
    ax.set_title(f"Agora / DuckDB query time, OMOP suite, {persons} persons (total {total:.2f}x)")
    ax.set_ylabel("median time ratio (lower is better for Agora)")
    ax.set_yscale("log")
    ax.set_yticks([0.25, 0.5, 1, 2, 4])
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for i, r in enumerate(ratios):
        ax.text(i, r, f"{r:.2f}", ha="center", va="bottom" if r >= 1 else "top", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(out)


if __name__ == "__main__":
    main()
