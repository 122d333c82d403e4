#!/usr/bin/env python3
"""Plot the per-query time ratios of one benchmark run (run.py also does it at the end of a run):

    python3 benchmarks/plot.py benchmarks/results/<run>.json [out.png]

Two bars per query: Agora / DuckDB and Agora / plain DataFusion. Bars below the 1.0 line are
queries where Agora is faster. Needs matplotlib (benchmarks/requirements.txt).
"""

import json
import sys
from pathlib import Path


def plot(result: dict, out: Path) -> Path:
    """Writes the PNG to `out` and returns it. Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    queries = [q for q in result["queries"]["queries"] if q.get("ratio")]
    ids = list(range(len(queries)))
    series = [("Agora / DuckDB", "ratio", "#e76f51"), ("Agora / plain DataFusion", "ratio_datafusion", "#2a9d8f")]
    series = [s for s in series if all(q.get(s[1]) for q in queries)]  # older runs had no DataFusion
    width = 0.8 / len(series)
    qs = result["queries"]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    for i, (label, key, colour) in enumerate(series):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in ids]
        ratios = [q[key] for q in queries]
        ax.bar(xs, ratios, width=width, color=colour, label=label)
        for x, r in zip(xs, ratios):
            ax.text(x, r, f"{r:.2f}", ha="center", va="bottom" if r >= 1 else "top", fontsize=6)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(ids, [q["id"] for q in queries])
    totals = f"total {qs['total_agora_s'] / qs['total_duckdb_s']:.2f}x DuckDB"
    if qs.get("total_datafusion_s"):
        totals += f", {qs['total_agora_s'] / qs['total_datafusion_s']:.2f}x DataFusion"
    persons = result["config"].get("persons", "?")
    ax.set_title(f"Agora query time relative to other engines, OMOP suite, {persons:,} persons ({totals})")
    ax.set_ylabel("median time ratio (below 1: Agora faster)")
    ax.set_yscale("log")
    ax.set_yticks([0.125, 0.25, 0.5, 1, 2, 4, 8])
    every = [q[key] for _, key, _ in series for q in queries]
    ax.set_ylim(min(0.1, min(every) / 1.3), max(5, max(every) * 1.3))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else src.with_suffix(".png")
    print(plot(json.loads(src.read_text()), out))


if __name__ == "__main__":
    main()
