"""``nas-lab compare``: black-box strategies at equal simulated cost, over many seeds.

Each strategy runs through ``nas_lab.strategies.run`` on the benchmark's simulated clock, so each
is charged the training time the table recorded for what it tried. The CSV has one row per query
(strategy, seed, time, best validation accuracy so far, that incumbent's test accuracy, regret);
the figure plots the mean regret against time with 95% confidence bands; ``compare.json`` says
how the CSV was made (strategies, budget, seeds, the table's sha256), so that ``load`` can refuse a
CSV computed on another table. A lesson reads the shipped CSV with ``load`` and rebuilds the
results table (``finals_from_rows``, ``results_table``) and the regret bands
(``curves_from_rows``) from it, without rerunning the searches.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from nas_lab import __version__
from nas_lab.bench import Benchmark, SimulatedClock
from nas_lab.datafiles import data_file
from nas_lab.estimation import incumbents, regret_curves, summarize
from nas_lab.strategies import REGISTRY, make, run

SHIPPED = data_file("compare_nb201_digits")  # the results lesson 05 reads (20 seeds, all five)


def run_all(
    names: Sequence[str], bench: Benchmark, budget: float, seeds: int, progress: bool = True
) -> dict[str, list[SimulatedClock]]:
    """Each named strategy for seeds 0..seeds-1 at ``budget`` simulated seconds."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {', '.join(REGISTRY)}")
    jobs = [(name, seed) for name in names for seed in range(seeds)]
    clocks: dict[str, list[SimulatedClock]] = {name: [] for name in names}
    for name, seed in tqdm(jobs, desc="compare", disable=not progress):
        clocks[name].append(run(make(name, seed), bench, budget, seed))
    return clocks


def rows(clocks: dict[str, list[SimulatedClock]], bench: Benchmark) -> list[dict]:
    """One row per query: the incumbent after it, chosen by validation accuracy."""
    best_test = bench.best("test_acc").test_acc
    out = []
    for name, runs in clocks.items():
        for seed, clock in enumerate(runs):
            seen: dict[str, float] = {}  # validation accuracy as the run observed it
            for (elapsed, arch, val_acc, _), pick in zip(
                clock.trajectory, incumbents(clock), strict=True
            ):
                seen[arch] = val_acc
                result = bench.query(pick)  # reported by its mean test accuracy over seeds
                out.append(
                    {
                        "strategy": name,
                        "seed": seed,
                        "time": round(elapsed, 4),
                        "best_val_acc": round(seen[pick], 5),
                        "test_acc": round(result.test_acc, 5),
                        "regret": round(best_test - result.test_acc, 5),
                    }
                )
    return out


def final_test_acc(
    clocks: dict[str, list[SimulatedClock]], bench: Benchmark
) -> dict[str, np.ndarray]:
    """Per strategy, one value per run: the test accuracy (mean over the table's seeds) of the
    run's final incumbent, chosen by validation accuracy, as NAS-Bench-201 reports its searches
    (Dong & Yang, ICLR 2020, Table 5)."""
    return {
        name: np.array([bench.query(incumbents(clock)[-1]).test_acc for clock in runs])
        for name, runs in clocks.items()
    }


def results_table(
    finals: dict[str, np.ndarray], baseline: str = "rs", level: float = 0.95
) -> list[dict]:
    """One row per strategy: runs, mean, standard deviation (ddof 1) and the ``level``
    confidence interval of the mean (Student's t, as ``summarize``), and two-sided p-values
    against ``baseline``: Mann-Whitney U (unpaired) and Wilcoxon signed-rank (paired: run i of
    every strategy is seed i and sees the same recorded training of each cell). p is nan for
    the baseline itself and where every pair ties."""
    if baseline not in finals:
        raise ValueError(f"baseline {baseline!r} is not among the strategies {list(finals)}")
    base = np.asarray(finals[baseline], dtype=float)
    out = []
    for name, values in finals.items():
        values = np.asarray(values, dtype=float)
        band = summarize(values[:, None], level)
        p_mw = p_wx = float("nan")
        if name != baseline:
            p_mw = float(stats.mannwhitneyu(values, base, alternative="two-sided").pvalue)
            if len(values) == len(base) and np.any(values != base):
                p_wx = float(stats.wilcoxon(values, base).pvalue)
        out.append(
            {
                "strategy": name,
                "runs": len(values),
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                "ci_low": float(band["low"][0]),
                "ci_high": float(band["high"][0]),
                f"p_mannwhitney_vs_{baseline}": p_mw,
                f"p_wilcoxon_vs_{baseline}": p_wx,
            }
        )
    return out


