"""The capstone: a search of your own design under an accuracy target and a latency limit.

Hardware-aware NAS poses search as a constrained problem (Tan et al., "MnasNet: Platform-Aware
Neural Architecture Search for Mobile", CVPR 2019, eq. 1):

    maximise ACC(m)  subject to  LAT(m) <= T

Here ``m`` is a NAS-Bench-201 cell, ``ACC`` its accuracy and ``LAT`` its measured CPU latency, both
as the benchmark table recorded them. Training costs simulated time; measuring latency is free,
as with a latency lookup table (ProxylessNAS, Cai, Zhu & Han, ICLR 2019, Section 3.3). What this
module holds, in the order lesson 12 uses it:

1. :func:`feasible`: the feasible region, ``LAT <= T`` and ``ACC >= target``.
2. :func:`constrained_reward`: Deb's feasibility rules as one number a strategy can maximise
   (Deb, "An efficient constraint handling method for genetic algorithms", Computer Methods in
   Applied Mechanics and Engineering, 2000, eq. 3).
3. :class:`~nas_lab.strategies.wrappers.Constrained` and ``Filtered`` (from
   :mod:`nas_lab.strategies.wrappers`): any ask-and-tell strategy, told the constrained reward,
   or asking only cells within the limit.
4. :class:`MeteredBench`: the benchmark as a graded search sees it. Every training is charged to
   one budget, whichever clock asks; latency is free; the accuracy columns are closed.
5. :func:`judge`: the verdict on a returned architecture, computed from the grader's own table:
   well formed, trained by the search, within the limits, and its rank among the cells that meet
   the latency limit.
6. :func:`baseline_search` and :func:`reference_search`: random search, and a design that meets
   the brief (regularized evolution inside the latency limit).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from nas_lab import bench as bench_module
from nas_lab.bench import Benchmark, BudgetExhausted, Result, SimulatedClock
from nas_lab.spaces import as_rng, nb201
from nas_lab.strategies.wrappers import Constrained, Filtered  # noqa: F401  (lesson 12: capstone.X)

LATENCY = "latency_ms_batch1"  # the table's CPU latency: batch 1, median, one thread
FREE_COLUMNS = ("params", "flops", LATENCY, "latency_ms_train_batch")  # known without training

# ---------------------------------------------------------------------------------------------
# 1. The feasible region
# ---------------------------------------------------------------------------------------------


def feasible(
    cells: Sequence[str],
    latency_ms: Sequence[float],
    accuracy: Sequence[float],
    latency_limit: float,
    target: float,
) -> list[str]:
    """The cells within both limits, ``LAT <= T`` and ``ACC >= target`` (MnasNet's eq. 1 with
    an accuracy floor), in the order given. Both bounds are inclusive: a cell exactly at the
    limit meets it."""
    if not len(cells) == len(latency_ms) == len(accuracy):
        raise ValueError(
            f"cells, latency_ms and accuracy must have one entry per cell; got lengths "
            f"{len(cells)}, {len(latency_ms)} and {len(accuracy)}"
        )
    within = zip(cells, latency_ms, accuracy, strict=True)
    return [c for c, lat, acc in within if lat <= latency_limit and acc >= target]


# ---------------------------------------------------------------------------------------------
# 2. A constrained reward
# ---------------------------------------------------------------------------------------------


def constrained_reward(accuracy: float, latency_ms: float, latency_limit: float) -> float:
    """Deb's feasibility rules (CMAME 2000, eq. 3) as one number to maximise:

        F(m) = ACC(m)                 if LAT(m) <= T
        F(m) = -(LAT(m) - T) / T      otherwise

    Deb's rules: a feasible cell beats every infeasible one; of two feasible cells the more
    accurate wins; of two infeasible cells the one nearer the limit wins. Deb writes
    ``f_worst + violation`` for minimisation; with accuracies in [0, 1] the worst feasible value
    is at least 0, so a negative, normalised violation ranks every infeasible cell below it.
    Unlike MnasNet's soft reward ``ACC * (LAT / T)^w`` (Tan et al., CVPR 2019, eq. 2), an
    accurate but slow cell can never outrank a feasible one."""
    if not latency_limit > 0:
        raise ValueError(f"latency_limit must be a positive number of ms, got {latency_limit!r}")
    if latency_ms <= latency_limit:
        return float(accuracy)
    return -float(latency_ms - latency_limit) / float(latency_limit)


# ---------------------------------------------------------------------------------------------
# 3. The metered benchmark
# ---------------------------------------------------------------------------------------------


@dataclass
class Account:
    """One budget of simulated training seconds, shared by every clock of a search."""

    budget: float
    spent: float = 0.0
    trained: set[str] = field(default_factory=set)  # class representatives
    queries: int = 0
    refused: int = 0

    def require(self) -> None:
        if self.spent >= self.budget:
            self.refused += 1
            raise BudgetExhausted(f"the budget of {self.budget:g} simulated seconds is spent")

    def charge(self, seconds: float, arch: str) -> None:
        self.spent += seconds
        self.trained.add(arch)
        self.queries += 1


_metered_calls = 0  # > 0 while a metered clock reads the table: those reads are paid for


@contextlib.contextmanager
def _metered() -> Iterator[None]:
    global _metered_calls
    _metered_calls += 1
    try:
        yield
    finally:
        _metered_calls -= 1


@dataclass
class MeteredClock(SimulatedClock):
    """A ``SimulatedClock`` that also charges its account, and refuses once the account is spent.

    As with the library's clock, the query that spends the budget completes; the next is
    refused with ``BudgetExhausted``, which ``nas_lab.strategies.run`` takes as the end."""

    account: Account = field(default_factory=lambda: Account(0.0))

    def query(self, arch: nb201.Cell | str, epoch: int | None = None) -> Result:
        self.account.require()
        before = self.elapsed
        with _metered():
            result = super().query(arch, epoch)
        self.account.charge(self.elapsed - before, result.arch)
        return result


class MeteredBench:
    """The benchmark as a capstone search sees it.

    - ``query(arch, epoch=None)`` trains (charged to the budget, one recorded seed);
    - ``clock(budget=None, seed=None, resume=True)`` is a clock charged to the same budget, so
      ``nas_lab.strategies.run(strategy, bench, budget, seed)`` works unchanged;
    - ``latency_ms(arch)`` and ``column`` of the free columns (params, FLOPs, latencies) cost
      nothing: they need no training;
    - ``spent``, ``remaining`` and ``trained`` say where the search stands.
    """

    def __init__(self, bench: Benchmark, budget: float, seed: int | np.random.Generator):
        if not budget > 0:
            raise ValueError(f"budget must be a positive number of simulated seconds: {budget!r}")
        self._bench = bench
        self.account = Account(float(budget))
        rng = as_rng(seed)
        # One recorded training per architecture, as a real search would see it.
        self.seeds = [bench.seeds[int(rng.integers(len(bench.seeds)))]]
        self.recorded_seeds = list(bench.seeds)  # a retraining with another seed: clock(seed=)
        self.epochs = bench.epochs
        self.archs = list(bench.archs)
        self._clock = self.clock(resume=False)

    def __len__(self) -> int:
        return len(self.archs)

    def __iter__(self) -> Iterator[str]:
        return iter(self.archs)

    def row(self, arch: nb201.Cell | str) -> int:
        return self._bench.row(arch)

    @property
    def budget(self) -> float:
        return self.account.budget

    @property
    def spent(self) -> float:
        return self.account.spent

    @property
    def remaining(self) -> float:
        return max(0.0, self.account.budget - self.account.spent)

    @property
    def trained(self) -> set[str]:
        """The architectures (class representatives) trained so far."""
        return set(self.account.trained)

    def has_trained(self, arch: object) -> bool:
        """Whether ``arch`` (any member of its class) was trained; False for a non-cell."""
        try:
            return self._bench.archs[self._bench.row(arch)] in self.account.trained
        except Exception:  # noqa: BLE001  not a cell at all: judge says why
            return False

    def least_cost(self) -> float:
        """The least the trainings recorded could have cost: one epoch of each architecture
        trained, at its cheaper seed. A spend below it means the account was tampered with."""
        rows = [self._bench.row(arch) for arch in self.account.trained]
        per_epoch = self._bench.arrays["train_time"][rows].min(axis=1) / self.epochs
        return float(per_epoch.sum())

    def clock(
        self, budget: float | None = None, seed: int | None = None, resume: bool = True
    ) -> MeteredClock:
        seed = self.seeds[0] if seed is None else seed
        return MeteredClock(self._bench, budget, seed, resume, account=self.account)

    def query(self, arch: nb201.Cell | str, epoch: int | None = None) -> Result:
        """Train ``arch`` (to ``epoch``, default all), charged to the budget."""
        return self._clock.query(arch, epoch)

    def latency_ms(self, arch: nb201.Cell | str) -> float:
        """The recorded CPU latency of ``arch``: free, as from a latency lookup table."""
        return float(self._bench.arrays[LATENCY][self._bench.row(arch)])

    def column(self, name: str, epoch: int | None = None) -> np.ndarray:
        if name not in FREE_COLUMNS:
            raise ValueError(
                f"column {name!r} comes from training, which costs budget in the capstone: "
                f"query architectures through bench.query or bench.clock. Free columns: "
                f"{', '.join(FREE_COLUMNS)}"
            )
        return self._bench.column(name)

    def best(self, metric: str = "val_acc") -> Result:
        raise ValueError(
            "bench.best reads the whole table, which a capstone search must pay to train: "
            "search with bench.query or bench.clock instead"
        )


@dataclass
class TableReads:
    """Reads of the table's training results that no metered clock paid for."""

    count: int = 0
    what: list[str] = field(default_factory=list)


