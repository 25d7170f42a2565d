"""Building the benchmark: every unique NAS-Bench-201 cell trained on digits with one recipe.

NAS-Bench-201 (Dong & Yang, ICLR 2020) trained each of the 15,625 cells on CIFAR-10 and
published the results, so that a search could look up what it would have trained. We do the same
on a laptop: the 6,466 isomorphism classes (one training per class, for each seed), on the
digits data, with a small network and a short recipe.

The build is a log of JSON lines, one record per finished job, appended by the main process only:
- ``{"kind": "arch", ...}``: parameters, FLOPs and CPU latency of a class's representative;
- ``{"kind": "run", "seed": s, ...}``: its training curve and final accuracies for seed ``s``.
Killed at any moment and rerun, it keeps every complete record, drops a torn last line, and does
only what is missing; the log can be committed half-way and the build continued elsewhere.
``pack`` turns a complete log into the compact table that ``nas_lab.bench.load`` reads.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from nas_lab import data
from nas_lab.bench.recipe import RECIPE, Recipe, machine
from nas_lab.cost import count_params
from nas_lab.spaces import nb201
from nas_lab.train import seed_everything, train

LOG_NAME = "records.jsonl"


def build_order(seed: int = 0) -> list[nb201.Cell]:
    """The unique cells in a seeded random order, so a partial build is a uniform sample."""
    cells = nb201.unique_cells()
    return [cells[i] for i in np.random.default_rng(seed).permutation(len(cells))]


# ---------------------------------------------------------------------------------------------
# One job: measure a cell, train it for some seeds
# ---------------------------------------------------------------------------------------------


def recipe_latency(model: torch.nn.Module, batch: int, recipe: Recipe) -> float:
    """Median forward latency in milliseconds at ``recipe.threads`` threads, in eval mode, on a
    ``(batch, 1, 8, 8)`` input of zeros, timed by the library's one timer
    (:func:`nas_lab.hardware.time_forward`) with the benchmark's own protocol:
    ``torch.utils.benchmark``'s ``blocked_autorange`` (its block-size search is the warm-up, then
    at least 0.05 s of timed blocks)."""
    from nas_lab.hardware.timing import time_forward

    x = torch.zeros(batch, 1, 8, 8)
    model.eval()
    return time_forward(model, x, threads=recipe.threads, warmup=0, min_run_time=0.05)


def arch_record(cell: nb201.Cell, recipe: Recipe) -> dict:
    seed_everything(0)
    net = nb201.build_network(cell, C=recipe.channels, N=recipe.cells_per_stage, device="cpu")
    params, flops = nb201.params_and_flops(cell, C=recipe.channels, N=recipe.cells_per_stage)
    assert params == count_params(net)
    return {
        "kind": "arch",
        "arch": str(cell),
        "params": params,
        "flops": flops,
        "latency_ms_batch1": round(recipe_latency(net, 1, recipe), 5),
        "latency_ms_train_batch": round(recipe_latency(net, recipe.latency_train_batch, recipe), 5),
    }


_SPLITS: dict[tuple, data.Splits] = {}


def run_record(cell: nb201.Cell, seed: int, recipe: Recipe, device: str = "cpu") -> dict:
    """Train ``cell`` with the recipe and ``seed``: the same seed gives the same numbers."""
    key = (recipe.dataset, recipe.data_seed, recipe.train_fraction)
    if key not in _SPLITS:
        _SPLITS[key] = data.load(
            recipe.dataset, seed=recipe.data_seed, train_fraction=recipe.train_fraction
        )
    seed_everything(seed)  # the initial weights come from the seed too
    net = nb201.build_network(cell, C=recipe.channels, N=recipe.cells_per_stage, device=device)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)  # another count sums in another order: other numbers
    try:
        history = _train(net, key, recipe, seed, device)
    finally:
        torch.set_num_threads(threads)
    return {
        "kind": "run",
        "arch": str(cell),
        "seed": seed,
        "train_loss": [round(v, 5) for v in history.train_loss],
        "val_acc": [round(v, 5) for v in history.val_acc],
        "test_acc": round(history.test_acc, 5),
        "train_time": round(history.train_time, 4),
    }


def _train(net: torch.nn.Module, key: tuple, recipe: Recipe, seed: int, device: str):
    return train(
        net,
        _SPLITS[key],
        epochs=recipe.epochs,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        weight_decay=recipe.weight_decay,
        seed=seed,
        device=device,
        progress=False,
    )


def _job(task: tuple[str, tuple[int, ...], bool, Recipe]) -> list[dict]:
    arch, seeds, need_arch, recipe = task
    torch.set_num_threads(recipe.threads)
    cell = nb201.Cell.from_string(arch)
    records = [arch_record(cell, recipe)] if need_arch else []
    return records + [run_record(cell, s, recipe) for s in seeds]


# ---------------------------------------------------------------------------------------------
# The log: append-only, resumable
# ---------------------------------------------------------------------------------------------


def read_log(path: Path) -> list[dict]:
    """Every complete record of the log. A torn last line (a kill during a write) is dropped and
    the file rewritten without it, so that appending can go on cleanly."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    records, good = [], []
    for line in lines:
        try:
            records.append(json.loads(line))
            good.append(line)
        except json.JSONDecodeError:
            continue
    if len(good) != len(lines) or (lines and not path.read_text().endswith("\n")):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in good))
        os.replace(tmp, path)
    return records


