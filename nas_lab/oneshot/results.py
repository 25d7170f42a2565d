"""Every one-shot method over several seeds, written to CSV, then judged by the benchmark.

A lesson's full mode has 3 minutes: enough for one search per method, not for three seeds of
six methods. This module runs the long comparison once, from the command line, and keeps its
results in small CSVs under ``data/oneshot_results/``; the lessons load them and look every
found cell up in the table (true test accuracy and percentile), in the form of NAS-Bench-201's
Table 5 (Dong & Yang, ICLR 2020), whose CIFAR-10 figures are kept in ``PUBLISHED``.

    python -m nas_lab.oneshot.results --seeds 0 1 2

writes three files, appending, so that a killed run resumes where it stopped:

- ``searches.csv``: one row per (method, seed): the cell found, wall and CPU seconds, epochs;
- ``history.csv``: for the gradient-based methods, per epoch, the discretised cell and the
  mean softmax weight of ``skip_connect`` (the collapse, and where early stopping would stop);
- ``ranking.csv``: per seed, the SPOS supernet's accuracy estimate of 200 unique cells.

The searches need only the digits, not the table: the table judges them when they are read
(``judged``, ``summary``), so a rebuilt table re-judges the same cells.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

import nas_lab
from nas_lab.bench import Benchmark
from nas_lab.datafiles import data_file
from nas_lab.device import thread_count
from nas_lab.oneshot import METHODS, darts, enas, gdas, ground_truth, pcdarts, spos
from nas_lab.oneshot import supernet as sn
from nas_lab.spaces import nb201

FOLDER = data_file("oneshot_results")
COMMAND = "python -m nas_lab.oneshot.results --seeds 0 1 2"

# NAS-Bench-201 (Dong & Yang, ICLR 2020), Table 5: mean test accuracy (%) on CIFAR-10 of the
# cells each weight-sharing method found, over 3 runs. A gap is a method the table did not run.
PUBLISHED: dict[str, float] = {
    "DARTS (1st order)": 54.30,
    "DARTS (2nd order)": 54.30,
    "GDAS": 93.61,
    "ENAS": 53.89,
    "SETN": 87.64,
}

SEARCHERS = {
    "DARTS (1st order)": lambda **o: darts.DARTS(order=1, **o),
    "DARTS (2nd order)": lambda **o: darts.DARTS(order=2, **o),
    "GDAS": gdas.GDAS,
    "PC-DARTS": pcdarts.PCDARTS,
    "ENAS": enas.ENAS,
    "SPOS": spos.SPOS,
}
assert set(SEARCHERS) == set(METHODS)  # one name per method, everywhere

SKIP = nb201.OPS.index("skip_connect")
RANKING_CELLS = 200


def _append(path: Path, row: dict) -> None:
    """Append one row to a CSV, writing the header (and the command) first when it is new."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        if new:
            f.write(f"# written by: {COMMAND} (nas_lab {nas_lab.__version__})\n")
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


Rows = list[dict]


def read(name: str, folder: Path = FOLDER) -> Rows:
    """One of the CSVs (``searches``, ``history``, ``ranking``) as a list of rows (dicts), the
    numbers converted; comment lines (the command that wrote it) skipped."""
    path = Path(folder) / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; make it with: {COMMAND}")
    with path.open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    return [{k: _number(v) for k, v in row.items()} for row in rows]


def _number(text: str) -> str | int | float:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def done(folder: Path) -> set[tuple[str, int]]:
    """The (method, seed) pairs already in ``searches.csv``: a resumed run skips them."""
    if not (Path(folder) / "searches.csv").exists():
        return set()
    return {(row["method"], row["seed"]) for row in read("searches", folder)}


def skip_weight(epoch: sn.Epoch) -> float:
    """The mean over the 6 edges of softmax(alpha)'s weight on ``skip_connect``."""
    return float(np.mean(epoch.weights[:, SKIP])) if epoch.weights is not None else float("nan")