@contextlib.contextmanager
def watch_table() -> Iterator[TableReads]:
    """Count the reads of accuracies made outside a metered clock (``Benchmark.query``, the
    training columns, ``best``), while the block runs: a search that loads the table itself
    and looks up the answer has not paid for it. Best effort: a search can still reach around
    it (reading the file), as it could read the grader's own files."""
    reads = TableReads()
    originals = {name: getattr(Benchmark, name) for name in ("query", "column", "best")}

    def spy(name: str, original: Callable) -> Callable:
        def wrapper(self, *args, **kwargs):
            column = args[0] if args else kwargs.get("name")
            free = name == "column" and column in FREE_COLUMNS
            if _metered_calls == 0 and not free:
                reads.count += 1
                if len(reads.what) < 5:
                    reads.what.append(f"{name}({', '.join(map(repr, args))[:60]})")
            return original(self, *args, **kwargs)

        return wrapper

    for name, original in originals.items():
        setattr(Benchmark, name, spy(name, original))
    try:
        yield reads
    finally:
        for name, original in originals.items():
            setattr(Benchmark, name, original)


# ---------------------------------------------------------------------------------------------
# 4. The verdict
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What the grader's table says of one returned architecture."""

    arch: str
    ok: bool  # well formed and within both limits
    reason: str  # why not, or a one-line summary
    latency_ms: float = float("nan")
    test_acc: float = float("nan")
    percentile: float = 0.0  # share of the latency-feasible cells it matches or beats


