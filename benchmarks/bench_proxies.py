"""Zero-cost proxy cost: seconds per cell for each proxy alone and for all of them together.

Scores a seeded sample of unique cells on the benchmark's networks and batch (one torch thread,
as each worker of `nas-lab proxies compute` runs), prints the median time per proxy, and
extrapolates the whole table (6,466 cells) for N workers, assuming a core per worker.

    python benchmarks/bench_proxies.py                 # 20 cells
    python benchmarks/bench_proxies.py --cells 50 --workers 2 4

Issue 8 asks for the table to be shipped or computed within 10 minutes on 2 cores. On a shared
machine the times are upper bounds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nas_lab import bench, proxies
from nas_lab.spaces import nb201


def seconds_per_cell(cells: list[nb201.Cell], settings: proxies.Settings, names) -> np.ndarray:
    """Wall-clock seconds of ``score_cell`` for each cell (its network built, then scored)."""
    times = []
    for cell in cells:
        start = time.perf_counter()
        proxies.score_cell(cell, settings, names)
        times.append(time.perf_counter() - start)
    return np.asarray(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20, help="how many cells to time")
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="for extrapolation")
    parser.add_argument("--seed", type=int, default=0, help="which sample of cells")
    args = parser.parse_args()

    torch.set_num_threads(1)
    settings = proxies.Settings.for_benchmark(bench.load())
    unique = nb201.unique_cells()
    pick = np.random.default_rng(args.seed).choice(len(unique), args.cells, replace=False)
    cells = [unique[int(i)] for i in pick]
    proxies.score_cell(cells[0], settings)  # warm-up: data, imports, first allocations

    print(f"{'proxies':12s} {'median s/cell':>14s} {'max s/cell':>11s}")
    for name in (*proxies.PROXIES, None):
        t = seconds_per_cell(cells, settings, None if name is None else [name])
        print(f"{name or 'all':12s} {np.median(t):14.3f} {t.max():11.3f}")
    for workers in args.workers:
        minutes = np.median(t) * len(unique) / workers / 60
        print(f"whole table, {workers} worker(s): about {minutes:.1f} min")


if __name__ == "__main__":
    main()
