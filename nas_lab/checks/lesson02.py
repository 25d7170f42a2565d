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

# ---- 02.4: the probability that a training beats the incumbent (Domhan et al., 2015) ------


def improvement_probability(finals, weights, noise: float, incumbent: float) -> float:
    """P(y_T > incumbent) = sum_s w_s (1 - Phi((incumbent - f_s) / sigma)) over posterior samples
    f_s of the curve at the horizon with weights w_s: ``CurveForecast.prob_above``."""
    finals = np.asarray(finals, dtype=float)[:, None]
    forecast = estimation.CurveForecast(finals, np.asarray(weights, dtype=float), noise, {})
    return forecast.prob_above(incumbent)


def _forecast_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for size in (1, 7, 60, 300):
        centre, spread = rng.uniform(0.6, 0.95), rng.uniform(0.005, 0.05)
        finals = np.clip(rng.normal(centre, spread, size), 0, 1).round(4)
        weights = rng.dirichlet(np.full(size, 0.5))  # far from uniform
        noise = float(rng.uniform(0.003, 0.03))
        incumbent = float(rng.choice(finals) + rng.normal(0, noise))
        cases.append((finals.tolist(), weights.tolist(), noise, incumbent))
    finals, weights = cases[2][0], cases[2][1]
    cases.append(([0.9] * 5, [0.2] * 5, 0.01, 0.9))  # tied with every sample: one half
    cases.append((finals, weights, 0.02, 1.2))  # far above every sample: 0
    cases.append((finals, weights, 0.001, max(finals) - 0.05))  # tiny noise, mostly above
    return cases


def _without_noise(finals, weights, noise, incumbent):  # P(f(T) > y): forgets the noise term
    return float(np.asarray(weights) @ (np.asarray(finals) > incumbent))


def _unweighted(finals, weights, noise, incumbent):  # treats the samples as equally likely
    from scipy.stats import norm

    return float(np.mean(norm.cdf((np.asarray(finals) - incumbent) / noise)))


def _flipped(finals, weights, noise, incumbent):  # P(y_T < incumbent)
    from scipy.stats import norm

    return float(np.asarray(weights) @ norm.cdf((incumbent - np.asarray(finals)) / noise))


def _variance_for_sd(finals, weights, noise, incumbent):  # divides by sigma^2
    from scipy.stats import norm

    return float(np.asarray(weights) @ norm.cdf((np.asarray(finals) - incumbent) / noise**2))


exercise(
    "02.4",
    title="the probability of beating the incumbent",
    points=2,
    inputs=_forecast_inputs,
    compare=close,
    wrong=[_without_noise, _unweighted, _flipped, _variance_for_sd],
)(improvement_probability)
