"""The papers' hyperparameters as presets (issue 15, item 11): ``METHOD(**module.PAPER)``.

For every method a preset constructs it, and each value reaches the object that uses it: the
Adam parameter group (learning rate, betas, eps, weight decay), the cosine schedule's floor, the
controller's width and update size, BANANAS' ensemble (5 members of 10 layers trained on an L1
loss), and GP-UCB's beta_t (Srinivas et al. 2010, Theorem 1) in the round that uses it. The new
options (ENAS' aggregated controller steps, minibatched predictors, the L1 loss) are checked
against the same computation written out by hand. Last, the course's own defaults are pinned:
the shipped results and executed notebooks were made with them.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_lab.oneshot import darts, enas, pcdarts
from nas_lab.oneshot import supernet as sn
from nas_lab.spaces import as_rng, nb201
from nas_lab.strategies import bayesopt, predictors, reinforce
from nas_lab.strategies.reinforce import reinforce_loss

TINY = {"C": 4, "N": 1, "progress": False, "device": "cpu"}  # a supernet small enough to build


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def final_lr(search: darts.DARTS) -> float:
    """The weights' learning rate after the whole cosine schedule of ``search``."""
    opt, schedule = search.weight_optimizer()
    steps = search.epochs * sn.steps_per_epoch(search.data.weights, search.batch_size)
    for _ in range(steps):
        opt.step()  # no gradients: leaves the weights alone, keeps the scheduler's order check
        schedule.step()
    return schedule.get_last_lr()[0]


def cosine_lrs(opt, schedule, steps: int) -> list[float]:
    lrs = []
    for _ in range(steps):
        opt.step()
        schedule.step()
        lrs.append(schedule.get_last_lr()[0])
    return lrs


def results(values):
    """What ``tell`` reads from a benchmark result: the validation accuracy."""
    return [SimpleNamespace(val_acc=float(v)) for v in values]


# ------------------------------------------------------------------------------------------
# Each preset builds its method
# ------------------------------------------------------------------------------------------

PRESETS = {
    "DARTS": lambda: darts.DARTS(**darts.PAPER, epochs=2, **TINY),
    "PC-DARTS": lambda: pcdarts.PCDARTS(**pcdarts.PAPER, epochs=2, **TINY),
    "ENAS": lambda: enas.ENAS(**enas.PAPER, epochs=2, **TINY),
    "REINFORCE": lambda: reinforce.Reinforce(**reinforce.PAPER),
    "BANANAS": lambda: predictors.Bananas(**predictors.PAPER),
    "GP-UCB": lambda: bayesopt.BayesOpt(**bayesopt.PAPER),
}


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_constructs_its_method(name):
    assert PRESETS[name]() is not None


# ------------------------------------------------------------------------------------------
# DARTS and PC-DARTS: the optimisers
# ------------------------------------------------------------------------------------------


def test_darts_preset_reaches_both_optimisers():
    search = darts.DARTS(**darts.PAPER, epochs=2, **TINY)
    (group,) = search.arch_optimizer.param_groups
    assert group["lr"] == darts.PAPER["arch_lr"] == 3e-4
    assert group["weight_decay"] == darts.PAPER["arch_weight_decay"] == 1e-3
    assert group["betas"] == (0.5, 0.999)
    assert search.batch_size == 64 and search.lr == darts.PAPER["lr"] == 0.025
    (weights,) = search.weight_optimizer()[0].param_groups
    assert weights["lr"] == 0.025 and weights["momentum"] == 0.9
    assert weights["weight_decay"] == 3e-4
    assert final_lr(search) == pytest.approx(darts.PAPER["lr_min"], abs=1e-12)


def test_pcdarts_preset_reaches_optimisers_warmup_and_channels():
    search = pcdarts.PCDARTS(**pcdarts.PAPER, epochs=50, **TINY)
    (group,) = search.arch_optimizer.param_groups
    assert group["lr"] == 6e-4 and group["weight_decay"] == 1e-3
    assert group["params"][0] is search.alpha and group["params"][1] is search.beta
    assert search.order == 1 and search.K == 4 and search.net.partial == 4
    assert search.lr == 0.1 and search.batch_size == 256
    # the paper's code: `if epoch >= 15` (0-based) in a search of 50 epochs
    assert [search.arch_updates(e) for e in (0, 14, 15, 49)] == [False, False, True, True]
    short = pcdarts.PCDARTS(**pcdarts.PAPER, epochs=2, **TINY)
    assert final_lr(short) == pytest.approx(0.0, abs=1e-12)  # annealed to zero, not to 1e-3


