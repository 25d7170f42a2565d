"""Model-based strategies (lessons 03 and 05): REINFORCE with an LSTM controller, Bayesian
optimisation with a Gaussian process, performance predictors and BANANAS.

The maths is checked against closed forms (a 2-point GP by hand, a direct matrix inverse, EI as a
numeric integral, the policy gradient by finite differences); the searches run on synthetic
tables whose best cell is known, against random search at equal budget over seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from nas_lab.bench import Benchmark, Result
from nas_lab.spaces import nb201
from nas_lab.strategies import run
from nas_lab.strategies.bayesopt import (
    BayesOpt,
    GaussianProcess,
    GPPredictor,
    encode,
    expected_improvement,
    hamming,
    posterior,
    ucb,
)
from nas_lab.strategies.predictors import (
    Bananas,
    GCNPredictor,
    MLPPredictor,
    rank_learning_curve,
)
from nas_lab.strategies.reinforce import Controller, Reinforce, reinforce_loss

torch.set_num_threads(1)  # tiny models: one thread is fastest on this machine

CELLS = nb201.unique_cells()
CODES = np.stack([encode(c) for c in CELLS])  # (6466, 6) operation numbers
TIME = 100.0  # every cell costs the same simulated training time: equal budget = equal steps


# --------------------------------------------------------------------------------------------
# Synthetic landscapes: accuracy is a known function of the (representative) cell
# --------------------------------------------------------------------------------------------


def table(values: np.ndarray) -> Benchmark:
    """A benchmark whose every cell, on every seed and epoch, scores ``values`` (one per class)."""
    v = np.asarray(values, dtype=np.float64)
    u = len(CELLS)
    val = np.repeat(v[:, None, None], 2, axis=1).repeat(2, axis=2)
    arrays = {
        "archs": np.array([str(c) for c in CELLS]),
        "seeds": np.array([0, 1]),
        "val_acc": val.astype(np.float32),
        "train_loss": (1 - val).astype(np.float32),
        "test_acc": np.repeat(v[:, None], 2, axis=1),
        "train_time": np.full((u, 2), TIME),
        "params": np.zeros(u, dtype=np.int64),
        "flops": np.zeros(u, dtype=np.int64),
        "latency_ms_batch1": np.zeros(u),
        "latency_ms_train_batch": np.zeros(u),
    }
    return Benchmark(arrays, manifest={})


def separable_weights(seed: int = 0) -> tuple[np.ndarray, tuple[str, ...]]:
    """One weight per (edge, op); the best op of each edge is a convolution, so the best cell
    (all six best ops) is alone in its isomorphism class and the optimum is unique."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.0, 0.05, (6, 5))
    best = rng.integers(2, 4, 6)  # nor_conv_1x1 or nor_conv_3x3
    w[np.arange(6), best] = 0.07
    return w, tuple(nb201.OPS[b] for b in best)


def smooth_values(seed: int = 0) -> np.ndarray:
    """Separable per-edge effects plus small interactions between neighbouring edges."""
    w, _ = separable_weights(seed)
    pair = np.random.default_rng(seed + 1).normal(0.0, 0.01, (6, 5, 5))
    edges = np.arange(6)
    v = 0.5 + w[edges, CODES].sum(axis=1)
    return v + sum(pair[e, CODES[:, e], CODES[:, (e + 1) % 6]] for e in edges)