@cache
def grader_table() -> Benchmark:
    """The shipped table, loaded once per process: what the checks judge by."""
    return bench_module.load()


def percentile(bench: Benchmark, arch: nb201.Cell | str, latency_limit: float) -> float:
    """The share of the table's cells within ``latency_limit`` whose mean final test accuracy
    the cell ``arch`` matches or beats: 1.0 for the best of them (ties count as beaten)."""
    latency, test = bench.column(LATENCY), bench.column("test_acc")
    within = test[latency <= latency_limit]
    if within.size == 0:
        raise ValueError(f"no cell of the table has a latency within {latency_limit} ms")
    mine = test[bench.row(arch)]
    return float(np.mean(within <= mine))


def judge(
    arch: object,
    latency_limit: float,
    target: float,
    trained: Sequence[str] | None = None,
    bench: Benchmark | None = None,
) -> Verdict:
    """The verdict on a returned architecture, from the grader's own table (mean over seeds).

    Valid: a well-formed NAS-Bench-201 cell (a string or an ``nb201.Cell``); trained by the
    search (its class among ``trained``, when given); ``LAT <= latency_limit`` and
    ``test_acc >= target``. Its percentile counts in any case, for feedback."""
    bench = grader_table() if bench is None else bench
    text = str(arch) if isinstance(arch, nb201.Cell) else arch
    if not isinstance(text, str):
        return Verdict(repr(arch)[:80], False, f"returned {type(arch).__name__}, not a cell string")
    try:
        cell = nb201.as_cell(text)
    except ValueError as err:
        return Verdict(text[:80], False, f"not a well-formed NAS-Bench-201 cell: {err}")
    rep = bench.archs[bench.row(cell)]
    if trained is not None and rep not in set(trained):
        return Verdict(text, False, "returned an architecture the search never trained")
    latency = float(bench.arrays[LATENCY][bench.row(cell)])
    test = float(bench.column("test_acc")[bench.row(cell)])
    share = percentile(bench, cell, latency_limit)
    measured = dict(latency_ms=latency, test_acc=test, percentile=share)
    if latency > latency_limit:
        reason = f"latency {latency:.3f} ms is over the limit of {latency_limit:.3f} ms"
        return Verdict(text, False, reason, **measured)
    if test < target:
        reason = f"test accuracy {test:.4f} is below the target {target:.4f}"
        return Verdict(text, False, reason, **measured)
    summary = (
        f"latency {latency:.3f} <= {latency_limit:.3f} ms, test accuracy {test:.4f} >= "
        f"{target:.4f}, better than or equal to {100 * share:.1f}% of the cells within the limit"
    )
    return Verdict(text, True, summary, **measured)