def test_lr_min_moves_only_the_floor_of_the_cosine():
    """At the default floor the schedule is exactly ``supernet.weight_optimizer``'s; another
    floor follows the closed form eta_min + (lr - eta_min) (1 + cos(pi k / T)) / 2."""
    search = darts.DARTS(order=1, epochs=2, **TINY)
    steps = search.epochs * sn.steps_per_epoch(search.data.weights, search.batch_size)
    ours = cosine_lrs(*search.weight_optimizer(), steps)
    reference = cosine_lrs(*sn.weight_optimizer(search.net, search.lr, steps), steps)
    assert ours == reference
    low = darts.DARTS(order=1, epochs=2, lr_min=1e-4, **TINY)
    lrs = cosine_lrs(*low.weight_optimizer(), steps)
    closed = [
        1e-4 + (0.025 - 1e-4) * (1 + math.cos(math.pi * k / steps)) / 2 for k in range(1, steps + 1)
    ]
    np.testing.assert_allclose(lrs, closed, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="lr_min"):
        darts.DARTS(lr_min=-1.0, **TINY)


# ------------------------------------------------------------------------------------------
# ENAS: the controller's optimiser and its aggregated steps
# ------------------------------------------------------------------------------------------


def test_enas_preset_reaches_the_controller():
    search = enas.ENAS(**enas.PAPER, epochs=2, **TINY)
    (group,) = search.controller_opt.param_groups
    assert group["lr"] == 1e-3 and group["betas"] == (0.0, 0.999) and group["eps"] == 1e-3
    assert (search.controller_steps, search.controller_aggregate) == (50, 20)
    assert (search.baseline_decay, search.entropy_weight) == (0.99, 1e-4)
    assert search.final_samples == 100 and search.batch_size == 128


@pytest.mark.parametrize("aggregate", [1, 3])
def test_enas_controller_step_averages_the_gradient_over_its_samples(aggregate):
    """Each controller step descends the mean of eq. 2 over ``controller_aggregate`` samples,
    the moving-average baseline updated after every sample (ENAS' controller_num_aggregate).
    Written out by hand on a copy of the controller and of the random generator."""
    search = enas.ENAS(controller_aggregate=aggregate, controller_steps=2, epochs=1, **TINY)
    x, y = search.data.arch.tensors
    batch = (x[:32], y[:32])
    controller = copy.deepcopy(search.controller)
    generator = torch.Generator().set_state(search.generator.get_state())
    seen = []
    step = search.controller_opt.step

    def spy():
        seen.append([p.grad.detach().clone() for p in search.controller.parameters()])
        step()

    search.controller_opt.step = spy
    search.train_controller(itertools.repeat(batch))
    assert len(seen) == 2 and len(search.rewards) == 2 * aggregate

    optimizer = torch.optim.Adam(controller.parameters(), lr=5e-3)
    baseline, rewards = None, []
    for expected in seen:
        optimizer.zero_grad()
        for _ in range(aggregate):
            ops, log_prob, entropy = controller.sample(generator)
            reward = search.reward(nb201.Cell(ops), batch)
            baseline = reward if baseline is None else baseline
            loss = reinforce_loss(log_prob, entropy, reward, baseline, 1e-3) / aggregate
            loss.backward()
            baseline = 0.95 * baseline + 0.05 * reward
            rewards.append(reward)
        for got, p in zip(expected, controller.parameters(), strict=True):
            torch.testing.assert_close(got, p.grad)
        optimizer.step()
    assert search.rewards == rewards and search.baseline == pytest.approx(baseline)


def test_enas_bad_aggregate():
    with pytest.raises(ValueError, match="controller_aggregate"):
        enas.ENAS(controller_aggregate=0, **TINY)


# ------------------------------------------------------------------------------------------
# REINFORCE: Zoph & Le's controller
# ------------------------------------------------------------------------------------------


def test_reinforce_preset_reaches_controller_and_updates():
    strategy = reinforce.Reinforce(**reinforce.PAPER)
    (group,) = strategy.optimizer.param_groups
    assert group["lr"] == 6e-4
    assert strategy.controller.hidden == 35 and strategy.controller.lstm.hidden_size == 35
    assert strategy.entropy_weight == 0.0
    cells = [strategy.ask() for _ in range(8)]
    for cell, result in zip(cells[:7], results(np.linspace(0.5, 0.9, 7)), strict=False):
        strategy.tell(cell, result)
    assert strategy.optimizer.state == {}  # 7 rewards: no step yet
    strategy.tell(cells[7], results([0.7])[0])
    state = strategy.optimizer.state[group["params"][0]]
    assert int(state["step"]) == 1  # one Adam step on the batch of 8


# ------------------------------------------------------------------------------------------
# BANANAS: the ensemble, its loss, its candidates
# ------------------------------------------------------------------------------------------


