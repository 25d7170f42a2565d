"""Checks for lesson 03 (the RL controller: REINFORCE with a baseline and an entropy bonus)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from nas_lab.checks import Reason, close, exercise, loss_value
from nas_lab.strategies import reinforce

# ---- 03.1: the score function of one categorical choice ------------------------------------


def score_function(logits: np.ndarray, action: int) -> np.ndarray:
    """d log softmax(z)_a / dz = onehot(a) - softmax(z) (Williams 1992)."""
    return reinforce.score_function(logits, action)


def _logits(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for scale in (0.5, 2.0, 5.0, 1.0, 3.0):
        k = int(rng.integers(3, 8))
        cases.append((rng.normal(0, scale, size=k), int(rng.integers(k))))
    return cases


def _softmax(z: np.ndarray) -> np.ndarray:
    p = np.exp(z - np.max(z))
    return p / p.sum()


def _sign_flipped(logits, action):  # the gradient of -log pi: a descent direction, not ascent
    return _softmax(np.asarray(logits)) - np.eye(len(logits))[action]


def _logits_not_probabilities(logits, action):  # forgets the softmax
    return np.eye(len(logits))[action] - np.asarray(logits)


def _only_the_chosen_entry(logits, action):  # the other logits are pushed down too
    g = np.zeros(len(logits))
    g[action] = 1 - _softmax(np.asarray(logits))[action]
    return g


exercise(
    "03.1",
    title="the score function of a categorical choice",
    points=1,
    inputs=_logits,
    compare=close,
    wrong=[_sign_flipped, _logits_not_probabilities, _only_the_chosen_entry],
)(score_function)

# ---- 03.2: the moving-average baseline ------------------------------------------------------


def baselines(rewards: list[float], decay: float) -> np.ndarray:
    """The b_t each reward R_t is compared with: b_1 = R_1, b_{t+1} = decay b_t + (1 - decay) R_t
    (Zoph & Le, ICLR 2017, Section 3.2)."""
    return reinforce.moving_average_baselines(rewards, decay)


def _reward_streams(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for decay in (0.9, 0.5, 0.0, float(rng.uniform(0.6, 0.99))):
        n = int(rng.integers(4, 15))
        cases.append((rng.uniform(0.5, 0.98, size=n).round(4).tolist(), decay))
    return cases


def _includes_the_current_reward(rewards, decay):  # b_t has seen R_t: it judges its own action
    out, b = [], rewards[0]
    for r in rewards:
        b = decay * b + (1 - decay) * r
        out.append(b)
    return np.array(out)


def _starts_at_zero(rewards, decay):  # the first rewards all look like large improvements
    out, b = [], 0.0
    for r in rewards:
        out.append(b)
        b = decay * b + (1 - decay) * r
    return np.array(out)


def _weights_swapped(rewards, decay):  # the newest reward gets weight `decay`
    out, b = [], rewards[0]
    for r in rewards:
        out.append(b)
        b = (1 - decay) * b + decay * r
    return np.array(out)


exercise(
    "03.2",
    title="the moving-average baseline",
    points=2,
    inputs=_reward_streams,
    compare=close,
    wrong=[_includes_the_current_reward, _starts_at_zero, _weights_swapped],
)(baselines)

# ---- 03.3: the REINFORCE loss with an entropy bonus, in torch -------------------------------


def controller_loss(
    logits: torch.Tensor, ops: list[int], reward: float, baseline: float, entropy_weight: float
) -> torch.Tensor:
    """-(R - b) sum_t log softmax(z_t)[a_t] - beta H, H the summed entropy of the 6 step
    distributions (Zoph & Le, ICLR 2017, eq. 2; entropy bonus as in Pham et al., ICML 2018)."""
    log_prob, entropy = reinforce.log_prob_and_entropy(logits, ops)
    return reinforce.reinforce_loss(log_prob, entropy, reward, baseline, entropy_weight)


def _episodes(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for beta in (0.0, 0.05, float(rng.uniform(0.01, 0.5)), 0.2):
        logits = rng.normal(0, 1.5, size=(6, 5))
        ops = [int(a) for a in rng.integers(0, 5, size=6)]
        reward = float(rng.uniform(0.6, 0.95))
        cases.append((logits, ops, reward, reward + float(rng.uniform(-0.1, 0.1)), beta))
    return cases


def _value_and_gradient(answer: Callable, args: tuple) -> list:
    """Run the answer on a float64 leaf tensor; return [loss, d loss / d logits or None]."""
    logits, ops, reward, baseline, beta = args
    z = torch.tensor(np.asarray(logits), dtype=torch.float64, requires_grad=True)
    loss = answer(z, list(ops), reward, baseline, beta)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        return [loss, None]
    if loss.requires_grad:
        loss.reshape(()).backward()
    grad = None if z.grad is None else z.grad.numpy().tolist()
    return [float(loss.detach().reshape(())), grad]


def _loss_and_gradient(expected, got) -> Reason:
    """The value first, then the gradient, each with its own reason."""
    value, grad = got
    reason = loss_value(expected[0], value)
    if reason is not None:
        return reason
    if grad is None:
        return (
            "the value is right but no gradient reaches the logits: build the loss from torch "
            "operations on `logits` (no .item(), .detach() or numpy on the way)"
        )
    reason = close(expected[1], grad, rtol=1e-6, atol=1e-9)
    if reason is not None:
        return f"the value is right but the gradient with respect to the logits is not: {reason}"
    return None


def _entropy_penalised(logits, ops, reward, baseline, entropy_weight):  # + beta H: collapses
    log_prob, entropy = reinforce.log_prob_and_entropy(logits, ops)
    return -(reward - baseline) * log_prob + entropy_weight * entropy


def _baseline_forgotten(logits, ops, reward, baseline, entropy_weight):
    log_prob, entropy = reinforce.log_prob_and_entropy(logits, ops)
    return -reward * log_prob - entropy_weight * entropy


def _logits_as_log_probs(logits, ops, reward, baseline, entropy_weight):  # no log-softmax
    log_prob = logits[torch.arange(6), torch.tensor(ops)].sum()
    _, entropy = reinforce.log_prob_and_entropy(logits, ops)
    return -(reward - baseline) * log_prob - entropy_weight * entropy


def _advantage_detached_wrongly(logits, ops, reward, baseline, entropy_weight):  # no gradient
    log_prob, entropy = reinforce.log_prob_and_entropy(logits, ops)
    loss = -(reward - baseline) * log_prob - entropy_weight * entropy
    return torch.tensor(loss.item(), dtype=torch.float64)


exercise(
    "03.3",
    title="the REINFORCE loss with an entropy bonus",
    points=3,
    inputs=_episodes,
    call=_value_and_gradient,
    compare=_loss_and_gradient,
    wrong=[
        _entropy_penalised,
        _baseline_forgotten,
        _logits_as_log_probs,
        _advantage_detached_wrongly,
    ],
)(controller_loss)
