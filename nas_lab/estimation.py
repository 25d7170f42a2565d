"""Performance estimation: how much training an architecture needs before we can rank it.

Lesson 02. Full training is the honest estimate and the expensive one; a few epochs are cheap,
and worth exactly as much as they agree with full training on the *ranking*. This file reads top
to bottom the way the lesson builds it:

1. rank correlation, and how well each epoch's accuracy ranks architectures (fidelity);
2. random search at full fidelity, the baseline (Li & Talwalkar, UAI 2019);
3. successive halving: many architectures briefly, the best of them longer (Jamieson &
   Talwalkar, AISTATS 2016), and Hyperband, which hedges over how aggressive to be (Li et al.,
   JMLR 2018);
4. early stopping inside random search: drop an architecture whose curve trails the incumbent's;
5. learning-curve extrapolation: a Bayesian ensemble of parametric curves fitted to the epochs
   seen so far, the probability that the final accuracy beats the incumbent, and the stopping
   rule that uses it (Domhan, Springenberg & Hutter, IJCAI 2015);
6. test regret over simulated time, its mean and confidence band, and a harness that runs
   strategies at equal budget.

An epoch-e accuracy in the table is the e-th epoch of one training on the full cosine schedule
(as NAS-Bench-201's per-epoch curves are), not a training of e epochs whose schedule ends at e.
So "stopping at epoch e" and "resuming to the end" are the same run, and a learning curve's
prefix is what a search really sees of that run before deciding.

Every search runs on the benchmark's ``SimulatedClock`` and returns it: its trajectory is the
record. One rule holds for all of them: a query that starts before the budget is spent runs to
completion (the clock may overshoot by one query), and the next raises ``BudgetExhausted``,
which ends the search.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from numbers import Real

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from nas_lab.arguments import is_int
from nas_lab.bench import Benchmark, BudgetExhausted, SimulatedClock
from nas_lab.curves import (  # noqa: F401  (lesson 02 reads them as estimation.X)
    CURVE_FAMILIES,
    CurveForecast,
    extrapolate,
    should_stop_extrapolated,
)
from nas_lab.spaces import as_rng

# A search as lesson 02 writes it: (bench, budget, seed) -> the clock it charged.
SearchFunction = Callable[[Benchmark, float, int], SimulatedClock]

# ---------------------------------------------------------------------------------------------
# 1. Rank correlation and fidelity
# ---------------------------------------------------------------------------------------------


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Spearman's rho (Spearman, Am. J. Psychol. 1904) and Kendall's tau-b (Kendall, Biometrika
    1938) between two scores of the same architectures, via ``scipy.stats``.

    rho is Pearson's correlation of the ranks; tau is (concordant - discordant pairs) / pairs,
    corrected for ties. A search only needs the order right, so these, not Pearson, measure an
    estimate. A constant input has no order: a warning, and nan for both."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"rank_correlation needs two 1-D sequences of equal length (one score per "
            f"architecture, same order); got shapes {a.shape} and {b.shape}"
        )
    if len(a) < 2:
        raise ValueError("rank_correlation needs at least 2 architectures to rank")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(
            "rank_correlation got NaN or infinite scores; drop those architectures from both "
            "sequences first (e.g. keep = np.isfinite(a) & np.isfinite(b))"
        )
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        warnings.warn(
            "rank_correlation: one input is constant, so it ranks nothing; returning nan",
            RuntimeWarning,
            stacklevel=2,
        )
        return {"spearman": float("nan"), "kendall": float("nan")}
    return {
        "spearman": float(stats.spearmanr(a, b)[0]),
        "kendall": float(stats.kendalltau(a, b)[0]),
    }


def fidelity_correlations(bench: Benchmark, seed: int = 0) -> list[tuple[int, float, float]]:
    """(epoch, spearman, kendall) for every epoch e: how well the validation accuracy after e
    epochs of one training run (table seed ``seed``) ranks the architectures by their final
    validation accuracy.

    The target is the mean final accuracy over the *other* seeds, not over all of them: a run
    correlated with a mean that contains itself would look better than it is. So the last row
    is the seed-to-seed agreement of full training, the ceiling no cheaper estimate can be
    expected to beat. A table with a single seed has no other: its own final accuracy is used,
    and the last row is 1 by construction."""
    if seed not in bench.seeds:
        raise ValueError(f"seed {seed} is not recorded; the table's seeds are {bench.seeds}")
    val = bench.arrays["val_acc"]
    s = bench.seeds.index(seed)
    others = [i for i in range(len(bench.seeds)) if i != s] or [s]
    target = val[:, others, -1].mean(axis=1)
    rows = []
    for e in range(bench.epochs):
        r = rank_correlation(val[:, s, e], target)
        rows.append((e + 1, r["spearman"], r["kendall"]))
    return rows


# ---------------------------------------------------------------------------------------------
# 2. Random search, the baseline
# ---------------------------------------------------------------------------------------------


def _start(
    bench: Benchmark, budget: float | None, seed: int | np.random.Generator
) -> tuple[SimulatedClock, Iterator[str]]:
    """A fresh clock and a random order of the table's architectures, both drawn from ``seed``.

    A search trains each architecture once, so its clock answers with one recorded training run
    (a table seed drawn from ``seed``), noise and all: the mean over seeds is a luxury no real
    search has. Architectures come uniformly from the table's distinct cells, without
    replacement: a second look at a trained cell would cost nothing and teach nothing."""
    if budget is not None and not (isinstance(budget, Real) and budget > 0):
        raise ValueError(
            f"budget must be a positive number of simulated seconds (or None: no limit), "
            f"got {budget!r}"
        )
    rng = as_rng(seed)
    clock = bench.clock(budget, seed=bench.seeds[int(rng.integers(len(bench.seeds)))])
    return clock, (bench.archs[i] for i in rng.permutation(len(bench)))


def _check_epoch(bench: Benchmark, epoch: int, name: str, top: int | None = None) -> int:
    top = bench.epochs if top is None else top
    if not (is_int(epoch) and 1 <= epoch <= top):
        raise ValueError(f"{name} must be an integer epoch between 1 and {top}, got {epoch!r}")
    return int(epoch)


def random_search(
    bench: Benchmark,
    budget: float | None,
    seed: int | np.random.Generator,
    epochs: int | None = None,
) -> SimulatedClock:
    """Random search (Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture
    Search", UAI 2019): train architectures drawn at random for ``epochs`` epochs (default: all)
    until the budget is spent, or the table is. Returns the clock; its trajectory is the record.

    Random search over the table's *classes*: each draw is a distinct isomorphism class (a table
    row), uniformly, without replacement (see ``_start``). Lesson 02 uses this one. The
    ask-and-tell ``strategies.random_search.RandomSearch`` of lessons 03-05 and 12 draws cell
    *strings* uniformly from the 15,625, with replacement: the same baseline idea over another
    distribution (a class with many isomorphic strings is drawn more often)."""
    epochs = _check_epoch(bench, bench.epochs if epochs is None else epochs, "epochs")
    clock, archs = _start(bench, budget, seed)
    with suppress(BudgetExhausted):
        for arch in archs:
            clock.query(arch, epochs)
    return clock


# ---------------------------------------------------------------------------------------------
# 3. Successive halving and Hyperband
# ---------------------------------------------------------------------------------------------


def epoch_ladder(eta: int, min_epoch: int, max_epoch: int) -> list[int]:
    """The rung epochs r_i = min_epoch * eta**i, the last one capped at ``max_epoch`` (so the
    top rung is always full training, even when max_epoch / min_epoch is not a power of eta)."""
    if not (is_int(eta) and eta >= 2):
        raise ValueError(f"eta must be an integer >= 2 (keep 1/eta per rung), got {eta!r}")
    if not (is_int(min_epoch) and 1 <= min_epoch <= max_epoch):
        raise ValueError(
            f"min_epoch must be an integer between 1 and {max_epoch}, got {min_epoch!r}"
        )
    ladder = [int(min_epoch)]
    while ladder[-1] < max_epoch:
        ladder.append(min(ladder[-1] * int(eta), int(max_epoch)))
    return ladder


def rungs(n: int, eta: int, min_epoch: int, max_epoch: int) -> list[tuple[int, int]]:
    """Successive halving's schedule, as (architectures, epochs) per rung: n_i = floor(n eta^-i)
    trained to r_i epochs (Li et al., JMLR 2018, Algorithm 1, the inner loop), at least one."""
    if not (is_int(n) and n >= 1):
        raise ValueError(f"n (architectures in the first rung) must be an integer >= 1, got {n!r}")
    ladder = epoch_ladder(eta, min_epoch, max_epoch)
    return [(max(1, int(n) // int(eta) ** i), epoch) for i, epoch in enumerate(ladder)]


def halving_bracket(
    clock: SimulatedClock, archs: Sequence[str], eta: int = 3, min_epoch: int = 1
) -> list[str]:
    """One run of successive halving (Jamieson & Talwalkar, "Non-stochastic Best Arm
    Identification and Hyperparameter Optimization", AISTATS 2016; in Hyperband's form, Li et
    al., JMLR 2018, Algorithm 1, lines "for i in 0..s"): train every architecture in the rung to
    r_i epochs, keep the top floor(n_i / eta) by validation accuracy, go up a rung. The clock
    charges only the new epochs (training resumes). Returns the last rung, best first."""
    archs = list(archs)
    for keep, epoch in rungs(len(archs), eta, min_epoch, clock.bench.epochs):
        archs = archs[:keep]
        score = {arch: clock.query(arch, epoch).val_acc for arch in archs}
        archs = sorted(archs, key=lambda arch: -score[arch])  # stable: ties keep draw order
    return archs


def successive_halving(
    bench: Benchmark,
    budget: float | None,
    seed: int | np.random.Generator,
    *,
    n: int | None = None,
    eta: int = 3,
    min_epoch: int = 1,
    clock: SimulatedClock | None = None,
) -> SimulatedClock:
    """Successive halving, repeated with fresh random architectures until the budget is spent.

    Each bracket starts ``n`` architectures at ``min_epoch`` (default n = eta**(rungs - 1), so one
    architecture reaches full training). Pass ``clock`` to charge an existing clock (its budget
    holds; leave ``budget`` None). Returns the clock; ``incumbents(clock)[-1]`` is the pick."""
    ladder = epoch_ladder(eta, min_epoch, bench.epochs)
    n = eta ** (len(ladder) - 1) if n is None else n
    rungs(n, eta, min_epoch, bench.epochs)  # validates n before anything is charged
    if clock is not None and budget is not None:
        raise ValueError("pass either budget or clock (which carries its own budget), not both")
    own_clock, archs = _start(bench, budget, seed)
    clock = own_clock if clock is None else clock
    with suppress(BudgetExhausted):
        while bracket := list(itertools.islice(archs, n)):
            halving_bracket(clock, bracket, eta, min_epoch)
    return clock


def hyperband_brackets(
    max_epoch: int, eta: int = 2, min_epoch: int = 1
) -> list[list[tuple[int, int]]]:
    """Hyperband's brackets (Li et al., "Hyperband: A Novel Bandit-Based Approach to
    Hyperparameter Optimization", JMLR 2018, Algorithm 1), each a successive-halving schedule.

    With R = max_epoch / min_epoch and s_max = floor(log_eta R), B = (s_max + 1) R, bracket s
    (s_max down to 0) starts n = ceil(B / R * eta^s / (s + 1)) architectures at r = R eta^-s.
    Where R is not a power of eta, s_max rounds up instead and the top rung is capped, so that
    the ladder of epochs is ``epoch_ladder``'s."""
    ladder = epoch_ladder(eta, min_epoch, max_epoch)
    s_max = len(ladder) - 1
    brackets = []
    for s in range(s_max, -1, -1):
        n = -(-(s_max + 1) * eta**s // (s + 1))  # integer ceil
        brackets.append(rungs(n, eta, ladder[s_max - s], max_epoch))
    return brackets


def hyperband(
    bench: Benchmark,
    budget: float | None,
    seed: int | np.random.Generator,
    *,
    eta: int = 2,
    min_epoch: int = 1,
) -> SimulatedClock:
    """Hyperband (Li et al., JMLR 2018, Algorithm 1): run its brackets in turn, from the most
    aggressive (many architectures, one epoch) to plain full training of a few, and start over
    with fresh architectures until the budget is spent. Returns the clock."""
    brackets = hyperband_brackets(bench.epochs, eta, min_epoch)
    clock, archs = _start(bench, budget, seed)
    with suppress(BudgetExhausted):
        for schedule in itertools.cycle(brackets):
            (n, first_epoch), *_ = schedule
            bracket = list(itertools.islice(archs, n))
            if not bracket:
                break
            halving_bracket(clock, bracket, eta, first_epoch)
    return clock


# ---------------------------------------------------------------------------------------------
# 4. Early stopping on the learning curve
# ---------------------------------------------------------------------------------------------


def should_stop(
    val_acc: float,
    incumbent_val_acc: float | None,
    margin: float = 0.0,
    threshold: float | None = None,
) -> bool:
    """Stop a training run early when its validation accuracy after the check epoch is below
    ``threshold``, or below the incumbent's at the same epoch minus ``margin``. A crude rule in
    the spirit of learning-curve-based termination (Domhan, Springenberg & Hutter, IJCAI 2015),
    which extrapolates the curve instead of reading one point of it: see
    ``should_stop_extrapolated`` in section 5."""
    if threshold is not None and val_acc < threshold:
        return True
    return incumbent_val_acc is not None and val_acc < incumbent_val_acc - margin


def random_search_early_stopping(
    bench: Benchmark,
    budget: float | None,
    seed: int | np.random.Generator,
    check_epoch: int = 1,
    margin: float = 0.0,
    threshold: float | None = None,
) -> SimulatedClock:
    """Random search that trains each architecture to ``check_epoch``, stops it there if
    ``should_stop`` says so, and otherwise resumes it to full training. The incumbent is the best
    fully trained architecture so far; its curve at ``check_epoch`` is the bar. With the same seed
    it visits the same architectures as ``random_search``, at a lower cost."""
    _check_epoch(bench, check_epoch, "check_epoch", top=bench.epochs - 1)
    if margin < 0:
        raise ValueError(
            f"margin must be >= 0 (how far below the incumbent is tolerated), got {margin}"
        )
    clock, archs = _start(bench, budget, seed)
    best_final, best_early = -np.inf, None
    with suppress(BudgetExhausted):
        for arch in archs:
            early = clock.query(arch, check_epoch).val_acc
            if should_stop(early, best_early, margin, threshold):
                continue
            final = clock.query(arch).val_acc
            if final > best_final:
                best_final, best_early = final, early
    return clock


# ---------------------------------------------------------------------------------------------
# 5. Learning-curve extrapolation, and the stopping rule that uses it
# ---------------------------------------------------------------------------------------------

# The model (Domhan et al., IJCAI 2015) lives in :mod:`nas_lab.curves`; here it decides inside
# random search.


def random_search_extrapolation(
    bench: Benchmark,
    budget: float | None,
    seed: int | np.random.Generator,
    delta: float = 0.05,
    min_epoch: int = 2,
    noise: float = 0.01,
    draws: int = 16,
) -> SimulatedClock:
    """Random search with Domhan et al.'s learning-curve stopping rule: train each architecture
    epoch by epoch and, from ``min_epoch`` on, stop it once ``should_stop_extrapolated`` judges
    that its final validation accuracy will not beat the incumbent's (the best final one so
    far). The clock charges only the epochs trained (training resumes), as for
    ``random_search_early_stopping``; with the same seed it visits the same architectures as
    ``random_search``, and the extrapolations draw from the same seeded generator after them."""
    _check_epoch(bench, min_epoch, "min_epoch", top=bench.epochs - 1)
    if min_epoch < 2:
        raise ValueError(
            "min_epoch must be at least 2: extrapolating needs two points of the curve"
        )
    rng = as_rng(seed)
    clock, archs = _start(bench, budget, rng)
    best = None
    with suppress(BudgetExhausted):
        for arch in archs:
            curve = []
            for epoch in range(1, bench.epochs + 1):
                curve.append(clock.query(arch, epoch).val_acc)
                if min_epoch <= epoch < bench.epochs and should_stop_extrapolated(
                    curve, best, bench.epochs, delta, noise, draws, rng
                ):
                    break
            else:  # trained to the end
                best = curve[-1] if best is None else max(best, curve[-1])
    return clock


# ---------------------------------------------------------------------------------------------
# 6. Regret over simulated time, and comparing strategies at equal budget
# ---------------------------------------------------------------------------------------------


def incumbents(clock: SimulatedClock) -> list[str]:
    """The architecture a search would recommend after each of its queries.

    Chosen by validation accuracy only, and a finished training outranks any unfinished one
    (the final epoch is the only one with a test accuracy in the trajectory): Hyperband's brackets
    compare architectures within a rung, never an epoch-1 score with a final one. Before the first
    full training, the best low-fidelity score is the pick."""
    best_key, best, picks = (False, -np.inf), None, []
    for _, arch, val_acc, test_acc in clock.trajectory:
        key = (test_acc is not None, val_acc)
        if key > best_key:
            best_key, best = key, arch
        picks.append(best)
    return picks


def regret_curves(
    clocks: Sequence[SimulatedClock], bench: Benchmark, grid: Sequence[float]
) -> np.ndarray:
    """Test regret of each run's incumbent at each simulated time in ``grid`` (runs x grid), as
    NAS-Bench-101 plots it (Ying et al., ICML 2019): best test accuracy in the table minus the
    incumbent's. The incumbent is reported by its final test accuracy, mean over seeds, looked up
    in the table, whatever fidelity chose it: the search itself never sees test accuracy.
    Before a run's first answer the regret is nan."""
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1:
        raise ValueError(f"grid must be a 1-D sequence of simulated times, got shape {grid.shape}")
    best = bench.best("test_acc").test_acc
    curves = np.full((len(clocks), len(grid)), np.nan)
    for run, clock in enumerate(clocks):
        if not clock.trajectory:
            continue
        times = np.array([t for t, *_ in clock.trajectory])
        regret = np.array([best - bench.query(arch).test_acc for arch in incumbents(clock)])
        last = np.searchsorted(times, grid, side="right") - 1  # last answer at or before t
        curves[run] = np.where(last >= 0, regret[np.maximum(last, 0)], np.nan)
    return curves


def summarize(curves: np.ndarray, level: float = 0.95) -> dict[str, np.ndarray]:
    """Mean over runs and a ``level`` confidence band for it at each time (Student's t: mean
    +- t_{n-1} s / sqrt(n)); nan where a run has no answer yet, and a band needs 2 runs."""
    curves = np.asarray(curves, dtype=float)
    if curves.ndim != 2 or len(curves) == 0:
        raise ValueError(f"curves must be a (runs x times) array, got shape {curves.shape}")
    n, mean = len(curves), curves.mean(axis=0)
    if n < 2:
        return {"mean": mean, "low": np.full_like(mean, np.nan), "high": np.full_like(mean, np.nan)}
    half = stats.t.ppf(0.5 + level / 2, n - 1) * curves.std(axis=0, ddof=1) / np.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half}