def plot(clocks: dict[str, list[SimulatedClock]], bench: Benchmark, budget: float, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, budget, 100)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, runs in clocks.items():
        band = summarize(regret_curves(runs, bench, grid))
        ax.plot(grid, band["mean"] * 100, label=f"{name} ({len(runs)} seeds)")
        ax.fill_between(grid, band["low"] * 100, band["high"] * 100, alpha=0.2)
    ax.set_xlabel("simulated training time (s)")
    ax.set_ylabel("test regret (accuracy points)")
    ax.set_yscale("log")
    ax.set_title("Regret against simulated time (mean, 95% band)")
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def save_comparison(
    names: Sequence[str],
    budget: float,
    seeds: int,
    out: str | Path,
    bench: Benchmark | None = None,
    progress: bool = True,
) -> Path:
    """Run, then write ``out/compare.csv`` and ``out/regret.png``; returns the CSV's path."""
    from nas_lab import bench as bench_module

    bench = bench if bench is not None else bench_module.load()
    if not bench.manifest.get("complete", True):
        raise ValueError(
            "the benchmark table is incomplete (an interim pack): strategies may propose cells it "
            "does not hold. Finish the build (`nas-lab bench build`) and `nas-lab bench pack`"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clocks = run_all(names, bench, budget, seeds, progress)
    table = rows(clocks, bench)
    path = out / "compare.csv"
    with path.open("w", newline="") as sink:
        writer = csv.DictWriter(sink, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    plot(clocks, bench, budget, out / "regret.png")
    meta = {
        "command": f"nas-lab compare --strategies {','.join(names)} --budget {budget:.10g} "
        f"--seeds {seeds} --out {out.as_posix()}",
        "strategies": list(names),
        "budget": budget,
        "seeds": seeds,
        "table_sha256": bench.manifest.get("sha256"),
        "nas_lab": __version__,
    }
    (out / "compare.json").write_text(json.dumps(meta, indent=1) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# Reading a CSV back: the results table and the regret bands without rerunning the searches
# --------------------------------------------------------------------------------------------


def load(out: str | Path = SHIPPED, bench: Benchmark | None = None) -> tuple[list[dict], dict]:
    """The rows of ``out/compare.csv`` (numbers as numbers) and its ``compare.json``. With
    ``bench``, refuse a CSV computed on another table (its sha256 differs from bench's)."""
    out = Path(out)
    path, meta_path = out / "compare.csv", out / "compare.json"
    if not (path.exists() and meta_path.exists()):
        raise FileNotFoundError(
            f"no compare.csv and compare.json in {out}: make them with `nas-lab compare "
            f"--strategies rs,rea --budget SECONDS --seeds N --out {out}`"
        )
    meta = json.loads(meta_path.read_text())
    if bench is not None and meta.get("table_sha256") != bench.manifest.get("sha256"):
        raise ValueError(
            f"{path} was computed on another benchmark table (sha256 {meta.get('table_sha256')}, "
            f"this one is {bench.manifest.get('sha256')}): rerun `{meta.get('command')}`"
        )
    with path.open(newline="") as source:
        table = [
            {
                "strategy": r["strategy"],
                "seed": int(r["seed"]),
                **{k: float(r[k]) for k in ("time", "best_val_acc", "test_acc", "regret")},
            }
            for r in csv.DictReader(source)
        ]
    return table, meta


def by_run(table: Sequence[dict]) -> dict[str, dict[int, list[dict]]]:
    """Rows grouped by strategy, then by seed, in the CSV's order (the order of the queries)."""
    runs: dict[str, dict[int, list[dict]]] = {}
    for row in table:
        runs.setdefault(row["strategy"], {}).setdefault(row["seed"], []).append(row)
    return runs


def finals_from_rows(table: Sequence[dict]) -> dict[str, np.ndarray]:
    """Per strategy, in seed order, the test accuracy of each run's final incumbent: the last
    row of the run. Equals ``final_test_acc`` of the same runs, to the CSV's 5 decimals."""
    return {
        name: np.array([seeds[s][-1]["test_acc"] for s in sorted(seeds)])
        for name, seeds in by_run(table).items()
    }


def curves_from_rows(table: Sequence[dict], grid: Sequence[float]) -> dict[str, np.ndarray]:
    """Per strategy, the (runs x grid) test regret of the incumbent at each simulated time, as
    ``estimation.regret_curves`` computes it from the clocks: the regret after the last query
    answered at or before t, nan before the first answer."""
    grid = np.asarray(grid, dtype=float)
    curves = {}
    for name, seeds in by_run(table).items():
        curves[name] = np.full((len(seeds), len(grid)), np.nan)
        for i, s in enumerate(sorted(seeds)):
            times = np.array([r["time"] for r in seeds[s]])
            regret = np.array([r["regret"] for r in seeds[s]])
            last = np.searchsorted(times, grid, side="right") - 1
            curves[name][i] = np.where(last >= 0, regret[np.maximum(last, 0)], np.nan)
    return curves