def some_cells(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    cells = [nb201.sample(rng) for _ in range(n)]
    return cells, rng.uniform(0.6, 0.9, n)


def test_bananas_preset_builds_five_ten_layer_mlps_on_an_l1_loss():
    strategy = predictors.Bananas(**{**predictors.PAPER, "epochs": 2})
    model = strategy.model
    assert isinstance(model, predictors.MLPPredictor)
    assert (model.members, model.layers, model.hidden) == (5, 10, 20)
    assert (model.loss, model.lr, model.weight_decay, model.batch_size) == ("mae", 0.01, 0.0, 32)
    cells, scores = some_cells(40)
    model.fit(cells, scores)
    hidden = model.network.layers
    assert len(hidden) == 10
    assert [tuple(layer.weight.shape) for layer in hidden] == (
        [(5, len(nb201.PATHS), 20)] + [(5, 20, 20)] * 9
    )
    assert model.predict_members(cells).shape == (5, 40)
    assert predictors.LOSSES[model.loss] is predictors.absolute_error


@pytest.mark.parametrize("loss, reference", [("mae", F.l1_loss), ("mse", F.mse_loss)])
@pytest.mark.parametrize("batch_size", [None, 16])
def test_predictor_training_is_adam_on_that_loss(loss, reference, batch_size):
    """``fit`` by hand: the same seeded initialisation, Adam on torch's own L1 or MSE loss over
    all members, full-batch or on shuffled minibatches drawn from the same generator."""
    cells, scores = some_cells(40)
    options = {"members": 3, "layers": 3, "hidden": 8, "epochs": 4, "seed": 7}
    fitted = predictors.MLPPredictor(**options, loss=loss, batch_size=batch_size)
    fitted.fit(cells, scores)

    rng = as_rng(7)
    generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
    net = predictors.MLPPredictor(**options).build(generator)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=1e-4)
    target = torch.tensor((scores - scores.mean()) / scores.std(), dtype=torch.float32)
    (x,) = fitted.features(cells)
    for _ in range(4):
        if batch_size is None:
            batches = [slice(None)]
        else:
            batches = torch.randperm(40, generator=generator).split(batch_size)
        for rows in batches:
            optimizer.zero_grad()
            out = net(x[rows])
            reference(out, target[rows].expand_as(out)).backward()
            optimizer.step()
    for ours, theirs in zip(fitted.network.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)


def test_bananas_preset_candidates_are_mutations_of_the_best(monkeypatch):
    calls = []
    real = predictors.candidates

    def spy(rng, observed, n_random, n_mutations, top=5):
        calls.append((n_random, n_mutations, top))
        return real(rng, observed, n_random, n_mutations, top)

    monkeypatch.setattr(predictors, "candidates", spy)
    strategy = predictors.Bananas(**{**predictors.PAPER, "epochs": 2})
    _, scores = some_cells(10)  # n_init random cells, then the model's first ask
    for score in results(scores):
        strategy.tell(strategy.ask(), score)
    strategy.ask()
    assert calls == [(0, 100, 1)]  # 100 candidates, all mutations of the single best cell
    assert strategy.refit_every == 10 and strategy.acquisition == "its"


def test_predictor_and_bananas_bad_options():
    with pytest.raises(ValueError, match="loss"):
        predictors.MLPPredictor(loss="huber")
    with pytest.raises(ValueError, match="batch_size"):
        predictors.MLPPredictor(batch_size=0)
    with pytest.raises(ValueError, match="n_random"):
        predictors.Bananas(n_random=101)
    with pytest.raises(ValueError, match="top"):
        predictors.Bananas(top=0)


# ------------------------------------------------------------------------------------------
# GP-UCB: Theorem 1's beta_t
# ------------------------------------------------------------------------------------------


def test_gp_ucb_beta_matches_theorem_1_in_closed_form():
    """With |D| = 1 and delta = pi^2 / (6 e^2), beta_t = 2 log(e^2 t^2) = 4 + 4 log t."""
    delta = math.pi**2 / (6 * math.e**2)
    for t in (1, 2, 10):
        assert bayesopt.gp_ucb_beta(t, 1, delta) == pytest.approx(4 + 4 * math.log(t))
    # |D| enters as log |D|; delta as -log delta
    assert bayesopt.gp_ucb_beta(3, 100, 0.1) - bayesopt.gp_ucb_beta(3, 1, 0.1) == pytest.approx(
        2 * math.log(100)
    )
    assert bayesopt.gp_ucb_beta(3, 7, 0.01) - bayesopt.gp_ucb_beta(3, 7, 0.1) == pytest.approx(
        2 * math.log(10)
    )
    for bad in ({"t": 0}, {"domain_size": 0}, {"delta": 1.0}, {"delta": 0.0}):
        arguments = {"t": 1, "domain_size": 10, "delta": 0.1, **bad}
        with pytest.raises(ValueError):
            bayesopt.gp_ucb_beta(**arguments)


