"""Bayesian optimisation over cells with a Gaussian process written out (lesson 05).

A Gaussian process (GP) is a prior over functions f(cell); after some cells have been trained, its
posterior says, for any untried cell, what accuracy to expect (mean mu) and how unsure that is
(standard deviation sigma). An acquisition function turns (mu, sigma) into "how much is this cell
worth trying next", trading exploitation (high mu) against exploration (high sigma). The file
reads top to bottom:

1. the kernel: how alike two cells are (an exponential of their Hamming distance);
2. the GP: posterior mean and variance by Cholesky (Rasmussen & Williams, "Gaussian Processes for
   Machine Learning", MIT Press 2006, Algorithm 2.1), its log marginal likelihood, and
   hyperparameters chosen by maximising it over a small grid (ibid., Section 5.4);
3. acquisition functions: expected improvement (Mockus 1978; Jones, Schonlau & Welch, J. Global
   Optimization 1998) and the upper confidence bound (Srinivas, Krause, Kakade & Seeger, ICML 2010);
4. ``BayesOpt``: the ask-and-tell strategy, maximising the acquisition over random cells plus
   mutations of the best cells seen.

Everything is numpy and scipy: a GP on a few hundred points is a few small matrix factorisations.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import linalg, stats
from threadpoolctl import ThreadpoolController  # installed with scikit-learn

from nas_lab.bench import Result
from nas_lab.spaces import as_rng, nb201

# --------------------------------------------------------------------------------------------
# 1. The kernel
# --------------------------------------------------------------------------------------------
# A cell is 6 categorical choices. We encode it as its 6 operation numbers and compare two cells
# by their Hamming distance d (how many edges carry different operations). The kernel
#
#     k(x, x') = variance * exp(-d(x, x') / lengthscale)
#
# is the squared-exponential kernel on the one-hot encoding in disguise: two one-hot vectors that
# differ on d edges are at squared Euclidean distance 2d, so exp(-|x - x'|^2 / (2 l^2)) =
# exp(-d / l^2). It is therefore positive definite, and it is also a product over edges of
# exp(-[x_e != x'_e] / lengthscale), the categorical kernel used by COMBO (Oh et al., NeurIPS
# 2019) and in "BO for NAS" baselines (White et al., AAAI 2021). One length-scale: the
# cell's edges are treated alike; per-edge length-scales (ARD) would be the next step.


def encode(cell: nb201.Cell | str) -> np.ndarray:
    """A cell as its 6 operation numbers (positions in ``nb201.OPS``), in ``EDGES`` order."""
    return np.array([nb201.OPS.index(op) for op in nb201.as_cell(cell).ops], dtype=np.int64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between the rows of ``a`` (n, d) and ``b`` (m, d): (n, m).

    Computed as d minus the number of agreeing positions, which is one matrix product of the
    one-hot encodings: far faster than comparing every pair of rows element by element."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"encodings differ in length: {a.shape[1]} and {b.shape[1]}")
    categories = int(max(a.max(), b.max())) + 1
    onehot_a = np.eye(categories)[a].reshape(len(a), -1)
    onehot_b = np.eye(categories)[b].reshape(len(b), -1)
    return a.shape[1] - onehot_a @ onehot_b.T


def hamming_kernel(
    a: np.ndarray, b: np.ndarray, lengthscale: float, variance: float = 1.0
) -> np.ndarray:
    """k(x, x') = variance * exp(-hamming(x, x') / lengthscale) for all pairs of rows."""
    return variance * np.exp(-hamming(a, b) / lengthscale)


# --------------------------------------------------------------------------------------------
# 2. The Gaussian process (Rasmussen & Williams 2006, Algorithm 2.1)
# --------------------------------------------------------------------------------------------

LENGTHSCALES = (0.5, 1.0, 2.0, 4.0, 8.0)
NOISES = (1e-4, 1e-3, 1e-2, 1e-1)


class GaussianProcess:
    """A zero-mean GP with the Hamming kernel and Gaussian observation noise.

    With K = k(X, X) + noise * I = L L^T (Cholesky) and alpha = L^T \\ (L \\ y), the posterior
    at test inputs X* (R&W eq. 2.25-2.26, Algorithm 2.1) is

        mean     mu(x*)      = k*^T alpha
        variance sigma^2(x*) = k(x*, x*) - v^T v,   v = L \\ k*

    and the log marginal likelihood of the data is

        log p(y | X) = -1/2 y^T alpha - sum_i log L_ii - n/2 log(2 pi)     (R&W eq. 2.30)

    Give the targets zero mean yourself (``BayesOpt`` standardises them)."""

    def __init__(self, lengthscale: float = 1.0, noise: float = 1e-3, variance: float = 1.0):
        if not (lengthscale > 0 and noise > 0 and variance > 0):
            raise ValueError(
                "lengthscale, noise and variance must all be positive (noise > 0 keeps the "
                f"Cholesky factorisation stable), got {lengthscale}, {noise}, {variance}"
            )
        self.lengthscale, self.noise, self.variance = lengthscale, noise, variance

    def kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return hamming_kernel(a, b, self.lengthscale, self.variance)

    def fit(self, X: np.ndarray, y: np.ndarray) -> GaussianProcess:
        """Condition on observations: rows of X (encodings) and their targets y."""
        X, y = np.atleast_2d(np.asarray(X)), np.asarray(y, dtype=np.float64).reshape(-1)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} values; give one per row")
        if len(y) == 0:
            raise ValueError("a GP needs at least one observation to condition on")
        self.X, self.y = X, y
        self.L, self.alpha = _factorise(self.kernel(X, X), self.noise, y)
        return self

    def predict(self, X_star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of f (not of a noisy observation) at each row of X*."""
        if not hasattr(self, "L"):
            raise RuntimeError("call fit(X, y) before predict(X_star)")
        K_star = self.kernel(self.X, np.atleast_2d(X_star))  # (n, m)
        prior = np.full(K_star.shape[1], self.variance)  # k(x*, x*) = variance for this kernel
        return _posterior(self.L, self.alpha, K_star, prior)

    def log_marginal_likelihood(self) -> float:
        """log p(y | X, hyperparameters) for the data last given to ``fit`` (R&W eq. 2.30)."""
        return _log_marginal_likelihood(self.L, self.alpha, self.y)

    @classmethod
    def fit_marginal_likelihood(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        lengthscales: tuple[float, ...] = LENGTHSCALES,
        noises: tuple[float, ...] = NOISES,
        variance: float = 1.0,
    ) -> GaussianProcess:
        """The GP whose (lengthscale, noise) on the grid maximise the log marginal likelihood
        (type-II maximum likelihood, R&W Section 5.4.1), fitted to (X, y). A grid, not a
        gradient method: 20 small Cholesky factorisations, deterministic, and enough for two
        hyperparameters. The distances are computed once for the whole grid. Ties go to the
        first grid point."""
        X, y = np.atleast_2d(np.asarray(X)), np.asarray(y, dtype=np.float64).reshape(-1)
        distances = hamming(X, X)
        best, best_lml = (lengthscales[0], noises[0]), -np.inf
        for lengthscale in lengthscales:
            K = variance * np.exp(-distances / lengthscale)
            for noise in noises:
                lml = _log_marginal_likelihood(*_factorise(K, noise, y), y)
                if lml > best_lml:
                    best, best_lml = (lengthscale, noise), lml
        return cls(*best, variance=variance).fit(X, y)


