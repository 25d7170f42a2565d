"""The pieces of REINFORCE that lesson 03 teaches: the score function of a categorical choice,
the moving-average baseline, per-sample gradients and their variance, and what the strategy
records (baselines, entropies, its greedy cell). The controller's gradient by finite differences,
the entropy bonus and the search itself are tested in tests/test_model_based.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import special, stats

from nas_lab.bench import Result
from nas_lab.spaces import nb201
from nas_lab.strategies.reinforce import (
    Controller,
    Reinforce,
    gradient_variance,
    log_prob_and_entropy,
    moving_average_baselines,
    reinforce_loss,
    score_function,
    score_gradients,
)

torch.set_num_threads(1)


def result(val_acc: float) -> Result:
    """A benchmark answer that only carries a validation accuracy."""
    return Result("", val_acc, None, 0.0, 0.0, 1, 0, 0, 0.0)


# --------------------------------------------------------------------------------------------
# The score function of one categorical choice
# --------------------------------------------------------------------------------------------


def test_score_function_is_the_gradient_of_log_softmax():
    rng = np.random.default_rng(0)
    for _ in range(5):
        z = rng.normal(0, 2, size=5)
        for action in range(5):
            logits = torch.tensor(z, requires_grad=True)
            torch.log_softmax(logits, dim=0)[action].backward()
            assert np.allclose(score_function(z, action), logits.grad.numpy(), atol=1e-12)


def test_score_function_has_mean_zero_under_the_policy():
    """sum_a p_a (onehot(a) - p) = p - p = 0: why a baseline adds no bias."""
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, size=7)
    p = special.softmax(z)
    mean = sum(p[a] * score_function(z, a) for a in range(7))
    assert np.allclose(mean, 0.0, atol=1e-12)
    # Large logits do not overflow: softmax is computed from z - max(z).
    assert np.isfinite(score_function(np.array([1000.0, 0.0, -1000.0]), 1)).all()


def test_score_function_bad_input():
    with pytest.raises(ValueError, match="action in 0..4"):
        score_function(np.zeros(5), 5)
    with pytest.raises(ValueError, match="1-D"):
        score_function(np.zeros((2, 5)), 0)


def test_log_prob_and_entropy_against_scipy():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(6, 5))
    ops = [int(a) for a in rng.integers(0, 5, size=6)]
    log_prob, entropy = log_prob_and_entropy(torch.tensor(z), ops)
    p = special.softmax(z, axis=1)
    assert float(log_prob) == pytest.approx(np.log(p[np.arange(6), ops]).sum(), rel=1e-12)
    assert float(entropy) == pytest.approx(stats.entropy(p, axis=1).sum(), rel=1e-12)
    with pytest.raises(ValueError, match="one op per step"):
        log_prob_and_entropy(torch.tensor(z), ops[:5])
    with pytest.raises(ValueError, match="steps, choices"):
        log_prob_and_entropy(torch.tensor(z[0]), ops)


# --------------------------------------------------------------------------------------------
# The moving-average baseline
# --------------------------------------------------------------------------------------------


def test_moving_average_baselines_by_hand_and_in_closed_form():
    assert moving_average_baselines([0.5, 0.7, 0.9], 0.5).tolist() == [0.5, 0.5, 0.6]
    # decay 0: each reward is compared with the one before it.
    assert moving_average_baselines([0.1, 0.4, 0.2], 0.0).tolist() == [0.1, 0.1, 0.4]
    rng = np.random.default_rng(3)
    rewards, d = rng.uniform(0.5, 1.0, size=20), 0.8
    # Unrolled: b_t = d^(t-1) R_1 + sum_{s<t} (1 - d) d^(t-1-s) R_s (t counted from 1).
    closed = [
        d ** (t - 1) * rewards[0]
        + sum((1 - d) * d ** (t - 1 - s) * rewards[s - 1] for s in range(1, t))
        for t in range(1, 21)
    ]
    assert np.allclose(moving_average_baselines(rewards, d), closed, atol=1e-12)
    assert moving_average_baselines([], 0.9).shape == (0,)
    with pytest.raises(ValueError, match="decay"):
        moving_average_baselines([0.5], 1.0)


def test_the_strategy_uses_and_records_those_baselines():
    """baseline=True: the recorded b_t are moving_average_baselines of the rewards told;
    baseline=False: b = 0, and the updates differ from the first nonzero advantage on."""
    rewards = [0.6, 0.9, 0.7, 0.8, 0.95]
    runs = {}
    for flag in (True, False):
        strategy = Reinforce(seed=4, baseline=flag, baseline_decay=0.7)
        for reward in rewards:
            strategy.tell(strategy.ask(), result(reward))
        runs[flag] = strategy
    assert np.allclose(runs[True].baselines, moving_average_baselines(rewards, 0.7))
    assert runs[False].baselines == [0.0] * 5
    a, b = (runs[flag].controller.heads[0].bias for flag in (True, False))
    assert not torch.allclose(a, b)


# --------------------------------------------------------------------------------------------
# Per-sample gradients and the variance a baseline saves
# --------------------------------------------------------------------------------------------


def sample_cells(controller: Controller, n: int, seed: int) -> list[nb201.Cell]:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return [nb201.Cell(controller.sample(generator)[0]) for _ in range(n)]


def test_score_gradients_weighted_by_advantages_are_minus_the_loss_gradient():
    """sum_i (R_i - b) * row_i = -grad sum_i loss_i (eq. 2 without the entropy bonus)."""
    controller = Controller(hidden=6, seed=5).double()
    cells = sample_cells(controller, 8, seed=5)
    advantages = np.random.default_rng(5).normal(size=8)
    rows = score_gradients(controller, cells)
    n_params = sum(p.numel() for p in controller.parameters())
    assert rows.shape == (8, n_params)
    controller.zero_grad()
    loss = sum(
        reinforce_loss(controller.evaluate(c)[0], torch.zeros(()), float(a), 0.0, 0.0)
        for c, a in zip(cells, advantages, strict=True)
    )
    loss.backward()
    grad = torch.cat([p.grad.flatten() for p in controller.parameters()]).numpy()
    assert np.allclose(advantages @ rows, -grad, atol=1e-12)


def test_gradient_variance_known_answers():
    rng = np.random.default_rng(6)
    rows = rng.normal(size=(50, 7))
    # A constant reward R: with b = R every estimate is 0; with b = 0 the variance is R^2 tr Cov.
    assert gradient_variance(rows, np.zeros(50)) == 0.0
    assert gradient_variance(rows, np.full(50, 0.9)) == pytest.approx(
        0.81 * np.trace(np.cov(rows.T, ddof=0)), rel=1e-12
    )
    with pytest.raises(ValueError, match="one advantage per sample"):
        gradient_variance(rows, np.zeros(49))


def test_a_baseline_cuts_the_variance_of_the_estimate():
    """Rewards near 0.9 that differ by a few points, as accuracies do: without a baseline the
    estimate is dominated by 0.9 * score; the moving average removes most of it."""
    controller = Controller(hidden=8, seed=7)
    cells = sample_cells(controller, 200, seed=7)
    rewards = np.array([0.85 + 0.02 * c.ops.count("nor_conv_3x3") for c in cells])
    rows = score_gradients(controller, cells)
    plain = gradient_variance(rows, rewards)
    centred = gradient_variance(rows, rewards - moving_average_baselines(rewards, 0.9))
    assert centred < 0.05 * plain


# --------------------------------------------------------------------------------------------
# What the strategy records for the lesson's plots
# --------------------------------------------------------------------------------------------


def test_entropies_recorded_at_ask_are_the_samples_step_entropies():
    strategy = Reinforce(seed=8, lr=0.05)
    for k in range(6):
        cell = strategy.ask()
        with torch.no_grad():
            entropy = float(strategy.controller.evaluate(cell)[1])
        assert strategy.entropies[-1] == pytest.approx(entropy, abs=1e-5)
        strategy.tell(cell, result(0.5 + 0.1 * k))
    assert len(strategy.entropies) == 6
    assert all(0 < h <= 6 * np.log(5) + 1e-6 for h in strategy.entropies)


def test_most_likely_follows_the_argmax_of_each_step():
    controller = Controller(hidden=4, seed=9)
    wanted = ["avg_pool_3x3", "none", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none"]
    with torch.no_grad():
        for head, op in zip(controller.heads, wanted, strict=True):
            head.weight.zero_()
            head.bias.zero_()
            head.bias[nb201.OPS.index(op)] = 2.0
    assert list(controller.most_likely()) == wanted
    # For any controller: every step of the greedy cell is the argmax of its row.
    controller = Controller(hidden=8, seed=10)
    greedy = controller.most_likely()
    table = controller.probabilities(greedy)
    assert [nb201.OPS[i] for i in table.argmax(axis=1)] == list(greedy)
