"""Learning-curve extrapolation: predict a training's final accuracy from its first epochs.

Domhan, Springenberg & Hutter, "Speeding up Automatic Hyperparameter Optimization of Deep Neural
Networks by Extrapolation of Learning Curves", IJCAI 2015: a Bayesian ensemble of parametric
curve families fitted to the epochs seen so far, the probability that the final accuracy beats
the incumbent (``CurveForecast.prob_above``), and the stopping rule that uses it
(``should_stop_extrapolated``). Lesson 02 runs it inside random search
(:func:`nas_lab.estimation.random_search_extrapolation`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
from scipy import special

from nas_lab.arguments import is_int
from nas_lab.spaces import as_rng

# The parametric families of Domhan et al. (IJCAI 2015; ``curvefunctions.py`` of their
# code, pylearningcurvepredictor) that are linear in an offset c and an amplitude a once their
# shape is fixed: y(t) = c - a g(t), with g falling in t, so a > 0 is a rising curve. Their
# Janoschek and exp4 curves are Weibull's, parametrised otherwise. Time scales are fractions of
# the horizon T (the epoch to predict), so one grid of shapes suits curves of any length.


def _pow3(t, horizon, alpha):  # c - a t^-alpha
    return t**-alpha


def _ilog2(t, horizon):  # c - a / log(t + 1)
    return 1 / np.log(t + 1)


def _weibull(t, horizon, scale, delta):  # alpha - (alpha - beta) exp(-(kappa t)^delta)
    return np.exp(-((t / (scale * horizon)) ** delta))


def _mmf(t, horizon, scale, delta):  # MMF: alpha - (alpha - beta) / (1 + (kappa t)^delta)
    return 1 / (1 + (t / (scale * horizon)) ** delta)


_SCALES = np.geomspace(0.05, 4.0, 14)  # in horizons
CURVE_FAMILIES = {  # name -> (g, grid of shape parameters)
    "pow3": (_pow3, [(alpha,) for alpha in np.geomspace(0.05, 4.0, 20)]),
    "ilog2": (_ilog2, [()]),
    "weibull": (_weibull, [(s, d) for s in _SCALES for d in (0.5, 0.75, 1, 1.5, 2, 3)]),
    "mmf": (_mmf, [(s, d) for s in _SCALES for d in (0.5, 1, 1.5, 2, 3, 4)]),
}


@functools.lru_cache(maxsize=8)
def _curve_basis(horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """g of every (family, shape) at epochs 1..horizon (components x horizon), the components'
    log prior (uniform over families, then over each family's grid), and their family's index
    in ``CURVE_FAMILIES``."""
    t = np.arange(1, horizon + 1, dtype=float)
    basis, log_prior, family = [], [], []
    for i, (g, grid) in enumerate(CURVE_FAMILIES.values()):
        for shape in grid:
            basis.append(g(t, horizon, *shape))
            log_prior.append(-np.log(len(CURVE_FAMILIES) * len(grid)))
            family.append(i)
    return np.array(basis), np.array(log_prior), np.array(family)


@dataclass(frozen=True)
class CurveForecast:
    """The posterior of a learning curve given its first epochs: weighted samples of the curve
    at epochs 1..horizon (the noise-free f(t)), and the noise of one observed accuracy."""

    curves: np.ndarray  # samples x horizon
    weights: np.ndarray  # one per sample, summing to 1 (empty: no curve of the prior fits)
    noise: float
    family_weights: dict[str, float]

    @property
    def horizon(self) -> int:
        return self.curves.shape[1]

    def mean(self) -> float:
        """E[y_T]: the expected accuracy at the horizon."""
        return float(self.weights @ self.curves[:, -1]) if len(self.weights) else float("nan")

    def prob_above(self, y: float) -> float:
        """P(y_T > y | the curve so far) = E_posterior[1 - Phi((y - f(T)) / sigma)], Domhan et
        al.'s probability that the final accuracy beats ``y`` (nan when no curve fits)."""
        if not len(self.weights):
            return float("nan")
        return float(self.weights @ special.ndtr((self.curves[:, -1] - y) / self.noise))

    def band(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """The central ``level`` interval of f(t) at each epoch: weighted posterior quantiles."""
        if not len(self.weights):
            return np.full(self.horizon, np.nan), np.full(self.horizon, np.nan)
        order = np.argsort(self.curves, axis=0)  # each epoch's samples, low to high
        cdf = np.cumsum(self.weights[order], axis=0)
        epochs = np.arange(self.horizon)
        low, high = (
            self.curves[order[np.minimum((cdf < q).sum(axis=0), len(cdf) - 1), epochs], epochs]
            for q in ((1 - level) / 2, (1 + level) / 2)
        )
        return low, high


def extrapolate(
    curve: Sequence[float],
    horizon: int,
    noise: float = 0.01,
    draws: int = 16,
    seed: int | np.random.Generator = 0,
) -> CurveForecast:
    """Extrapolate a learning curve (accuracies in [0, 1] at epochs 1, 2, ...) to ``horizon``.

    After Domhan, Springenberg & Hutter, "Speeding up Automatic Hyperparameter Optimization of
    Deep Neural Networks by Extrapolation of Learning Curves", IJCAI 2015: the observed
    accuracies are y_t = f(t) + eps, eps ~ N(0, sigma^2), with f from an ensemble of parametric
    families (``CURVE_FAMILIES``: pow3, ilog2, Weibull, MMF) and a prior that allows only curves
    that rise and end in [0, 1]. Here that prior is uniform on 0 <= f(1) <= f(T) <= 1 for every
    shape, so it does not depend on how a family is parametrised. The forecast's ``prob_above``
    is the paper's P(y_T > y) = E_posterior[1 - Phi((y - f(T)) / sigma)].

    What differs from the paper, and why. The families are averaged (Bayesian model averaging,
    the ``curve_model`` ensemble of the authors' code) instead of combined with sampled weights;
    their shape parameters lie on a grid; and sigma = ``noise`` is given, not inferred (0.01:
    about the standard error of an accuracy near 95% on a few hundred validation images). Then
    each shape's posterior in (c, a) is a Gaussian (linear least squares) truncated to the
    prior's region, and each shape weighs its evidence; a seeded Monte Carlo of ``draws``
    samples per shape measures the truncation, where the paper runs MCMC (emcee) over every
    parameter. That is exact up to the grid and the draws, and fast enough to run inside
    thousands of simulated searches. On the 4-epoch digits table a curve has at most 3 points,
    fewer than most of the paper's families have parameters, and none to infer sigma from: the
    prior does much of the work there, and lesson 02 measures how well it does.
    Needs at least 2 epochs (two points fix an offset and an amplitude)."""
    y = np.asarray(curve, dtype=float)
    if y.ndim != 1 or len(y) < 2:
        raise ValueError(
            f"extrapolate needs a 1-D learning curve of at least 2 epochs (two points fix an "
            f"offset and an amplitude), got shape {y.shape}"
        )
    if not (np.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()):
        raise ValueError(
            "extrapolate reads accuracies in [0, 1]; divide percentages by 100 and drop NaNs"
        )
    if not (is_int(horizon) and horizon >= len(y)):
        raise ValueError(
            f"horizon must be an integer epoch >= the {len(y)} epochs seen, got {horizon!r}"
        )
    if not (isinstance(noise, Real) and noise > 0):
        raise ValueError(f"noise must be a positive standard deviation, got {noise!r}")
    if not (is_int(draws) and draws >= 1):
        raise ValueError(f"draws must be an integer >= 1 (samples per shape), got {draws!r}")
    rng = as_rng(seed)
    basis, log_prior, family = _curve_basis(int(horizon))
    n, g = len(y), basis[:, : len(y)]
    # Least squares per shape, centred so that the offset and the amplitude are independent:
    # y_t = b - a (g(t) - mean g) + eps, with b = c - a mean(g).
    g_mean = g.mean(axis=1)
    gc = g - g_mean[:, None]
    sgg = (gc**2).sum(axis=1)
    usable = (sgg > 0) & (basis[:, 0] > basis[:, -1])  # a shape flat to float precision: none
    sgg = np.where(usable, sgg, 1.0)
    a_hat = -(gc @ (y - y.mean())) / sgg
    rss = (((y - y.mean())[None, :] + a_hat[:, None] * gc) ** 2).sum(axis=1)
    # log evidence, up to a constant shared by all shapes: prior x Gaussian integral x the
    # density of the uniform prior in (c, a) (its Jacobian g(1) - g(T)); times P(in region) below
    rise = np.where(usable, basis[:, 0] - basis[:, -1], 1.0)
    log_w = log_prior + np.log(rise) - 0.5 * np.log(sgg) - rss / (2 * noise**2)
    log_w = np.where(usable, log_w, -np.inf)
    z = rng.standard_normal((2, len(basis), draws))
    b = y.mean() + noise / np.sqrt(n) * z[0]
    a = a_hat[:, None] + noise / np.sqrt(sgg)[:, None] * z[1]
    c = b + a * g_mean[:, None]  # f(t) = c - a g(t)
    f_first = c - a * basis[:, :1]
    f_last = c - a * basis[:, -1:]
    inside = (f_first >= 0) & (f_first <= f_last) & (f_last <= 1)
    weights = np.exp(log_w - log_w.max())[:, None] * inside
    k, m = np.nonzero(weights)
    weights = weights[k, m] / weights.sum() if len(k) else np.zeros(0)
    curves = c[k, m, None] - a[k, m, None] * basis[k]
    per_family = np.bincount(family[k], weights=weights, minlength=len(CURVE_FAMILIES))
    family_weights = dict(zip(CURVE_FAMILIES, per_family.tolist(), strict=True))
    return CurveForecast(curves, weights, float(noise), family_weights)


def should_stop_extrapolated(
    curve: Sequence[float],
    incumbent_val_acc: float | None,
    horizon: int,
    delta: float = 0.05,
    noise: float = 0.01,
    draws: int = 16,
    seed: int | np.random.Generator = 0,
) -> bool:
    """Domhan et al.'s (IJCAI 2015) stopping rule: stop a training when the probability that its
    accuracy at ``horizon`` beats the incumbent's, P(y_T > y_best | curve so far), is below
    ``delta`` (0.05, as in the authors' code). As in the authors' code, a curve is never
    stopped without an incumbent, when it has already beaten the incumbent, or when no curve of
    the ensemble fits it (their "failed fitting: not cancelling"); and, here, before 2 epochs."""
    if not 0 < delta < 1:
        raise ValueError(f"delta must be a probability in (0, 1), got {delta!r}")
    if incumbent_val_acc is None or len(curve) < 2 or max(curve) > incumbent_val_acc:
        return False
    p = extrapolate(curve, horizon, noise, draws, seed).prob_above(incumbent_val_acc)
    return bool(p < delta)  # nan (nothing fits) compares False: go on