def pending(records: Iterable[dict], cells: Sequence[nb201.Cell], seeds: Sequence[int]):
    """The tasks still to do: (arch, seeds missing, whether the arch record is missing)."""
    have_arch = {r["arch"] for r in records if r["kind"] == "arch"}
    have_run = {(r["arch"], r["seed"]) for r in records if r["kind"] == "run"}
    for cell in cells:
        arch = str(cell)
        missing = tuple(s for s in seeds if (arch, s) not in have_run)
        if missing or arch not in have_arch:
            yield arch, missing, arch not in have_arch


def build(
    out: str | Path,
    seeds: Sequence[int] = (0, 1),
    workers: int = 2,
    limit: int | None = None,
    recipe: Recipe = RECIPE,
    progress: bool = True,
) -> Path:
    """Train what is missing from the log in ``out`` and return the log's path.

    ``limit`` builds only the first ``limit`` cells of the build order (a uniform sample)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / LOG_NAME
    _check_recipe(out, recipe)
    _note_session(out, seeds, workers)
    cells = build_order()[:limit]
    tasks = [(a, s, need, recipe) for a, s, need in pending(read_log(log), cells, seeds)]
    done = len(cells) - len(tasks)
    bar = tqdm(
        total=len(cells), initial=done, desc="bench build", unit="cell", disable=not progress
    )
    with log.open("a") as sink, _pool(workers) as pool:
        for records in pool.imap_unordered(_job, tasks):
            sink.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
            sink.flush()
            os.fsync(sink.fileno())
            bar.update()
    bar.close()
    return log


def _check_recipe(out: Path, recipe: Recipe) -> None:
    """A log belongs to one recipe: refuse to mix records of two."""
    path = out / "recipe.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != asdict(recipe):
            raise ValueError(
                f"{out} holds records of another recipe ({path}); build into a new folder"
            )
    else:
        path.write_text(json.dumps(asdict(recipe), indent=1) + "\n")


def _note_session(out: Path, seeds: Sequence[int], workers: int) -> None:
    """Each build session appends where and when it ran: a build may span machines."""
    import datetime

    note = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seeds": list(seeds),
        "workers": workers,
        **machine(),
    }
    with (out / "sessions.jsonl").open("a") as sink:
        sink.write(json.dumps(note) + "\n")


class _Inline:
    """A stand-in for a pool when workers == 1 (no processes: easier to debug and to test)."""

    def imap_unordered(self, fn, items):
        return map(fn, items)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _pool(workers: int):
    if workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    if workers == 1:
        return _Inline()
    return multiprocessing.get_context("spawn").Pool(workers)


# ---------------------------------------------------------------------------------------------
# Packing a complete log into the shipped table, with its manifest
# ---------------------------------------------------------------------------------------------


def to_arrays(records: Sequence[dict], seeds: Sequence[int], require_complete: bool = True):
    """The table's arrays from the log's records, one row per class, in build order."""
    archs = {r["arch"]: r for r in records if r["kind"] == "arch"}
    runs = {(r["arch"], r["seed"]): r for r in records if r["kind"] == "run"}
    order = [str(c) for c in build_order()]
    rows = [a for a in order if a in archs and all((a, s) in runs for s in seeds)]
    if require_complete and len(rows) != len(order):
        raise ValueError(
            f"the log holds {len(rows)} of {len(order)} complete cells; finish it with "
            "`nas-lab bench build` (it resumes) before packing"
        )
    rows.sort(key=lambda a: nb201.Cell.from_string(a).index)

    def per_run(key: str, dtype=np.float32) -> np.ndarray:
        return np.array([[runs[(a, s)][key] for s in seeds] for a in rows], dtype=dtype)

    def per_arch(key: str, dtype) -> np.ndarray:
        return np.array([archs[a][key] for a in rows], dtype=dtype)

    return {
        "archs": np.array(rows),
        "seeds": np.array(seeds, dtype=np.int64),
        "val_acc": per_run("val_acc"),
        "train_loss": per_run("train_loss"),
        "test_acc": per_run("test_acc"),
        "train_time": per_run("train_time"),
        "params": per_arch("params", np.int64),
        "flops": per_arch("flops", np.int64),
        "latency_ms_batch1": per_arch("latency_ms_batch1", np.float32),
        "latency_ms_train_batch": per_arch("latency_ms_train_batch", np.float32),
    }


def table_stats(arrays: dict[str, np.ndarray]) -> dict:
    """How the table discriminates: the accuracy distribution and its noise across seeds."""
    from scipy.stats import spearmanr

    final = arrays["val_acc"][:, :, -1]  # (cells, seeds)
    mean = final.mean(axis=1)
    better = mean >= np.median(mean)
    stats = {
        "cells": int(len(mean)),
        "val_acc_best": float(mean.max()),
        "val_acc_median": float(np.median(mean)),
        "share_near_chance": float(np.mean(mean < 0.2)),  # ten classes: chance is 0.1
        "test_acc_best": float(arrays["test_acc"].mean(axis=1).max()),
    }
    if final.shape[1] >= 2:
        stats["seed_spearman_all"] = float(spearmanr(final[:, 0], final[:, 1])[0])
        stats["seed_spearman_better_half"] = float(spearmanr(final[better, 0], final[better, 1])[0])
    for epoch in range(1, arrays["val_acc"].shape[2]):
        early = arrays["val_acc"][:, :, epoch - 1].mean(axis=1)
        stats[f"spearman_epoch{epoch}_vs_final"] = float(spearmanr(early, mean)[0])
    stats["spearman_val_vs_test"] = float(spearmanr(mean, arrays["test_acc"].mean(axis=1))[0])
    return stats


def pack(
    log_dir: str | Path,
    table: str | Path,
    seeds: Sequence[int] = (0, 1),
    require_complete: bool = True,
) -> dict:
    """Write the table (``.npz``) and its manifest (sha256, command, recipe, machine, stats)."""
    import datetime

    from nas_lab.datafiles import write_manifest

    log_dir, table = Path(log_dir), Path(table)
    arrays = to_arrays(read_log(log_dir / LOG_NAME), seeds, require_complete)
    np.savez_compressed(table, **arrays)
    sessions = [json.loads(x) for x in (log_dir / "sessions.jsonl").read_text().splitlines()]
    return write_manifest(
        table,
        command=f"nas-lab bench build --out {log_dir} --seeds {' '.join(map(str, seeds))} "
        f"--workers 2 && nas-lab bench pack --log {log_dir} --out {table}"
        + ("" if require_complete else " --partial"),
        recipe=json.loads((log_dir / "recipe.json").read_text()),
        packed=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        packed_by=machine(),
        build_sessions=sessions,
        complete=len(arrays["archs"]) == len(nb201.unique_cells()),
        stats=table_stats(arrays),
    )


# ---------------------------------------------------------------------------------------------
# Verifying: retrain a sample and compare with the table
# ---------------------------------------------------------------------------------------------

# Same machine and torch version: a retraining repeats the table number for number. Elsewhere,
# floating-point differences can flip a few borderline images (one image is 0.28% of the 359
# validation images), so a final validation accuracy within 3 points counts as reproduced.
VERIFY_TOLERANCE = 0.03


def verify(table: str | Path | None = None, sample: int = 3, seed: int = 0) -> list[dict]:
    """Retrain ``sample`` random architectures of the table with its recipe and compare."""
    from nas_lab.bench import load

    bench = load(table)
    recipe = Recipe(**bench.manifest["recipe"])
    rng = np.random.default_rng(seed)
    rows = []
    for arch in (bench.archs[i] for i in rng.choice(len(bench), size=sample, replace=False)):
        train_seed = bench.seeds[0]
        again = run_record(nb201.Cell.from_string(arch), train_seed, recipe)
        recorded = bench.query(arch, seed=train_seed)
        diff = abs(again["val_acc"][-1] - recorded.val_acc)
        rows.append(
            {
                "arch": arch,
                "seed": train_seed,
                "recorded_val_acc": recorded.val_acc,
                "retrained_val_acc": again["val_acc"][-1],
                "abs_diff": diff,
                "exact": np.allclose(
                    again["val_acc"], bench.arrays["val_acc"][bench.row(arch), 0], atol=1e-5
                ),
                "ok": diff <= VERIFY_TOLERANCE,
            }
        )
    return rows
