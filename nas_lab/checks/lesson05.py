"""Checks for lesson 05 (Bayesian optimisation and performance predictors)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from nas_lab.checks import Reason, close, exercise, show
from nas_lab.strategies import bayesopt

# ---- 05.1: the Hamming kernel on cells -----------------------------------------------------


def hamming_kernel(a: np.ndarray, b: np.ndarray, lengthscale: float) -> np.ndarray:
    """k(x, x') = exp(-d(x, x') / lengthscale), d the number of edges whose operations differ."""
    return bayesopt.hamming_kernel(np.asarray(a), np.asarray(b), lengthscale)


def _encodings(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for lengthscale in (0.5, 2.0, 3.0, 1.5):
        n, m = int(rng.integers(2, 7)), int(rng.integers(2, 7))
        a = rng.integers(0, 5, size=(n, 6))
        b = rng.integers(0, 5, size=(m, 6))
        b[0] = a[0]  # one identical pair: k = 1 there
        cases.append((a, b, lengthscale))
    return cases


def _agreements_not_distance(a, b, lengthscale):  # counts the edges that agree
    same = (np.asarray(a)[:, None, :] == np.asarray(b)[None, :, :]).sum(-1)
    return np.exp(-same / lengthscale)


def _lengthscale_multiplies(a, b, lengthscale):
    d = (np.asarray(a)[:, None, :] != np.asarray(b)[None, :, :]).sum(-1)
    return np.exp(-d * lengthscale)


exercise(
    "05.1",
    title="the Hamming kernel",
    points=1,
    inputs=_encodings,
    compare=close,
    wrong=[_agreements_not_distance, _lengthscale_multiplies],
)(hamming_kernel)

# ---- 05.2: expected improvement in closed form ---------------------------------------------


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float) -> np.ndarray:
    """EI = (mu - best) Phi(z) + sigma phi(z), z = (mu - best) / sigma (Jones et al. 1998)."""
    return bayesopt.expected_improvement(mu, sigma, best)


def _beliefs(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(5):
        n = int(rng.integers(4, 10))
        mu = rng.uniform(0.80, 0.98, size=n)
        sigma = rng.uniform(0.002, 0.05, size=n)
        cases.append((mu, sigma, float(rng.uniform(0.88, 0.96))))
    return cases


def _without_exploration(mu, sigma, best):  # drops sigma * phi(z): no value in uncertainty
    z = (mu - best) / sigma
    return (mu - best) * stats.norm.cdf(z)


def _minimising_sign(mu, sigma, best):  # EI for a loss to minimise, not an accuracy
    z = (best - mu) / sigma
    return (best - mu) * stats.norm.cdf(z) + sigma * stats.norm.pdf(z)


exercise(
    "05.2",
    title="expected improvement",
    points=2,
    inputs=_beliefs,
    compare=close,
    wrong=[_without_exploration, _minimising_sign],
)(expected_improvement)

# ---- 05.3: the GP posterior from kernel matrices -------------------------------------------


def gp_posterior(
    K: np.ndarray, K_star: np.ndarray, prior_variance: np.ndarray, y: np.ndarray, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and variance of f at the test points (Rasmussen & Williams 2006,
    eq. 2.25-2.26): K*^T (K + noise I)^-1 y and k(x*, x*) - diag(K*^T (K + noise I)^-1 K*)."""
    return bayesopt.posterior(K, K_star, prior_variance, y, noise)


def _gp_problems(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(4):
        n, m = int(rng.integers(4, 12)), int(rng.integers(2, 6))
        X, Xs = rng.integers(0, 5, size=(n, 6)), rng.integers(0, 5, size=(m, 6))
        lengthscale, variance = float(rng.uniform(0.7, 3.0)), float(rng.uniform(0.5, 2.0))
        K = bayesopt.hamming_kernel(X, X, lengthscale, variance)
        K_star = bayesopt.hamming_kernel(X, Xs, lengthscale, variance)
        y = rng.normal(size=n)
        cases.append((K, K_star, np.full(m, variance), y, float(rng.uniform(0.1, 0.5))))
    return cases


def _noise_forgotten(K, K_star, prior_variance, y, noise):  # interpolates the noisy targets
    inverse = np.linalg.pinv(K)
    return K_star.T @ inverse @ y, prior_variance - np.diag(K_star.T @ inverse @ K_star)


def _variance_without_subtraction(K, K_star, prior_variance, y, noise):  # the explained part
    inverse = np.linalg.inv(K + noise * np.eye(len(K)))
    return K_star.T @ inverse @ y, np.diag(K_star.T @ inverse @ K_star)


def _mean_and_variance(expected, got) -> Reason:
    """Both parts compared, the reason saying which one is wrong."""
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"expected a pair (mean, variance), got {show(got)}"
    for name, want, have in zip(("mean", "variance"), expected, got, strict=True):
        reason = close(want, have, rtol=1e-5, atol=1e-8)
        if reason is not None:
            return f"the {name} is wrong: {reason}"
    return None


exercise(
    "05.3",
    title="the GP posterior",
    points=3,
    inputs=_gp_problems,
    compare=_mean_and_variance,
    wrong=[_noise_forgotten, _variance_without_subtraction],
)(gp_posterior)
