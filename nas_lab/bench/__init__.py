"""The benchmark: NAS-Bench-201's cell space, every unique cell trained on digits, as a table.

A search asks the table instead of training: ``bench.query(cell)`` answers in microseconds what
training would have given, and a ``SimulatedClock`` charges each answer the training time that
was recorded for it, so strategies compare at equal cost (as with NAS-Bench-201's API; Dong &
Yang, ICLR 2020). Isomorphic cells share one trained result: every one of the 15,625 strings
answers through its class's representative.

    bench = load()
    bench.query("|nor_conv_3x3~0|+|...|").val_acc
    clock = bench.clock(budget=600)   # seconds of simulated training

Each record is one training run of the recipe's E epochs (``bench.epochs``; 4 on digits) with
the learning rate annealed to 0 on one cosine schedule over all E epochs. The accuracy at epoch e
is that run's e-th epoch, as NAS-Bench-201's per-epoch curves are: not a training of e epochs,
whose own schedule would have reached 0 at epoch e and given other numbers.
So a low-fidelity query reads the prefix of the full run, and resuming it (``SimulatedClock``)
continues the same run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas_lab.datafiles import data_file, read_manifest
from nas_lab.spaces import nb201

TABLE = data_file("nb201_digits.npz")


@dataclass(frozen=True)
class Result:
    """What the table knows of one architecture (for one seed, or the mean over seeds)."""

    arch: str  # the class representative
    val_acc: float
    # None for an intermediate epoch (only the final one is recorded), and in what a search is
    # told (``nas_lab.strategies.searchable``): the test set is for reporting
    test_acc: float | None
    train_loss: float
    train_time: float  # seconds of training up to this epoch, as recorded
    epoch: int
    params: int
    flops: int
    latency_ms: float  # batch 1, median, one thread


class Benchmark:
    """Query the table by cell string or ``nb201.Cell``; optionally by seed and epoch."""

    def __init__(self, arrays: dict[str, np.ndarray], manifest: dict):
        self.manifest = manifest
        self.archs = [str(a) for a in arrays["archs"]]
        self.seeds = [int(s) for s in arrays["seeds"]]
        self.epochs = int(arrays["val_acc"].shape[2])
        self.arrays = arrays

        # One more "seed" slot at the end holds the mean over seeds: the default query.
        def with_mean(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a, a.mean(axis=1, keepdims=True)], axis=1)

        self._val, self._loss = with_mean(arrays["val_acc"]), with_mean(arrays["train_loss"])
        self._test, self._time = with_mean(arrays["test_acc"]), with_mean(arrays["train_time"])
        # Every one of the 15,625 strings answers through its class's representative.
        cells = nb201.all_cells()
        row_of_rep = {a: i for i, a in enumerate(self.archs)}
        self._row_by_index = np.array([row_of_rep.get(str(c.canonical()), -1) for c in cells])
        self._row_by_string = {
            str(c): int(r) for c, r in zip(cells, self._row_by_index, strict=True) if r >= 0
        }

    def __len__(self) -> int:
        return len(self.archs)

    def __iter__(self) -> Iterator[str]:
        """The unique architectures (class representatives), in table order."""
        return iter(self.archs)

    def row(self, arch: nb201.Cell | str) -> int:
        """The table row of an architecture; a clear error for malformed or unknown ones."""
        row = self._row_by_string.get(arch) if isinstance(arch, str) else None
        if row is None:
            row = int(self._row_by_index[nb201.as_cell(arch).index])  # validates the string
            if row < 0:
                raise KeyError(f"{arch} is a valid cell, but this table does not hold its class")
        return row

    def query(
        self, arch: nb201.Cell | str, seed: int | None = None, epoch: int | None = None
    ) -> Result:
        """What the full training of ``arch`` with ``seed`` (default: the mean over the recorded
        seeds) showed after ``epoch`` epochs (default: all): the e-th epoch of the whole cosine
        schedule, not a shorter training. Its ``train_time`` is e/E of the full run's."""
        row, e = self.row(arch), self._epoch_index(epoch)
        s = len(self.seeds) if seed is None else self._seed_index(seed)
        final = e == self.epochs - 1
        return Result(
            arch=self.archs[row],
            val_acc=float(self._val[row, s, e]),
            test_acc=float(self._test[row, s]) if final else None,
            train_loss=float(self._loss[row, s, e]),
            train_time=float(self._time[row, s]) * (e + 1) / self.epochs,
            epoch=e + 1,
            params=int(self.arrays["params"][row]),
            flops=int(self.arrays["flops"][row]),
            latency_ms=float(self.arrays["latency_ms_batch1"][row]),
        )

    def _epoch_index(self, epoch: int | None) -> int:
        if epoch is None:
            return self.epochs - 1
        if not 1 <= epoch <= self.epochs:
            raise ValueError(f"epoch must be between 1 and {self.epochs} (the recipe's epochs)")
        return epoch - 1

    def _seed_index(self, seed: int) -> int:
        if seed not in self.seeds:
            raise ValueError(f"seed {seed} is not recorded; the recorded seeds are {self.seeds}")
        return self.seeds.index(seed)

    def column(self, name: str, epoch: int | None = None) -> np.ndarray:
        """A whole column in table order, mean over seeds: 'val_acc' and 'train_loss' (at
        ``epoch``), 'test_acc', 'train_time', 'params', 'flops', 'latency_ms_batch1',
        'latency_ms_train_batch'. For plots and rank correlations."""
        per_seed = {"val_acc": self._val, "train_loss": self._loss}
        if name in per_seed:
            return per_seed[name][:, -1, self._epoch_index(epoch)]
        if name in ("test_acc", "train_time"):
            return (self._test if name == "test_acc" else self._time)[:, -1]
        if name in ("params", "flops", "latency_ms_batch1", "latency_ms_train_batch"):
            return self.arrays[name]
        raise ValueError(f"unknown column {name!r}")

    def best(self, metric: str = "val_acc") -> Result:
        """The global best architecture by mean final ``val_acc`` or ``test_acc``."""
        if metric not in ("val_acc", "test_acc"):
            raise ValueError(f"metric must be 'val_acc' or 'test_acc', got {metric!r}")
        return self.query(self.archs[int(np.argmax(self.column(metric)))])

    def clock(
        self, budget: float | None = None, seed: int | None = None, resume: bool = True
    ) -> SimulatedClock:
        return SimulatedClock(self, budget, seed, resume)