def run_one(
    method: str,
    seed: int,
    folder: Path,
    fast: bool = False,
    ranking_cells: int = RANKING_CELLS,
    **options,
) -> nb201.Cell:
    """Run ``method`` with ``seed`` at its defaults (``options`` override them: the tests run
    a tiny supernet); append its rows to the CSVs in ``folder``."""
    searcher = SEARCHERS[method](seed=seed, fast=fast, progress=False, **options)
    start, cpu = time.perf_counter(), time.process_time()
    cell = searcher.run()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"{method}, seed {seed}: {wall:.1f} s wall, {cpu:.1f} s CPU; found {cell}", flush=True)
    if isinstance(searcher, darts.DARTS):  # DARTS, GDAS and PC-DARTS learn alpha
        for epoch in searcher.history:
            row = {"method": method, "seed": seed, "epoch": epoch.epoch}
            row |= {"cell": str(epoch.cell), "skip_weight": round(skip_weight(epoch), 5)}
            _append(folder / "history.csv", row)
    if isinstance(searcher, spos.SPOS):  # its trained supernet ranks 200 unique cells
        scores = spos.weight_sharing_ranking(ranking_cells, seed=seed, searcher=searcher)
        for arch, score in scores.items():
            _append(folder / "ranking.csv", {"seed": seed, "cell": arch, "supernet_acc": score})
    row = {"method": method, "seed": seed, "cell": str(cell), "epochs": searcher.epochs}
    row |= {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "device": str(searcher.device)}
    _append(folder / "searches.csv", row)
    return cell


def run_all(
    seeds: Sequence[int], methods: Sequence[str] | None = None, folder: Path = FOLDER
) -> None:
    """Every method in ``methods`` (default: all) for every seed, skipping what is done."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    methods = list(SEARCHERS) if methods is None else list(methods)
    unknown = set(methods) - set(SEARCHERS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {list(SEARCHERS)}")
    finished = done(folder)
    for seed in seeds:
        for method in methods:
            if (method, seed) not in finished:
                run_one(method, seed, folder)


def judged(searches: Rows, bench: Benchmark) -> Rows:
    """``searches`` with each found cell judged by the table (``oneshot.ground_truth``): test and
    validation accuracy in %, percentile among all the table's cells, and skip connections."""
    out = []
    for row in searches:
        verdict = ground_truth(row["cell"], bench)
        skips = nb201.as_cell(row["cell"]).ops.count("skip_connect")
        out.append(
            row
            | {"test_acc": 100 * verdict["test_acc"], "val_acc": 100 * verdict["val_acc"]}
            | {"percentile": verdict["percentile"], "skips": skips}
        )
    return out


def summary(judged_runs: Rows) -> Rows:
    """Per method, in ``SEARCHERS`` order: seeds, distinct cells found, test accuracy mean and
    std over seeds (%, ddof 1), mean percentile, mean skip connections, mean search wall and CPU
    time (s), and NAS-Bench-201's CIFAR-10 figure beside it (nan where Table 5 has none)."""
    seen = dict.fromkeys(row["method"] for row in judged_runs)
    order = {name: i for i, name in enumerate(SEARCHERS)}  # the methods' order, then others'
    methods = sorted(seen, key=lambda m: order.get(m, len(order)))
    table = []
    for method in methods:
        runs = [row for row in judged_runs if row["method"] == method]
        acc = np.array([row["test_acc"] for row in runs])
        table.append(
            {
                "method": method,
                "seeds": len({row["seed"] for row in runs}),
                "cells found": len({row["cell"] for row in runs}),
                "test acc mean": float(acc.mean()),
                "test acc std": float(acc.std(ddof=1)) if len(acc) > 1 else float("nan"),
                "percentile": float(np.mean([row["percentile"] for row in runs])),
                "skips": float(np.mean([row["skips"] for row in runs])),
                "wall s": float(np.mean([row["wall_s"] for row in runs])),
                "cpu s": float(np.mean([row.get("cpu_s", np.nan) for row in runs])),
                "NB201 CIFAR-10": PUBLISHED.get(method, float("nan")),
            }
        )
    return table


def format_table(rows: Rows, digits: int = 2) -> str:
    """Rows of dicts as an aligned text table (numbers rounded), for a notebook's output."""
    columns = list(rows[0])
    cells = [
        [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in r.values()] for r in rows
    ]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=None, help=f"from {list(SEARCHERS)}")
    parser.add_argument("--out", type=Path, default=FOLDER)
    args = parser.parse_args(argv)
    torch.set_num_threads(thread_count(torch.cuda.is_available()))  # as a lesson's setup()
    run_all(args.seeds, args.methods, args.out)


if __name__ == "__main__":
    main()