def _factorise(K: np.ndarray, noise: float, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 2.1, lines 2-3: L = cholesky(K + noise I), alpha = L^T \\ (L \\ y)."""
    L = linalg.cholesky(K + noise * np.eye(len(K)), lower=True)
    return L, linalg.cho_solve((L, True), y)


def _posterior(
    L: np.ndarray, alpha: np.ndarray, K_star: np.ndarray, prior_variance: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 2.1, lines 4-6: mean = K*^T alpha, variance = k(x*, x*) - v^T v, v = L \\ K*."""
    mean = K_star.T @ alpha
    v = linalg.solve_triangular(L, K_star, lower=True)
    variance = prior_variance - (v * v).sum(axis=0)
    return mean, np.maximum(variance, 0.0)  # round-off can dip just below zero


def posterior(
    K: np.ndarray, K_star: np.ndarray, prior_variance: np.ndarray, y: np.ndarray, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """The GP posterior mean and variance of f at m test points, from kernel matrices alone
    (Rasmussen & Williams 2006, eq. 2.25-2.26, computed as in Algorithm 2.1), for any kernel:

        mean     = K*^T (K + noise I)^-1 y
        variance = diag(K**) - diag(K*^T (K + noise I)^-1 K*)

    ``K`` is k(X, X) (n, n), ``K_star`` is k(X, X*) (n, m), ``prior_variance`` the m values
    k(x*, x*), ``y`` the n (zero-mean) targets and ``noise`` > 0 the observation noise variance.
    ``GaussianProcess`` does the same with the Hamming kernel and its Cholesky factor kept."""
    K, K_star = np.atleast_2d(K), np.asarray(K_star, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    prior_variance = np.asarray(prior_variance, dtype=np.float64).reshape(-1)
    n = len(y)
    if K.shape != (n, n) or K_star.ndim != 2 or len(K_star) != n:
        raise ValueError(
            f"shapes disagree: K {K.shape} must be (n, n) and K_star {K_star.shape} (n, m) for "
            f"the n = {n} targets in y"
        )
    if len(prior_variance) != K_star.shape[1]:
        raise ValueError(
            f"prior_variance has {len(prior_variance)} values but K_star has {K_star.shape[1]} "
            "test points (columns); give k(x*, x*) for each"
        )
    if not noise > 0:
        raise ValueError(f"noise must be > 0 (it keeps the Cholesky factorisation stable): {noise}")
    return _posterior(*_factorise(K, noise, y), K_star, prior_variance)


def _log_marginal_likelihood(L: np.ndarray, alpha: np.ndarray, y: np.ndarray) -> float:
    """Algorithm 2.1, line 8: -1/2 y^T alpha - sum_i log L_ii - n/2 log 2 pi."""
    return float(-0.5 * y @ alpha - np.log(np.diag(L)).sum() - 0.5 * len(y) * np.log(2 * np.pi))


class GPPredictor:
    """The GP as a performance predictor, with the interface of ``predictors.Predictor``
    (``fit(cells, scores)``, ``predict``, ``predict_with_std``), so that lesson 05 can set it
    beside the neural predictors. Targets are standardised before fitting and predictions
    returned in the original units; hyperparameters by marginal likelihood, as in ``BayesOpt``."""

    def __init__(self, seed: int | np.random.Generator = 0) -> None:
        self.gp: GaussianProcess | None = None  # deterministic: ``seed`` is for the interface

    def fit(self, cells, scores) -> GPPredictor:
        y = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(cells) != len(y) or len(y) < 1:
            raise ValueError(f"fit needs one score per cell, got {len(cells)} and {len(y)}")
        self.mean, self.scale = float(y.mean()), float(y.std()) or 1.0
        X = np.stack([encode(c) for c in cells])
        with _blas().limit(limits=1, user_api="blas"):  # small matrices: see ``BayesOpt.ask``
            self.gp = GaussianProcess.fit_marginal_likelihood(X, (y - self.mean) / self.scale)
        return self

    def predict_with_std(self, cells) -> tuple[np.ndarray, np.ndarray]:
        if self.gp is None:
            raise RuntimeError("call fit(cells, scores) before predicting")
        with _blas().limit(limits=1, user_api="blas"):
            mu, var = self.gp.predict(np.stack([encode(c) for c in cells]))
        return mu * self.scale + self.mean, np.sqrt(var) * self.scale

    def predict(self, cells) -> np.ndarray:
        return self.predict_with_std(cells)[0]


# --------------------------------------------------------------------------------------------
# 3. Acquisition functions (we maximise accuracy)
# --------------------------------------------------------------------------------------------


def expected_improvement(
    mu: np.ndarray, sigma: np.ndarray, best: float, xi: float = 0.0
) -> np.ndarray:
    """EI(x) = E[max(f(x) - best - xi, 0)] for f(x) ~ N(mu, sigma^2) (Mockus 1978; Jones et al.
    1998, eq. 15):

        EI = (mu - best - xi) * Phi(z) + sigma * phi(z),   z = (mu - best - xi) / sigma

    and max(mu - best - xi, 0) where sigma = 0. ``xi`` >= 0 asks for a margin of improvement."""
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    if np.any(sigma < 0):
        raise ValueError("sigma is a standard deviation and must be >= 0 (pass sqrt(variance))")
    gain = mu - best - xi
    safe = np.where(sigma > 0, sigma, 1.0)
    z = gain / safe
    ei = gain * stats.norm.cdf(z) + sigma * stats.norm.pdf(z)
    return np.where(sigma > 0, ei, np.maximum(gain, 0.0))


def ucb(mu: np.ndarray, sigma: np.ndarray, beta: float) -> np.ndarray:
    """GP-UCB: mu + sqrt(beta) * sigma (Srinivas et al., ICML 2010, eq. 6: the bound
    mu_{t-1}(x) + beta_t^{1/2} sigma_{t-1}(x))."""
    if beta < 0:
        raise ValueError(f"beta weighs the standard deviation and must be >= 0, got {beta}")
    return np.asarray(mu) + np.sqrt(beta) * np.asarray(sigma)


def gp_ucb_beta(t: int, domain_size: int, delta: float) -> float:
    """The exploration weight of GP-UCB's round ``t`` (1, 2, ...) for a finite domain D
    (Srinivas et al., ICML 2010, Theorem 1):

        beta_t = 2 log(|D| t^2 pi^2 / (6 delta))

    With this schedule the cumulative regret is below sqrt(C_1 T beta_T gamma_T) for every T at
    once, with probability at least 1 - ``delta``. Round t chooses x_t with the posterior of
    the t - 1 observations before it."""
    if isinstance(t, bool) or int(t) != t or t < 1:
        raise ValueError(f"t counts rounds from 1, got {t!r}")
    if isinstance(domain_size, bool) or int(domain_size) != domain_size or domain_size < 1:
        raise ValueError(f"domain_size is |D|, the number of candidates, got {domain_size!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta is the theorem's failure probability, in (0, 1): {delta!r}")
    return 2.0 * math.log(domain_size * t**2 * math.pi**2 / (6.0 * delta))


ACQUISITIONS = ("ei", "ucb")


# --------------------------------------------------------------------------------------------
# 4. The strategy
# --------------------------------------------------------------------------------------------


def candidates(
    rng: np.random.Generator,
    observed: list[tuple[nb201.Cell, float]],
    n_random: int,
    n_mutations: int,
    top: int = 5,
) -> list[nb201.Cell]:
    """Cells to score with the acquisition: ``n_random`` uniform samples plus ``n_mutations``
    mutations (one or two edges changed) of the ``top`` best observed cells, as canonical
    representatives, without duplicates and without cells already observed."""
    seen = {cell for cell, _ in observed}
    parents = [cell for cell, _ in sorted(observed, key=lambda cv: -cv[1])[:top]]
    pool: list[nb201.Cell] = [nb201.sample(rng) for _ in range(n_random)]
    for i in range(n_mutations if parents else 0):
        child = nb201.mutate(parents[i % len(parents)], rng)
        pool.append(nb201.mutate(child, rng) if rng.random() < 0.5 else child)
    unique = dict.fromkeys(c.canonical() for c in pool)  # keeps first-seen order: deterministic
    return [c for c in unique if c not in seen]


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    """The BLAS libraries numpy and scipy loaded (found once: the search takes milliseconds)."""
    return ThreadpoolController()


# GP-UCB with Theorem 1's schedule for beta_t (Srinivas et al., ICML 2010), as keyword
# arguments: ``BayesOpt(**PAPER)``. D is the domain the GP chooses from: here the 6,466
# isomorphism classes of the cell (``nb201.unique_cells``), the default ``domain_size``.
PAPER = {
    "acquisition": "ucb",  # eq. 6: x_t = argmax mu_{t-1}(x) + sqrt(beta_t) sigma_{t-1}(x)
    "delta": 0.1,  # Theorem 1 holds for any delta in (0, 1); 0.1 asks for 90% confidence
}


class BayesOpt:
    """Bayesian optimisation of the validation accuracy with the GP above.

    The first ``n_init`` asks are uniform samples. Afterwards each ask standardises the
    accuracies seen so far, fits the GP's length-scale and noise by marginal likelihood, scores
    ``n_candidates`` candidates (half random, half mutations of the best cells) with the
    acquisition, and proposes the best. Cells are handled as canonical representatives, so two
    strings of one architecture are one observation and never asked twice.

    UCB weighs sigma by sqrt(beta): a fixed ``beta`` (4 by default: mu plus two standard
    deviations), or, when ``delta`` is given, Srinivas et al.'s schedule beta_t of Theorem 1
    (``gp_ucb_beta``) for a domain of ``domain_size`` cells (default: the 6,466 classes), with
    t the round, one more than the number of observations. ``BayesOpt(**bayesopt.PAPER)`` uses
    it with delta = 0.1: beta_t is 32.7 at the first GP round (t = 11) and 41.6 at t = 100, so
    sigma weighs 2.9 to 3.2 times what it weighs at beta = 4. The course keeps the fixed
    two-sigma bound as its default: the schedule is what the proof of the regret bound needs,
    to hold with probability 1 - delta in every round at once, not a value tuned for a search
    of 100 trainings; and lesson 05 compares the fixed bound with expected improvement.
    ``betas`` records the beta of every UCB proposal.
    """

    def __init__(
        self,
        seed: int | np.random.Generator = 0,
        acquisition: str = "ei",
        n_init: int = 10,
        n_candidates: int = 200,
        beta: float = 4.0,
        xi: float = 0.0,
        delta: float | None = None,
        domain_size: int | None = None,
    ) -> None:
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")
        if n_init < 1:
            raise ValueError(f"n_init must be >= 1 (the GP needs data to start), got {n_init}")
        if n_candidates < 2:
            raise ValueError(f"n_candidates must be >= 2, got {n_candidates}")
        self.rng = as_rng(seed)
        self.acquisition, self.n_init, self.n_candidates = acquisition, n_init, n_candidates
        self.beta, self.xi, self.delta = beta, xi, delta
        self.domain_size = domain_size
        if delta is not None:
            if domain_size is None:  # the classes the GP chooses among
                self.domain_size = len(nb201.unique_cells())
            gp_ucb_beta(1, self.domain_size, delta)  # checks delta and domain_size now
        self.betas: list[float] = []  # the beta of each UCB proposal, in order
        self.observed: list[tuple[nb201.Cell, float]] = []  # (canonical cell, val acc)
        self.gp: GaussianProcess | None = None

    def beta_at(self, t: int) -> float:
        """UCB's beta in round ``t``: the fixed ``beta``, or Theorem 1's beta_t given ``delta``."""
        if self.delta is None:
            return self.beta
        return gp_ucb_beta(t, self.domain_size, self.delta)

    def ask(self) -> nb201.Cell:
        if len(self.observed) < self.n_init:
            return self._random_unseen()
        # Matrices of a few hundred rows factorise fastest on one core: more BLAS threads only
        # add synchronisation, and on a busy machine they wait for each other (10x slower).
        with _blas().limit(limits=1, user_api="blas"):
            return self._propose()

    def _propose(self) -> nb201.Cell:
        """Fit the GP to the standardised accuracies; the candidate of highest acquisition."""
        n_random = self.n_candidates // 2
        pool = candidates(self.rng, self.observed, n_random, self.n_candidates - n_random)
        if not pool:
            return self._random_unseen()
        cells, acc = zip(*self.observed, strict=True)
        y = np.asarray(acc)
        mean, scale = y.mean(), y.std() if y.std() > 0 else 1.0
        X = np.stack([encode(c) for c in cells])
        self.gp = GaussianProcess.fit_marginal_likelihood(X, (y - mean) / scale)
        mu, var = self.gp.predict(np.stack([encode(c) for c in pool]))
        sigma = np.sqrt(var)
        if self.acquisition == "ei":
            score = expected_improvement(mu, sigma, best=(y.max() - mean) / scale, xi=self.xi)
        else:
            self.betas.append(self.beta_at(len(self.observed) + 1))
            score = ucb(mu, sigma, self.betas[-1])
        return pool[int(np.argmax(score))]

    def _random_unseen(self) -> nb201.Cell:
        """A uniform sample whose class has not been observed (any sample after 100 tries)."""
        seen = {cell for cell, _ in self.observed}
        for _ in range(100):
            cell = nb201.sample(self.rng).canonical()
            if cell not in seen:
                break
        return cell

    def tell(self, cell: nb201.Cell, result: Result) -> None:
        self.observed.append((nb201.as_cell(cell).canonical(), float(result.val_acc)))