class BudgetExhausted(RuntimeError):
    """The simulated training budget is spent."""


@dataclass
class SimulatedClock:
    """Charges each query the training time the table recorded for it.

    A query for ``epoch=e`` costs e/E of the full training. With ``resume`` (multi-fidelity
    methods), asking for more epochs of an architecture already trained to fewer charges only the
    difference, and asking again is free; without it, every query is a new training, charged in
    full, as a search that proposes the same cell twice would pay. The trajectory lists
    (elapsed, arch, val_acc, test_acc) after each query."""

    bench: Benchmark
    budget: float | None = None
    seed: int | None = None
    resume: bool = True
    elapsed: float = 0.0
    trajectory: list[tuple[float, str, float, float | None]] = field(default_factory=list)
    _trained: dict[int, float] = field(default_factory=dict)

    @property
    def exhausted(self) -> bool:
        return self.budget is not None and self.elapsed >= self.budget

    def charge(self, seconds: float) -> None:
        """Spend ``seconds`` of the budget on work that is not a query (a proxy pass, say)."""
        if not seconds >= 0:
            raise ValueError(f"a charge is a non-negative number of seconds, got {seconds!r}")
        self.elapsed += seconds

    def query(self, arch: nb201.Cell | str, epoch: int | None = None) -> Result:
        if self.exhausted:
            raise BudgetExhausted(f"the budget of {self.budget:.0f} simulated seconds is spent")
        result = self.bench.query(arch, seed=self.seed, epoch=epoch)
        row = self.bench.row(arch)
        already = self._trained.get(row, 0.0) if self.resume else 0.0
        self.elapsed += max(0.0, result.train_time - already)
        self._trained[row] = max(self._trained.get(row, 0.0), result.train_time)
        self.trajectory.append((self.elapsed, result.arch, result.val_acc, result.test_acc))
        return result


# ---------------------------------------------------------------------------------------------
# Loading, with the hash checked against the manifest
# ---------------------------------------------------------------------------------------------


def load(path: str | Path | None = None, verify: bool = True) -> Benchmark:
    """Load the shipped table (or ``path``), checking its sha256 against its manifest."""
    table = Path(path) if path is not None else TABLE
    manifest = read_manifest(
        table,
        "it ships with the course in data/: restore it with `git checkout data/`, or rebuild it "
        "with `nas-lab bench build --out data/nb201_digits` and `nas-lab bench pack`",
        verify=verify,
    )
    with np.load(table, allow_pickle=False) as arrays:
        return Benchmark(dict(arrays), manifest)