# ---------------------------------------------------------------------------------------------
# 5. Two searches: the baseline, and one that meets the brief
# ---------------------------------------------------------------------------------------------


def best_feasible(trajectory: Sequence[tuple], latency_of: Callable, latency_limit: float) -> str:
    """The most accurate (by validation accuracy) cell of a clock's trajectory within the
    latency limit; with none within it, the fastest cell trained."""
    if not trajectory:
        raise ValueError("the search trained nothing: give it a budget")
    ok = [(val, arch) for _, arch, val, _ in trajectory if latency_of(arch) <= latency_limit]
    if ok:
        return max(ok, key=lambda pair: pair[0])[1]
    return min((arch for _, arch, _, _ in trajectory), key=latency_of)


def reselect(
    bench: MeteredBench, trajectory: Sequence[tuple], latency_limit: float, k: int = 10
) -> str:
    """Train the ``k`` best cells within the limit once more, with another seed, and return the
    best by the mean of the two validation accuracies.

    One training's accuracy is noisy: the best of hundreds of noisy values is, more often than
    not, a cell that got lucky (the winner's curse). Averaging two trainings halves the noise's
    variance where it matters, at the top. Each retraining is charged; when the budget runs out,
    the finalists retrained so far compete with their single-seed scores left out."""
    first: dict[str, float] = {}
    for _, arch, val, _ in trajectory:
        if bench.latency_ms(arch) <= latency_limit:
            first[arch] = max(val, first.get(arch, -np.inf))
    if not first:
        return best_feasible(trajectory, bench.latency_ms, latency_limit)
    finalists = sorted(first, key=first.get, reverse=True)[: int(k)]
    others = [s for s in bench.recorded_seeds if s != bench.seeds[0]] or bench.seeds
    clock = bench.clock(seed=others[0], resume=False)
    mean: dict[str, float] = {}
    for arch in finalists:
        try:
            mean[arch] = (first[arch] + clock.query(arch).val_acc) / 2
        except BudgetExhausted:
            break
    return max(mean, key=mean.get) if mean else finalists[0]


def baseline_search(bench, budget: float, seed: int, latency_limit: float, target: float) -> str:
    """Random search over all 15,625 strings (Li & Talwalkar, UAI 2019); the limit is applied
    only at the end, to pick the best cell found."""
    from nas_lab.strategies import run
    from nas_lab.strategies.random_search import RandomSearch

    clock = run(RandomSearch(seed=seed), bench, budget, seed)
    return best_feasible(clock.trajectory, bench.latency_ms, latency_limit)


def reference_search(
    bench, budget: float, seed: int, latency_limit: float, target: float, share: float = 0.85
) -> str:
    """Regularized evolution (Real et al., AAAI 2019) restricted to the latency-feasible cells,
    then :func:`reselect`. A proposal over the limit is dropped before training (latency is
    free), so ``share`` of the budget goes to cells that could be the answer; the rest retrains
    the finalists with a second seed."""
    from nas_lab.strategies import run
    from nas_lab.strategies.evolution import RegularizedEvolution

    rng = as_rng(seed)
    evolution = RegularizedEvolution(population_size=10, sample_size=3, seed=rng)
    within = Filtered(evolution, lambda cell: bench.latency_ms(cell) <= latency_limit)
    clock = run(within, bench, share * budget, rng)
    return reselect(bench, clock.trajectory, latency_limit)
