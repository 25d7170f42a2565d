"""The proxy table: every unique NAS-Bench-201 cell scored by every zero-cost proxy, and stored.

All 6,466 unique cells scored (``nas_lab.proxies.cells.score_cells``, Abdelfattah et al., ICLR
2021) in a process pool, saved as an .npz with a sha256 manifest beside it that records the
settings, the proxies' definitions and the machine (``compute_table``, for the command line
``nas-lab proxies compute``), and loaded back and checked (``load_table``, a ``ProxyTable``).
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nas_lab.bench.recipe import machine
from nas_lab.datafiles import data_file, read_manifest, write_manifest
from nas_lab.proxies.cells import Settings, score_cells
from nas_lab.proxies.scores import DESCRIPTIONS, PROXIES
from nas_lab.spaces import nb201

TABLE = data_file("nb201_digits_proxies.npz")


def compute_table(
    bench,
    out_path: str | Path = TABLE,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    workers: int = 2,
    cells: Sequence[nb201.Cell | str] | None = None,
) -> Path:
    """Score every unique cell (default: all 6,466 of ``nb201.unique_cells()``) on the
    networks and data of ``bench``'s recipe, and write ``out_path`` (.npz: ``archs`` and one
    float64 column per proxy) with its manifest beside it (sha256, settings, machine, time).
    For the command line: ``nas-lab proxies compute``."""
    out_path = Path(out_path)
    if out_path.suffix != ".npz":
        raise ValueError(f"the proxy table is an .npz file; got {out_path}")
    settings = Settings.for_benchmark(bench, batch_size=batch_size, seed=seed)
    cells = nb201.unique_cells() if cells is None else [nb201.as_cell(c) for c in cells]
    start = time.perf_counter()
    scores = score_cells(cells, settings, workers=workers, progress=progress)
    seconds = time.perf_counter() - start
    arrays = {"archs": np.array([str(c) for c in cells])}
    arrays.update({name: scores[:, k] for k, name in enumerate(PROXIES)})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial.npz")
    np.savez_compressed(partial, **arrays)
    os.replace(partial, out_path)  # a kill never leaves a torn table behind
    write_manifest(
        out_path,
        **_provenance(out_path, settings, len(cells), seconds, workers),
        benchmark_sha256=bench.manifest.get("sha256"),  # the table whose recipe it used
    )
    return out_path


def _provenance(path: Path, settings: Settings, cells: int, seconds: float, workers: int) -> dict:
    return {
        "command": f"nas-lab proxies compute --out {path} --batch-size {settings.batch_size} "
        f"--seed {settings.seed} --workers {workers}",
        "settings": asdict(settings),
        "proxies": DESCRIPTIONS,
        "cells": cells,
        "seconds": round(seconds, 1),
        "workers": workers,
        "threads_per_worker": 1,
        "computed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **machine(),
    }


@dataclass(frozen=True)
class ProxyTable:
    """Proxy scores per unique cell; any of the 15,625 strings answers through its class."""

    archs: list[str]
    scores: dict[str, np.ndarray]
    manifest: dict

    def column(self, name: str, archs: Iterable[nb201.Cell | str] | None = None) -> np.ndarray:
        """The scores of proxy ``name``, in table order or for ``archs`` (e.g. a benchmark's
        ``bench.archs``, to line up with ``bench.column('test_acc')``)."""
        if name not in self.scores:
            raise ValueError(f"unknown proxy {name!r}; this table has {', '.join(self.scores)}")
        if archs is None:
            return self.scores[name]
        row = {arch: r for r, arch in enumerate(self.archs)}
        rows = []
        for arch in archs:
            key = str(nb201.canonical(arch))
            if key not in row:
                raise KeyError(f"{arch} is a valid cell, but this proxy table does not hold it")
            rows.append(row[key])
        return self.scores[name][np.asarray(rows, dtype=np.int64)]


def load_table(path: str | Path = TABLE, verify: bool = True) -> ProxyTable:
    """Load a proxy table written by ``compute_table``, checking its sha256 against its
    manifest."""
    path = Path(path)
    manifest = read_manifest(
        path,
        f"compute it (about 10 minutes on 2 cores) with `nas-lab proxies compute --out {path}`",
        verify=verify,
    )
    with np.load(path, allow_pickle=False) as arrays:
        archs = [str(a) for a in arrays["archs"]]
        scores = {name: arrays[name] for name in arrays.files if name != "archs"}
    return ProxyTable(archs, scores, manifest)
