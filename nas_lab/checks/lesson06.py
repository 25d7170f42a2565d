"""Checks for lesson 06 (DARTS and its variants: the mixed operation, GDAS' sample, and DARTS'
second-order architecture gradient)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas_lab.checks import Reason, close, exercise, show

# ---- 06.1: the mixed operation (DARTS eq. 2) -----------------------------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    p = np.exp(z - np.max(z))
    return p / p.sum()


def mixed_op(outputs: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """o_bar(x) = sum_o softmax(alpha)_o * o(x) (Liu, Simonyan & Yang, ICLR 2019, eq. 2), with
    ``outputs[o]`` the output o(x) of operation o, stacked on the first axis."""
    weights = _softmax(np.asarray(alpha, dtype=float))
    return np.tensordot(weights, np.asarray(outputs, dtype=float), axes=1)


def _op_outputs(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for scale in (0.3, 1.0, 3.0, 2.0):
        shape = (5, *rng.integers(1, 4, size=int(rng.integers(1, 4))))
        cases.append((rng.normal(size=shape), rng.normal(0, scale, size=5)))
    return cases


def _alpha_not_softmaxed(outputs, alpha):  # the raw alpha as weights: not a convex mixture
    return np.tensordot(np.asarray(alpha), np.asarray(outputs), axes=1)


def _plain_average(outputs, alpha):  # ignores alpha: the supernet at initialisation only
    return np.asarray(outputs).mean(axis=0)


def _strongest_only(outputs, alpha):  # the discretised edge, not the relaxation
    return np.asarray(outputs)[int(np.argmax(alpha))]


exercise(
    "06.1",
    title="the mixed operation",
    points=1,
    inputs=_op_outputs,
    compare=close,
    wrong=[_alpha_not_softmaxed, _plain_average, _strongest_only],
)(mixed_op)

# ---- 06.2: GDAS' Gumbel-softmax sample with given noise -------------------------------------


def gumbel_sample(alpha: np.ndarray, gumbel: np.ndarray, tau: float) -> tuple[int, np.ndarray]:
    """GDAS (Dong & Yang, CVPR 2019), eq. 3 and 5, for one edge with Gumbel noise ``gumbel``:
    the hard choice argmax_o (log p_o + g_o) and the soft weights
    softmax((log p + g) / tau), p = softmax(alpha)."""
    log_p = np.log(_softmax(np.asarray(alpha, dtype=float)))
    scores = log_p + np.asarray(gumbel, dtype=float)
    return int(np.argmax(scores)), _softmax(scores / tau)


def _edges(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for tau in (0.3, 1.0, 5.0, 10.0, 0.7):
        alpha = rng.normal(0, 2.0, size=5)
        gumbel = -np.log(-np.log(rng.uniform(1e-9, 1.0, size=5)))  # Gumbel(0, 1)
        cases.append((alpha, gumbel, tau))
    # One edge where the noise overturns alpha's favourite: only a sample that uses it agrees.
    alpha = np.array([3.0, 0.0, 0.0, 0.0, 0.0])
    cases.append((alpha, np.array([0.0, 0.0, 5.0, 0.0, 0.0]), 1.0))
    return cases


def _noise_ignored(alpha, gumbel, tau):  # the argmax of alpha: no sampling at all
    return int(np.argmax(alpha)), _softmax(np.asarray(alpha) / tau)


def _temperature_on_noise_only(alpha, gumbel, tau):  # softmax(log p + g / tau)
    log_p = np.log(_softmax(np.asarray(alpha)))
    scores = log_p + np.asarray(gumbel) / tau
    return int(np.argmax(scores)), _softmax(scores)


def _sample_and_weights(expected, got) -> Reason:
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"expected a pair (index, soft weights), got {show(got)}"
    if int(got[0]) != expected[0]:
        return f"the sampled operation is wrong: expected {expected[0]}, got {show(got[0])}"
    reason = close(expected[1], got[1], rtol=1e-6, atol=1e-9)
    return None if reason is None else f"the soft weights are wrong: {reason}"


exercise(
    "06.2",
    title="GDAS' Gumbel-softmax sample",
    points=2,
    inputs=_edges,
    compare=_sample_and_weights,
    wrong=[_noise_ignored, _temperature_on_noise_only],
)(gumbel_sample)

# ---- 06.3: DARTS' second-order architecture gradient (eq. 6-8) ------------------------------
#
# On a quadratic bi-level problem with weights w (n) and architecture alpha (m):
#   L_train(w, a) = 1/2 w'Pw + w'Qa + 1/2 a'Ra          grad_w = Pw + Qa,   grad_a = Q'w + Ra
#   L_val(w, a)   = 1/2 |w - c|^2 + w'Sa                 grad_w = w - c + Sa, grad_a = S'w
# the learner's function receives the two gradient functions, each (w, a) -> (grad_w, grad_a).

Grads = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def darts_gradient(
    train_grads: Grads,
    val_grads: Grads,
    w: np.ndarray,
    alpha: np.ndarray,
    xi: float,
    eps: float = 0.01,
) -> np.ndarray:
    """DARTS' architecture gradient (Liu, Simonyan & Yang, ICLR 2019): the virtual step
    w' = w - xi grad_w L_train(w, a) (eq. 6), then eq. 7,
    grad_a L_val(w', a) - xi * [grad_a L_train(w+, a) - grad_a L_train(w-, a)] / (2 r),
    with v = grad_w' L_val(w', a), w+- = w +- r v and r = eps / |v| (eq. 8)."""
    w_prime = w - xi * train_grads(w, alpha)[0]
    v, d_alpha = val_grads(w_prime, alpha)
    norm = np.linalg.norm(v)
    if norm == 0:
        return d_alpha
    r = eps / norm
    hessian_v = (train_grads(w + r * v, alpha)[1] - train_grads(w - r * v, alpha)[1]) / (2 * r)
    return d_alpha - xi * hessian_v


def quadratic_problem(rng: np.random.Generator, n: int, m: int) -> dict[str, np.ndarray]:
    """A random quadratic bi-level problem: P positive definite, the rest Gaussian."""
    A = rng.normal(size=(n, n))
    return {
        "P": A @ A.T / n + np.eye(n),
        "Q": rng.normal(size=(n, m)),
        "R": np.eye(m),
        "S": rng.normal(size=(n, m)),
        "c": rng.normal(size=n),
    }


def quadratic_grads(problem: dict[str, np.ndarray]) -> tuple[Grads, Grads]:
    """The two gradient functions (w, a) -> (grad_w, grad_a) of ``quadratic_problem``."""
    P, Q, R, S, c = (problem[k] for k in "PQRSc")

    def train(w, a):
        return P @ w + Q @ a, Q.T @ w + R @ a

    def val(w, a):
        return w - c + S @ a, S.T @ w

    return train, val


def _problems(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for xi in (0.05, 0.1, 0.3, 0.02):
        n, m = int(rng.integers(3, 8)), int(rng.integers(2, 6))
        problem = quadratic_problem(rng, n, m)
        cases.append((problem, rng.normal(size=n), rng.normal(size=m), xi))
    return cases


def _call_with_gradients(answer: Callable, args: tuple) -> np.ndarray:
    problem, w, alpha, xi = args
    train, val = quadratic_grads(problem)
    return np.asarray(answer(train, val, w, alpha, xi), dtype=float)


def _first_order(train_grads, val_grads, w, alpha, xi, eps=0.01):  # xi = 0: no unrolling
    return val_grads(w, alpha)[1]


def _hessian_term_added(train_grads, val_grads, w, alpha, xi, eps=0.01):  # sign of eq. 7
    w_prime = w - xi * train_grads(w, alpha)[0]
    v, d_alpha = val_grads(w_prime, alpha)
    r = eps / np.linalg.norm(v)
    h = (train_grads(w + r * v, alpha)[1] - train_grads(w - r * v, alpha)[1]) / (2 * r)
    return d_alpha + xi * h


def _not_unrolled(train_grads, val_grads, w, alpha, xi, eps=0.01):  # v and grad_a at w, not w'
    v, d_alpha = val_grads(w, alpha)
    r = eps / np.linalg.norm(v)
    h = (train_grads(w + r * v, alpha)[1] - train_grads(w - r * v, alpha)[1]) / (2 * r)
    return d_alpha - xi * h


exercise(
    "06.3",
    title="DARTS' second-order architecture gradient",
    points=3,
    inputs=_problems,
    call=_call_with_gradients,
    compare=lambda expected, got: close(expected, got, rtol=1e-5, atol=1e-7),
    wrong=[_first_order, _hessian_term_added, _not_unrolled],
)(darts_gradient)
