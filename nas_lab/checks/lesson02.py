"""Checks for lesson 02 (performance estimation)."""

from __future__ import annotations

import numpy as np

from nas_lab import estimation
from nas_lab.checks import close, exercise

# ---- 02.1: Spearman's rank correlation, ties included -------------------------------------


def spearman(a, b) -> float:
    """Spearman's rho: Pearson's correlation of the ranks, tied values sharing their mean rank."""
    return estimation.rank_correlation(a, b)["spearman"]


def _accuracy_pairs(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(5):
        n = int(rng.integers(8, 30))
        a = rng.uniform(0.5, 1.0, size=n)
        b = a + rng.normal(0, 0.08, size=n)
        # Accuracies on a few hundred images tie often: round to make ties.
        cases.append((a.round(2).tolist(), b.round(2).tolist()))
    return cases


def _pearson_of_values(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def _ranks_without_ties(a, b):  # argsort of argsort breaks ties by position
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


exercise(
    "02.1",
    title="Spearman's rank correlation",
    points=2,
    inputs=_accuracy_pairs,
    compare=close,
    wrong=[_pearson_of_values, _ranks_without_ties],
)(spearman)

# ---- 02.2: the schedule of successive halving ---------------------------------------------


def _rung_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(8):
        eta, min_epoch = int(rng.integers(2, 5)), int(rng.integers(1, 3))
        cases.append(
            (int(rng.integers(5, 90)), eta, min_epoch, int(rng.integers(min_epoch + 1, 13)))
        )
    return cases


def _rounding_up(n, eta, min_epoch, max_epoch):
    ladder = estimation.epoch_ladder(eta, min_epoch, max_epoch)
    return [(-(-n // eta**i), epoch) for i, epoch in enumerate(ladder)]


def _uncapped(n, eta, min_epoch, max_epoch):  # stops below max_epoch: never trains fully
    rungs, epoch = [], min_epoch
    while epoch <= max_epoch:
        rungs.append((max(1, n // eta ** len(rungs)), epoch))
        epoch *= eta
    return rungs


exercise(
    "02.2",
    title="successive halving's rungs",
    points=2,
    inputs=_rung_inputs,
    wrong=[_rounding_up, _uncapped],
)(estimation.rungs)

# ---- 02.3: Hyperband's brackets -----------------------------------------------------------


def hyperband_brackets(max_epoch: int, eta: int) -> list[list[tuple[int, int]]]:
    """Li et al. (JMLR 2018), Algorithm 1, with r = 1 epoch as the smallest resource."""
    return estimation.hyperband_brackets(max_epoch, eta, min_epoch=1)


def _bracket_inputs(rng: np.random.Generator) -> list[tuple]:
    # Powers of eta, where Algorithm 1 needs no rounding of its own.
    return [(eta ** int(rng.integers(1, 5)), eta) for eta in rng.integers(2, 4, size=5).tolist()]


def _one_bracket_short(max_epoch, eta):  # s_max + 1 brackets: the loop stops one early
    return hyperband_brackets(max_epoch, eta)[:-1]


def _floor_of_n(max_epoch, eta):  # n = floor(...) instead of ceil(...)
    s_max = len(estimation.epoch_ladder(eta, 1, max_epoch)) - 1
    out = []
    for s in range(s_max, -1, -1):
        n = (s_max + 1) * eta**s // (s + 1)
        out.append(estimation.rungs(n, eta, eta ** (s_max - s), max_epoch))
    return out


exercise(
    "02.3",
    title="Hyperband's brackets",
    points=3,
    inputs=_bracket_inputs,
    wrong=[_one_bracket_short, _floor_of_n],
)(hyperband_brackets)
