"""Scoring cells of the benchmark with the zero-cost proxies.

The network the benchmark trains, initialised with the seed the benchmark used, and a seeded
batch of its training data (Abdelfattah et al., ICLR 2021, score each network on one minibatch at
initialisation): ``Settings`` says which, ``proxy_batch`` draws the batch, ``score_cell`` scores
one NAS-Bench-201 cell with ``nas_lab.proxies.scores.score``, and ``score_cells`` scores many in
a process pool.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from nas_lab.proxies.scores import PROXIES, score
from nas_lab.spaces import nb201


@dataclass(frozen=True)
class Settings:
    """Everything that decides a proxy table. The network and data fields match the benchmark
    recipe (``nas_lab.bench.recipe.Recipe``), so the scored network is the one it trained."""

    batch_size: int = 64
    seed: int = 0  # the network's initial weights (as the benchmark's run with this seed) and
    # the batch drawn from the training split
    dataset: str = "digits"
    data_seed: int = 0
    channels: int = 8
    cells_per_stage: int = 3

    @classmethod
    def for_benchmark(cls, bench, batch_size: int = 64, seed: int = 0) -> Settings:
        """The settings that score the networks a benchmark table was trained on."""
        recipe = bench.manifest.get("recipe", {})
        return cls(
            batch_size=batch_size,
            seed=seed,
            **{k: recipe[k] for k in ("dataset", "data_seed", "channels", "cells_per_stage")},
        )


_BATCHES: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def proxy_batch(settings: Settings = Settings()) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` images and labels drawn without replacement from the training split,
    by a generator of their own seeded with ``settings.seed`` (cached per process)."""
    from nas_lab import data

    key = (settings.dataset, settings.data_seed, settings.batch_size, settings.seed)
    if key not in _BATCHES:
        train = data.load(settings.dataset, seed=settings.data_seed).train
        images, labels = train.tensors
        if not 2 <= settings.batch_size <= len(images):
            raise ValueError(
                f"batch_size must be between 2 and {len(images)} (the training split); "
                f"got {settings.batch_size}"
            )
        generator = torch.Generator().manual_seed(settings.seed)
        pick = torch.randperm(len(images), generator=generator)[: settings.batch_size]
        _BATCHES[key] = (images[pick], labels[pick])
    return _BATCHES[key]


def score_cell(
    cell: nb201.Cell | str, settings: Settings = Settings(), names: Iterable[str] | None = None
) -> dict[str, float]:
    """The proxies of one NAS-Bench-201 cell: its network seeded as the benchmark seeds it
    (``seed_everything(seed)`` then ``build_network``), scored on ``proxy_batch(settings)``."""
    from nas_lab.train import seed_everything

    inputs, targets = proxy_batch(settings)
    seed_everything(settings.seed)
    net = nb201.build_network(cell, C=settings.channels, N=settings.cells_per_stage)
    return score(net, inputs, targets, names)


def _job(task: tuple[str, Settings]) -> list[float]:
    arch, settings = task
    scores = score_cell(arch, settings)
    return [scores[name] for name in PROXIES]


def _one_thread() -> None:
    torch.set_num_threads(1)  # one thread per process: the pool, not torch, uses the cores


def score_cells(
    cells: Sequence[nb201.Cell | str],
    settings: Settings = Settings(),
    workers: int = 2,
    progress: bool = True,
) -> np.ndarray:
    """All ``PROXIES`` for ``cells``: a float64 array (cells x proxies). ``workers`` processes
    at one torch thread each; a cell's scores depend only on the cell and ``settings``, not on
    the worker that computed them."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    tasks = [(str(cell), settings) for cell in cells]
    bar = dict(total=len(tasks), disable=not progress, desc="proxies", unit="cell")
    if workers == 1:
        threads = torch.get_num_threads()
        _one_thread()
        try:
            rows = [_job(task) for task in tqdm(tasks, **bar)]
        finally:
            torch.set_num_threads(threads)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_one_thread) as pool:
            rows = list(tqdm(pool.imap(_job, tasks, chunksize=8), **bar))
    return np.asarray(rows, dtype=np.float64).reshape(len(tasks), len(PROXIES))