def test_gp_ucb_preset_uses_beta_t_of_each_round(monkeypatch):
    """Round t (one more than the observations) scores the candidates with beta_t, |D| the
    6,466 classes, delta 0.1; the fixed default stays 4 whatever the round."""
    used = []
    real = bayesopt.ucb

    def spy(mu, sigma, beta):
        used.append(beta)
        return real(mu, sigma, beta)

    monkeypatch.setattr(bayesopt, "ucb", spy)
    strategy = bayesopt.BayesOpt(**bayesopt.PAPER, n_init=3, n_candidates=20)
    assert strategy.domain_size == len(nb201.unique_cells()) == 6466
    rng = np.random.default_rng(0)
    for _ in range(6):
        cell = strategy.ask()
        strategy.tell(cell, results([rng.uniform(0.5, 0.9)])[0])
    expected = [bayesopt.gp_ucb_beta(t, 6466, 0.1) for t in (4, 5, 6)]
    assert used == strategy.betas == pytest.approx(expected)
    assert [strategy.beta_at(t) for t in (1, 2, 10)] == pytest.approx(
        [2 * math.log(6466 * t**2 * math.pi**2 / 0.6) for t in (1, 2, 10)]
    )
    fixed = bayesopt.BayesOpt(acquisition="ucb")
    assert fixed.beta_at(1) == fixed.beta_at(50) == 4.0


# ------------------------------------------------------------------------------------------
# The course's defaults, which the shipped results and executed lessons were made with
# ------------------------------------------------------------------------------------------

COURSE_DEFAULTS = {
    darts.DARTS.__init__: {"order": 2, "arch_lr": 0.01, "arch_weight_decay": 1e-3, "lr_min": 1e-3},
    pcdarts.PCDARTS.__init__: {"K": 4, "warmup": 0.3, "order": 1},
    enas.ENAS.__init__: {
        "controller_lr": 5e-3,
        "controller_steps": 10,
        "baseline_decay": 0.95,
        "entropy_weight": 1e-3,
        "final_samples": None,
        "controller_aggregate": 1,
        "controller_betas": (0.9, 0.999),
        "controller_eps": 1e-8,
    },
    reinforce.Reinforce.__init__: {
        "lr": 0.005,
        "baseline_decay": 0.9,
        "entropy_weight": 1e-3,
        "hidden": 32,
        "batch_size": 1,
        "baseline": True,
    },
    predictors.Predictor.__init__: {
        "members": 1,
        "hidden": 32,
        "epochs": 200,
        "lr": 0.01,
        "weight_decay": 1e-4,
        "loss": "mse",
        "batch_size": None,
    },
    predictors.Bananas.__init__: {
        "ensemble": 5,
        "n_init": 10,
        "n_candidates": 100,
        "acquisition": "its",
        "refit_every": 5,
        "predictor": "mlp",
        "kappa": 1.0,
        "epochs": 200,
        "hidden": 32,
        "layers": None,
        "loss": "mse",
        "lr": 0.01,
        "weight_decay": 1e-4,
        "batch_size": None,
        "top": 10,
        "n_random": None,
    },
    bayesopt.BayesOpt.__init__: {
        "acquisition": "ei",
        "n_init": 10,
        "n_candidates": 200,
        "beta": 4.0,
        "xi": 0.0,
        "delta": None,
        "domain_size": None,
    },
}


@pytest.mark.parametrize("init", COURSE_DEFAULTS, ids=lambda f: f.__qualname__)
def test_the_course_defaults_are_unchanged(init):
    parameters = inspect.signature(init).parameters
    defaults = {name: parameters[name].default for name in COURSE_DEFAULTS[init]}
    assert defaults == COURSE_DEFAULTS[init]


def test_the_course_defaults_reach_the_same_objects_as_before():
    """The schedule-level defaults: DARTS' and ENAS' weights, 50 and 250 epochs, and BANANAS'
    candidate split (a tenth random, mutations of the best 10) on 2-layer MLPs (GCN: 3)."""
    assert (darts.DARTS.default_lr, darts.DARTS.full_epochs) == (0.025, 50)
    assert (pcdarts.PCDARTS.default_lr, pcdarts.PCDARTS.full_epochs) == (0.025, 50)
    assert (enas.ENAS.default_lr, enas.ENAS.full_epochs) == (0.05, 250)
    search = darts.DARTS(**TINY)
    assert search.arch_optimizer.param_groups[0]["lr"] == 0.01 and search.batch_size == 64
    controller = enas.ENAS(**TINY).controller_opt.param_groups[0]
    assert (controller["lr"], controller["betas"], controller["eps"]) == (5e-3, (0.9, 0.999), 1e-8)
    strategy = predictors.Bananas()
    assert (strategy.n_random, strategy.top, strategy.model.layers) == (10, 10, 2)
    assert predictors.Bananas(predictor="gcn").model.layers == 3
    assert reinforce.Reinforce().optimizer.param_groups[0]["lr"] == 0.005