def compare(
    strategies: dict[str, SearchFunction],
    bench: Benchmark,
    budget: float,
    seeds: int | Sequence[int],
    grid: Sequence[float] | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Run every strategy ``strategy(bench, budget, seed)`` once per seed at the same simulated
    budget; return each one's regret curves (runs x grid). ``seeds``: a list, or a count for
    range(count). The grid defaults to 101 times from 0 to the budget."""
    if not (isinstance(budget, Real) and budget > 0):
        raise ValueError(f"compare needs a positive budget in simulated seconds, got {budget!r}")
    seeds = list(range(seeds)) if is_int(seeds) else list(seeds)
    grid = np.linspace(0.0, budget, 101) if grid is None else grid
    bar = tqdm(total=len(strategies) * len(seeds), desc="searches", disable=not progress)
    curves = {}
    for name, strategy in strategies.items():
        clocks = []
        for seed in seeds:
            clock = strategy(bench, budget, seed)
            if not isinstance(clock, SimulatedClock):
                raise TypeError(
                    f"strategy {name!r} returned {type(clock).__name__}; a strategy must return "
                    "the SimulatedClock it charged (end it with `return clock`)"
                )
            clocks.append(clock)
            bar.update()
        curves[name] = regret_curves(clocks, bench, grid)
    bar.close()
    return curves
