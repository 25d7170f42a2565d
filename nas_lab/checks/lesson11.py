"""Checks for lesson 11 (zero-cost proxies)."""

from __future__ import annotations

import functools
import math

import numpy as np

from nas_lab.checks import close, exercise

# Log-scores and sums of a few hundred terms: agreement to 1e-7 relative leaves no room for a
# different formula, and plenty for summation order.
tight = functools.partial(close, rtol=1e-7, atol=1e-9)

# ---- 11.1: SNIP's connection sensitivity, summed over the network --------------------------


def snip_score(weights: list[np.ndarray], grads: list[np.ndarray]) -> float:
    """SNIP (Lee, Ajanthan & Torr, ICLR 2019, before normalisation), summed as in
    Abdelfattah et al. (ICLR 2021): sum over layers and weights of |dL/dw * w|."""
    return float(sum(np.abs(g * w).sum() for w, g in zip(weights, grads, strict=True)))


def _layers(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(5):
        shapes = [tuple(rng.integers(1, 6, size=rng.integers(1, 4))) for _ in range(3)]
        weights = [rng.normal(0, 1, size=s) for s in shapes]
        grads = [rng.normal(0, 0.1, size=s) for s in shapes]
        cases.append((weights, grads))
    return cases


def _signed_sum(weights, grads):  # the first-order loss change, not its size: terms cancel
    return float(sum((g * w).sum() for w, g in zip(weights, grads, strict=True)))


def _gradient_only(weights, grads):  # forgets the weight: a gradient magnitude, not saliency
    return float(sum(np.abs(g).sum() for g in grads))


exercise(
    "11.1",
    title="SNIP summed over the network",
    points=1,
    inputs=_layers,
    compare=close,
    wrong=[_signed_sum, _gradient_only],
)(snip_score)

# ---- 11.2: the NASWOT score from binary ReLU codes -----------------------------------------


def naswot_score(codes: np.ndarray) -> float:
    """NASWOT (Mellor et al., ICML 2021): with c_i the binary ReLU code of image i,
    K_H[i, j] = N_A - d_H(c_i, c_j) = c_i . c_j + (1 - c_i) . (1 - c_j), and s = log|K_H|."""
    c = np.asarray(codes, dtype=np.float64)
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    return float(np.linalg.slogdet(kernel)[1])


def _codes(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(5):
        batch, units = int(rng.integers(3, 9)), int(rng.integers(20, 80))
        cases.append(((rng.random((batch, units)) < rng.uniform(0.2, 0.8)).astype(np.int64),))
    return cases


def _active_only(codes):  # counts agreement on active units only: c c^T
    c = np.asarray(codes, dtype=np.float64)
    return float(np.linalg.slogdet(c @ c.T)[1])


def _hamming_kernel(codes):  # the distances, not the agreements
    c = np.asarray(codes, dtype=np.float64)
    distance = c @ (1 - c).T + (1 - c) @ c.T
    return float(np.linalg.slogdet(distance)[1])


exercise(
    "11.2",
    title="the NASWOT score from ReLU codes",
    points=2,
    inputs=_codes,
    compare=tight,
    wrong=[_active_only, _hamming_kernel],
)(naswot_score)

# ---- 11.3: SynFlow of a linear chain, in log space ------------------------------------------


def synflow_log10(weights: list[np.ndarray]) -> float:
    """log10 of SynFlow (Tanaka et al., NeurIPS 2020) for the chain x -> W_1 x -> ... ->
    W_L x with no biases: with |W| everywhere and an all-ones input, R = 1^T |W_L| ... |W_1| 1,
    and sum_w w dR/dw = L R, since every layer's scores sum to R (Tanaka et al.'s layer-wise
    conservation). The product is carried as a unit vector and a log10 scale, so that it never
    overflows or underflows float64."""
    v, log_scale = np.ones(np.shape(weights[0])[1]), 0.0
    for w in weights:
        v = np.abs(np.asarray(w, dtype=np.float64)) @ v
        size = v.max()
        if size == 0:
            return -math.inf  # no path carries any flow
        v, log_scale = v / size, log_scale + math.log10(size)
    return log_scale + math.log10(v.sum()) + math.log10(len(weights))


def _chains(rng: np.random.Generator) -> list[tuple]:
    cases = []
    # Moderate; overflowing; underflowing; overflowing midway, though the result fits.
    for exponent in (0.0, 50.0, -50.0, 90.0):
        depth = int(rng.integers(8, 14))
        widths = rng.integers(2, 6, size=depth + 1).tolist()
        scales = 10.0 ** (exponent + rng.uniform(-3, 3, size=depth))
        if exponent == 90.0:  # the second half undoes the first
            scales[depth // 2 :] = 10.0 ** (-exponent + rng.uniform(-3, 3, size=depth - depth // 2))
        cases.append(
            ([scales[k] * rng.normal(0, 1, size=(widths[k + 1], widths[k])) for k in range(depth)],)
        )
    return cases


def _naive(weights):  # the product in plain float64: inf or 0 where the chain is deep
    v = np.ones(np.shape(weights[0])[1])
    for w in weights:
        v = np.abs(w) @ v
    with np.errstate(divide="ignore"):
        return float(np.log10(len(weights) * v.sum()))


def _signed(weights):  # forgets |W|: paths of opposite sign cancel
    v, log_scale = np.ones(np.shape(weights[0])[1]), 0.0
    for w in weights:
        v = np.asarray(w) @ v
        size = np.abs(v).max()
        v, log_scale = v / size, log_scale + math.log10(size)
    return log_scale + math.log10(abs(v.sum())) + math.log10(len(weights))


def _flow_only(weights):  # R, not the sum of the scores: misses the factor L
    return synflow_log10(weights) - math.log10(len(weights))


exercise(
    "11.3",
    title="SynFlow of a deep linear chain, in log space",
    points=3,
    inputs=_chains,
    compare=tight,
    wrong=[_naive, _signed, _flow_only],
)(synflow_log10)
