"""How fast the benchmark answers: queries per second, by string, by Cell, by seed and epoch.

    python benchmarks/bench_queries.py [--table FILE] [--n 200000]

Prints a table. Issue 3 asks for at least 100,000 queries a second.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nas_lab import bench
from nas_lab.spaces import nb201


def rate(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None, help="default: the shipped table")
    parser.add_argument("--n", type=int, default=200_000, help="queries per row")
    args = parser.parse_args()
    table = bench.load(args.table)
    rng = np.random.default_rng(0)
    # Any of the 15,625 strings whose class the table holds, drawn at random.
    known = [c for c in nb201.all_cells() if table._row_by_index[c.index] >= 0]
    cells = [known[i] for i in rng.integers(len(known), size=args.n)]
    strings = [str(c) for c in cells]
    rows = [
        ("query(string)", rate(table.query, strings)),
        ("query(Cell)", rate(table.query, cells)),
        ("query(string, seed, epoch)", rate(lambda s: table.query(s, seed=0, epoch=1), strings)),
        ("clock.query(string)", rate(table.clock().query, strings)),
    ]
    print(f"{len(table)} architectures, {args.n:,} queries per row")
    print(f"{'what':30s} {'queries/s':>12s}")
    for name, r in rows:
        print(f"{name:30s} {r:12,.0f}")


if __name__ == "__main__":
    main()