OP_VALUE = {"skip_connect": 0.3, "nor_conv_1x1": 0.6, "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.1}


def path_score(cell: nb201.Cell) -> float:
    """NAS-Bench-201-like: each input -> output route that carries a signal adds the mean value
    of its operations, a deeper route a little more; a cell with no route is at chance."""
    routes = nb201.paths(cell)
    if not routes:
        return 0.1
    s = sum(np.mean([OP_VALUE[op] for op in r]) * (1 + 0.2 * len(r)) for r in routes)
    return 0.3 + 0.1 * s


PATH_SCORES = np.array([path_score(c) for c in CELLS])


class RandomSearch:
    """The baseline: uniform samples (kept here so these tests stand on their own)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def ask(self) -> nb201.Cell:
        return nb201.sample(self.rng)

    def tell(self, cell, result) -> None:
        pass


def best_found(strategy, bench: Benchmark, steps: int, seed: int) -> float:
    """Best validation accuracy after ``steps`` queries (the budget pays for exactly that many;
    ``max_steps`` also stops a converged controller whose repeats cost nothing)."""
    clock = run(strategy, bench, budget=TIME * steps, seed=seed, max_steps=steps)
    return max(val for _, _, val, _ in clock.trajectory)


def beats_random(make, bench: Benchmark, steps: int, seeds: int) -> tuple[float, list, list]:
    """One-sided Mann-Whitney p-value that ``make(seed)`` finds better cells than random."""
    ours = [best_found(make(s), bench, steps, s) for s in range(seeds)]
    rand = [best_found(RandomSearch(s), bench, steps, s) for s in range(seeds)]
    return stats.mannwhitneyu(ours, rand, alternative="greater").pvalue, ours, rand


@pytest.fixture(scope="module")
def separable():
    w, best = separable_weights()
    return table(0.5 + w[np.arange(6), CODES].sum(axis=1)), best


@pytest.fixture(scope="module")
def smooth():
    return table(smooth_values())


@pytest.fixture(scope="module")
def pathland():
    return table(PATH_SCORES)


# --------------------------------------------------------------------------------------------
# REINFORCE
# --------------------------------------------------------------------------------------------


def test_reinforce_gradient_is_advantage_times_score_function():
    """autograd of eq. 2 (no entropy) = -(R - b) * d log pi / d theta, by finite differences,
    and for the last classifier's bias by the hand formula onehot(a_6) - softmax(logits_6)."""
    controller = Controller(hidden=4, seed=1).double()
    ops = ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none")
    reward, baseline = 0.83, 0.71
    log_prob, entropy = controller.evaluate(ops)
    reinforce_loss(log_prob, entropy, reward, baseline, entropy_weight=0.0).backward()

    rng = np.random.default_rng(0)
    params = dict(controller.named_parameters())
    for name in ["embed.weight", "lstm.weight_ih", "lstm.weight_hh", "heads.2.weight"]:
        p = params[name]
        for _ in range(3):
            i = tuple(int(rng.integers(n)) for n in p.shape)
            with torch.no_grad():
                p[i] += 1e-6
                up = float(controller.log_prob(ops))
                p[i] -= 2e-6
                down = float(controller.log_prob(ops))
                p[i] += 1e-6
            expected = -(reward - baseline) * (up - down) / 2e-6
            assert float(p.grad[i]) == pytest.approx(expected, rel=1e-5, abs=1e-9), name

    last = torch.tensor(controller.probabilities(ops)[-1])
    onehot = torch.zeros(5, dtype=torch.float64)
    onehot[nb201.OPS.index(ops[-1])] = 1.0
    hand = -(reward - baseline) * (onehot - last)
    assert torch.allclose(controller.heads[5].bias.grad, hand, atol=1e-12)
    # Edges 1..5 don't influence the last head's bias: only the last step's softmax does.
    assert controller.heads[5].bias.grad.abs().sum() > 0


def test_entropy_bonus_gradient_and_value():
    """The entropy in eq. 2 is the summed entropy of the 6 step distributions, and its weight
    enters the gradient as -beta * dH / d theta."""
    controller = Controller(hidden=4, seed=2).double()
    ops = ("skip_connect",) * 6
    log_prob, entropy = controller.evaluate(ops)
    table = controller.probabilities(ops)
    value = float(entropy.detach())
    assert value == pytest.approx(-(table * np.log(table)).sum(), rel=1e-10)
    assert float(log_prob.detach()) == pytest.approx(np.log(table[:, 1]).sum(), rel=1e-10)
    assert 0 < value <= 6 * np.log(5) + 1e-9

    loss_only = torch.autograd.grad(
        reinforce_loss(log_prob, entropy, 1.0, 0.5, 0.0),
        [controller.heads[0].bias],
        retain_graph=True,
    )[0]
    with_bonus = torch.autograd.grad(
        reinforce_loss(log_prob, entropy, 1.0, 0.5, 0.3),
        [controller.heads[0].bias],
        retain_graph=True,
    )[0]
    d_entropy = torch.autograd.grad(entropy, [controller.heads[0].bias])[0]
    assert torch.allclose(with_bonus - loss_only, -0.3 * d_entropy, atol=1e-12)


def test_controller_samples_follow_its_distribution():
    """Sampled log-probabilities equal a re-scoring of the sampled ops, and with a uniform
    policy (zero logits) every op is drawn about 1/5 of the time."""
    controller = Controller(hidden=8, seed=0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for head in controller.heads:
            head.weight.zero_()
            head.bias.zero_()
        counts = np.zeros(5)
        for _ in range(400):
            ops, log_prob, entropy = controller.sample(generator)
            assert float(log_prob) == pytest.approx(float(controller.log_prob(ops)), abs=1e-5)
            assert float(log_prob) == pytest.approx(6 * np.log(1 / 5), abs=1e-5)
            assert float(entropy) == pytest.approx(6 * np.log(5), abs=1e-5)
            counts += np.bincount([nb201.OPS.index(op) for op in ops], minlength=5)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_reinforce_same_seed_same_samples(separable):
    bench, _ = separable

    def trace(seed: int) -> list[str]:
        return [arch for _, arch, _, _ in run(Reinforce(seed=seed), bench, 1e9, 0, 30).trajectory]

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_reinforce_learns_the_separable_landscape_and_beats_random(separable):
    """The controller's probability of each edge's best op (given the best ops before it)
    rises from about 1/5, and the best cell found beats random search at equal budget."""
    bench, best_ops = separable
    best = [nb201.OPS.index(op) for op in best_ops]
    steps, seeds = 150, 10
    before, after, ours = [], [], []
    for seed in range(seeds):
        strategy = Reinforce(seed=seed)
        before.append(strategy.controller.probabilities(best_ops)[np.arange(6), best])
        ours.append(best_found(strategy, bench, steps, seed))
        after.append(strategy.controller.probabilities(best_ops)[np.arange(6), best])
    before, after = np.array(before), np.array(after)
    assert np.allclose(before, 0.2, atol=0.05)
    assert after.mean() > 0.5
    assert (after.mean(axis=0) > before.mean(axis=0) + 0.2).all()  # on every edge
    rand = [best_found(RandomSearch(s), bench, steps, s) for s in range(seeds)]
    assert stats.mannwhitneyu(ours, rand, alternative="greater").pvalue < 0.01


def test_reinforce_bad_input():
    with pytest.raises(ValueError, match="lr"):
        Reinforce(lr=0)
    with pytest.raises(ValueError, match="baseline_decay"):
        Reinforce(baseline_decay=1.0)
    with pytest.raises(ValueError, match="was not asked"):
        Reinforce(seed=0).tell(nb201.Cell(("nor_conv_3x3",) * 6), result(0.5))
    with pytest.raises(ValueError, match="unknown operation"):
        Controller().log_prob(("conv",) * 6)


def result(val_acc: float) -> Result:
    """A benchmark answer that only carries a validation accuracy."""
    return Result("", val_acc, None, 0.0, 0.0, 1, 0, 0, 0.0)


def test_reinforce_batches_updates():
    """With batch_size=4 the controller changes on every fourth tell, and only then."""
    strategy = Reinforce(seed=0, batch_size=4)
    for k in range(1, 9):
        before = strategy.controller.heads[0].bias.detach().clone()
        strategy.tell(strategy.ask(), result(0.1 * k))
        changed = not torch.equal(strategy.controller.heads[0].bias, before)
        assert changed == (k % 4 == 0), k


# --------------------------------------------------------------------------------------------
# Gaussian process and acquisition functions
# --------------------------------------------------------------------------------------------


def test_gp_posterior_two_points_by_hand():
    """x1, x2 one edge apart, y = (1, -1), k = exp(-d); at x* = x1, with k = k(x1, x2) = e^-1
    and noise s2: mean = (1 - k) / (1 + s2 - k), var = 1 - ((1 + s2) + (s2 - 1) k^2) /
    ((1 + s2)^2 - k^2); with no noise the posterior passes through the data."""
    X = np.array([[0, 0, 0], [0, 0, 1]])
    y = np.array([1.0, -1.0])
    k = np.exp(-1.0)
    for s2 in (1e-9, 0.1, 0.5):
        gp = GaussianProcess(lengthscale=1.0, noise=s2).fit(X, y)
        mean, var = gp.predict(X[:1])
        assert mean[0] == pytest.approx((1 - k) / (1 + s2 - k), rel=1e-6)
        hand_var = 1 - ((1 + s2) + (s2 - 1) * k**2) / ((1 + s2) ** 2 - k**2)
        assert var[0] == pytest.approx(hand_var, rel=1e-5, abs=1e-8)
    gp = GaussianProcess(lengthscale=1.0, noise=1e-9).fit(X, y)
    mean, var = gp.predict(X)
    assert mean == pytest.approx(y, abs=1e-6) and var == pytest.approx([0, 0], abs=1e-6)
    far_mean, far_var = gp.predict(np.array([[4, 4, 4]]))  # far away: back towards the prior
    assert abs(far_mean[0]) < 0.2 and far_var[0] > 0.9


def test_gp_matches_direct_inverse_and_likelihood():
    rng = np.random.default_rng(0)
    X, Xs = rng.integers(0, 5, (15, 6)), rng.integers(0, 5, (7, 6))
    y = rng.normal(size=15)
    gp = GaussianProcess(lengthscale=2.0, noise=0.05, variance=1.5).fit(X, y)
    mean, var = gp.predict(Xs)
    K = 1.5 * np.exp(-hamming(X, X) / 2.0) + 0.05 * np.eye(15)
    Ks, Kss = 1.5 * np.exp(-hamming(X, Xs) / 2.0), 1.5 * np.exp(-hamming(Xs, Xs) / 2.0)
    inv = np.linalg.inv(K)
    assert mean == pytest.approx(Ks.T @ inv @ y, rel=1e-8)
    assert var == pytest.approx(np.diag(Kss - Ks.T @ inv @ Ks), rel=1e-7)
    lml = stats.multivariate_normal(np.zeros(15), K).logpdf(y)
    assert gp.log_marginal_likelihood() == pytest.approx(lml, rel=1e-9)
    assert hamming(X, X) == pytest.approx((X[:, None] != X[None]).sum(-1))


def test_marginal_likelihood_picks_the_grid_best_and_reads_the_data():
    """The fit is the grid's maximum; a function of the ops gets a long length-scale and little
    noise, pure noise the shortest length-scale (no two cells alike)."""
    rng = np.random.default_rng(1)
    X = CODES[rng.choice(len(CODES), 60, replace=False)]
    smooth = (X == 3).sum(axis=1).astype(float)
    smooth = (smooth - smooth.mean()) / smooth.std()
    noise = rng.normal(size=60)
    fitted = GaussianProcess.fit_marginal_likelihood(X, smooth)
    grid = [
        GaussianProcess(ls, nz).fit(X, smooth).log_marginal_likelihood()
        for ls in (0.5, 1.0, 2.0, 4.0, 8.0)
        for nz in (1e-4, 1e-3, 1e-2, 1e-1)
    ]
    assert fitted.log_marginal_likelihood() == pytest.approx(max(grid))
    assert fitted.lengthscale >= 4.0 and fitted.noise <= 1e-2
    assert GaussianProcess.fit_marginal_likelihood(X, noise).lengthscale == 0.5


@pytest.mark.parametrize(
    "mu,sigma,best,xi", [(0.0, 1.0, 0.0, 0.0), (0.3, 0.2, 0.5, 0.0), (1.0, 0.5, 0.2, 0.1)]
)
def test_expected_improvement_is_the_integral(mu, sigma, best, xi):
    density = stats.norm(mu, sigma).pdf
    numeric, _ = integrate.quad(
        lambda f: max(f - best - xi, 0.0) * density(f),
        mu - 12 * sigma,
        mu + 12 * sigma,
        points=[best + xi],
        limit=200,
    )
    assert float(expected_improvement(mu, sigma, best, xi)) == pytest.approx(numeric, rel=1e-6)


def test_acquisitions_limits_and_errors():
    assert expected_improvement(np.array([0.7, 0.3]), np.zeros(2), 0.5) == pytest.approx([0.2, 0])
    ei = expected_improvement(np.zeros(3), np.array([0.1, 1.0, 2.0]), 0.0)
    assert np.all(np.diff(ei) > 0)  # at equal mean, more uncertainty is worth more
    assert ucb(np.array([1.0]), np.array([0.5]), beta=4.0) == pytest.approx([2.0])
    with pytest.raises(ValueError, match="standard deviation"):
        expected_improvement(0.0, -1.0, 0.0)
    with pytest.raises(ValueError, match="one per row"):
        GaussianProcess().fit(np.zeros((3, 6), dtype=int), np.zeros(2))
    with pytest.raises(ValueError, match="acquisition"):
        BayesOpt(acquisition="pi")


@pytest.mark.parametrize("acquisition", ["ei", "ucb"])
def test_bayesopt_beats_random_on_a_smooth_landscape(smooth, acquisition):
    p, ours, rand = beats_random(
        lambda s: BayesOpt(seed=s, acquisition=acquisition), smooth, steps=30, seeds=8
    )
    assert p < 0.01, (ours, rand)


def test_bayesopt_same_seed_same_run_and_never_repeats(smooth):
    def trace(seed: int) -> list[str]:
        return [arch for _, arch, _, _ in run(BayesOpt(seed=seed), smooth, 1e9, 0, 25).trajectory]

    first = trace(3)
    assert first == trace(3) and first != trace(4)
    assert len(set(first)) == len(first)


# --------------------------------------------------------------------------------------------
# Predictors and BANANAS
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    order = rng.permutation(len(CELLS))
    train, test = order[:300], order[300:1300]
    return (
        [CELLS[i] for i in train],
        PATH_SCORES[train],
        [CELLS[i] for i in test],
        PATH_SCORES[test],
    )


@pytest.mark.parametrize("make", [MLPPredictor, GCNPredictor])
def test_predictors_rank_held_out_cells(split, make):
    train, y_train, test, y_test = split
    predictor = make(seed=0).fit(train, y_train)
    tau = stats.kendalltau(predictor.predict(test), y_test).statistic
    assert tau > 0.6
    again = make(seed=0).fit(train, y_train).predict(test[:20])
    assert np.array_equal(again, predictor.predict(test[:20]))  # same seed, same model


def test_ensemble_spread_is_an_uncertainty(split):
    """Five members agree where they were trained and disagree more on unseen cells."""
    train, y_train, test, _ = split
    ensemble = MLPPredictor(members=5, seed=0).fit(train[:60], y_train[:60])
    _, spread_train = ensemble.predict_with_std(train[:60])
    _, spread_test = ensemble.predict_with_std(test[:300])
    assert ensemble.predict_members(test[:5]).shape == (5, 5)
    assert spread_test.mean() > 1.5 * spread_train.mean() > 0


def test_predictor_errors():
    with pytest.raises(RuntimeError, match="fit"):
        MLPPredictor().predict(CELLS[:2])
    with pytest.raises(ValueError, match="one score per cell"):
        MLPPredictor().fit(CELLS[:3], [0.1, 0.2])
    with pytest.raises(ValueError, match="predictor"):
        Bananas(predictor="xgboost")


def test_bananas_beats_random(pathland):
    p, ours, rand = beats_random(lambda s: Bananas(seed=s), pathland, steps=40, seeds=8)
    assert p < 0.01, (ours, rand)


def test_bananas_same_seed_same_run(pathland):
    def trace(seed: int) -> list[str]:
        strategy = Bananas(seed=seed, predictor="gcn", acquisition="ucb")
        return [arch for _, arch, _, _ in run(strategy, pathland, 1e9, 0, 18).trajectory]

    first = trace(2)
    assert first == trace(2) and first != trace(3)
    assert len(set(first)) == len(first)


# --------------------------------------------------------------------------------------------
# Lesson 05's helpers: the posterior from kernel matrices, the GP as a predictor, and how well a
# predictor ranks unseen cells as it sees more
# --------------------------------------------------------------------------------------------


def test_posterior_from_kernel_matrices_matches_the_direct_inverse_for_any_kernel():
    """An RBF kernel on the real line, which the GP class does not use: eq. 2.25-2.26 by a
    direct inverse; and the Hamming kernel: the same as ``GaussianProcess.predict``."""
    rng = np.random.default_rng(3)
    x, xs = rng.uniform(-3, 3, 12), np.linspace(-4, 4, 9)
    y = np.sin(x)

    def rbf(a, b):
        return np.exp(-((a[:, None] - b[None]) ** 2) / 2)

    mean, var = posterior(rbf(x, x), rbf(x, xs), np.ones(9), y, noise=0.1)
    inv = np.linalg.inv(rbf(x, x) + 0.1 * np.eye(12))
    assert mean == pytest.approx(rbf(x, xs).T @ inv @ y, rel=1e-8)
    assert var == pytest.approx(1 - np.diag(rbf(x, xs).T @ inv @ rbf(x, xs)), rel=1e-7)

    X, Xs = CODES[:20], CODES[100:110]
    gp = GaussianProcess(lengthscale=2.0, noise=0.01).fit(X, y[:12].repeat(2)[:20])
    K, Ks = np.exp(-hamming(X, X) / 2.0), np.exp(-hamming(X, Xs) / 2.0)
    ours = posterior(K, Ks, np.ones(10), gp.y, noise=0.01)
    assert ours[0] == pytest.approx(gp.predict(Xs)[0]) and ours[1] == pytest.approx(
        gp.predict(Xs)[1]
    )


def test_posterior_errors_name_the_fix():
    K = np.eye(3)
    with pytest.raises(ValueError, match="shapes disagree"):
        posterior(K, np.ones((2, 4)), np.ones(4), np.zeros(3), 0.1)
    with pytest.raises(ValueError, match="test points"):
        posterior(K, np.ones((3, 4)), np.ones(2), np.zeros(3), 0.1)
    with pytest.raises(ValueError, match="noise must be > 0"):
        posterior(K, np.ones((3, 4)), np.ones(4), np.zeros(3), 0.0)


def test_gp_predictor_ranks_held_out_cells_and_keeps_units(split):
    train, y_train, test, y_test = split
    gp = GPPredictor().fit(train[:150], y_train[:150])
    assert stats.kendalltau(gp.predict(test), y_test).statistic > 0.6
    # Standardising inside: shifting the scores shifts the predictions, scaling scales the spread.
    mu, sd = gp.predict_with_std(test[:30])
    mu2, sd2 = GPPredictor().fit(train[:150], 2 * y_train[:150] + 10).predict_with_std(test[:30])
    assert mu2 == pytest.approx(2 * mu + 10) and sd2 == pytest.approx(2 * sd)
    with pytest.raises(RuntimeError, match="fit"):
        GPPredictor().predict(test[:2])


class _Oracle:
    """Predicts the true score (or its negative), and records what it was given."""

    def __init__(self, sign: float = 1.0) -> None:
        self.sign, self.trained_on, self.asked = sign, [], []

    def fit(self, cells, scores):
        self.trained_on.append([str(c) for c in cells])
        return self

    def predict(self, cells):
        self.asked.append([str(c) for c in cells])
        return self.sign * PATH_SCORES[[CELLS.index(c) for c in cells]]


class _Guess:
    """Predicts uniform noise, whatever it saw."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def fit(self, cells, scores):
        return self

    def predict(self, cells):
        return self.rng.random(len(cells))


def test_rank_learning_curve_known_answers():
    cells, scores = CELLS[:400], PATH_SCORES[:400]
    perfect = rank_learning_curve(lambda rng: _Oracle(), cells, scores, (5, 20), 50, 3, seed=0)
    assert perfect.shape == (3, 2) and np.allclose(perfect, 1.0)
    inverse = rank_learning_curve(lambda rng: _Oracle(-1), cells, scores, (5, 20), 50, 2, seed=0)
    assert np.allclose(inverse, -1.0)
    guess = rank_learning_curve(_Guess, cells, scores, (10,), 100, 30, seed=1)
    assert abs(guess.mean()) < 0.1  # random guesses: no rank correlation on average

    def mlp(rng):
        return MLPPredictor(seed=rng, epochs=20)

    first = rank_learning_curve(mlp, cells, scores, (10, 30), 40, 2, seed=7)
    assert np.array_equal(first, rank_learning_curve(mlp, cells, scores, (10, 30), 40, 2, seed=7))
    with pytest.raises(ValueError, match="need more than"):
        rank_learning_curve(lambda rng: _Oracle(), cells, scores, (390,), 50, 1)


def test_rank_learning_curve_nests_training_sets_and_fixes_the_test_set():
    made: list[_Oracle] = []

    def make(rng):
        made.append(_Oracle())
        return made[-1]

    rank_learning_curve(make, CELLS[:300], PATH_SCORES[:300], (5, 10, 40), 60, 2, seed=0)
    first, second, third = (m.trained_on[0] for m in made[:3])
    assert (len(first), len(second), len(third)) == (5, 10, 40)
    assert first == second[:5] and second == third[:10]  # nested within a repeat
    assert made[0].asked == made[1].asked == made[2].asked  # one test set per repeat
    assert not set(made[0].asked[0]) & set(third)  # never tested on what it trained on
    assert made[3].trained_on[0] != first and made[3].asked != made[0].asked  # a new split
