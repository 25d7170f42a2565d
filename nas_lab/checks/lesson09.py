"""Checks for lesson 09 (hardware-aware NAS: MnasNet, ProxylessNAS, FLOPs against bytes)."""

from __future__ import annotations

import numpy as np
import torch

from nas_lab import hardware
from nas_lab.checks import close, exercise
from nas_lab.oneshot import proxylessnas
from nas_lab.strategies import wrappers

# ---- 09.1: the MnasNet reward ------------------------------------------------------------------


def mnasnet_reward(accuracy, latency, target, alpha, beta) -> float:
    """Tan et al. (CVPR 2019), eq. 2: ``ACC * (LAT / T)^w``, ``w = alpha`` if ``LAT <= T`` else
    ``beta``."""
    return wrappers.mnasnet_reward(accuracy, latency, target, alpha, beta)


def _reward_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = [(0.9, 5.0, 10.0, -0.07, -0.07), (0.9, 20.0, 10.0, 0.0, -1.0)]
    for _ in range(6):
        target = float(rng.uniform(1, 20))
        latency = float(target * rng.choice([0.5, 0.8, 1.25, 2.0]))
        alpha, beta = [(-0.07, -0.07), (0.0, -1.0), (-0.1, -0.5)][int(rng.integers(3))]
        cases.append((round(float(rng.uniform(0.5, 1.0)), 4), latency, target, alpha, beta))
    return cases


def _inverted_ratio(accuracy, latency, target, alpha, beta):  # (T / LAT)^w
    w = alpha if latency <= target else beta
    return accuracy * (target / latency) ** w


def _one_exponent(accuracy, latency, target, alpha, beta):  # beta forgotten
    return accuracy * (latency / target) ** alpha


def _additive(accuracy, latency, target, alpha, beta):  # ACC + w * log(LAT / T)
    w = alpha if latency <= target else beta
    return accuracy + w * float(np.log(latency / target))


exercise(
    "09.1",
    title="the MnasNet reward (eq. 2)",
    points=1,
    inputs=_reward_inputs,
    compare=close,
    wrong=[_inverted_ratio, _one_exponent, _additive],
)(mnasnet_reward)

# ---- 09.2: ProxylessNAS's expected latency ----------------------------------------------------


def expected_latency(logits: np.ndarray, latencies: np.ndarray) -> float:
    """Cai, Zhu & Han (ICLR 2019), eqs. 5-6 (per block, then summed over blocks):
    ``sum_i sum_j softmax(logits_i)_j LAT_ij`` for ``(blocks, candidates)`` arrays."""
    as_tensor = torch.as_tensor
    return float(proxylessnas.expected_latency(as_tensor(logits), as_tensor(latencies)))


def _logit_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(5):
        blocks, candidates = int(rng.integers(2, 7)), int(rng.integers(2, 6))
        if blocks == candidates:
            blocks += 1  # a square array would let a softmax over the wrong axis slip through
        logits = rng.normal(0, 2, size=(blocks, candidates))
        latencies = rng.uniform(0.05, 2.0, size=(blocks, candidates))
        cases.append((logits, latencies))
    return cases


def _no_softmax(logits, latencies):
    return float((np.asarray(logits) * latencies).sum())


def _softmax_over_blocks(logits, latencies):
    e = np.exp(logits - np.max(logits, axis=0))
    return float((e / e.sum(axis=0) * latencies).sum())


def _most_likely_only(logits, latencies):  # the derived network's latency: not differentiable
    rows = np.arange(len(logits))
    return float(np.asarray(latencies)[rows, np.argmax(logits, axis=1)].sum())


exercise(
    "09.2",
    title="expected latency (eqs. 5-6)",
    points=2,
    inputs=_logit_inputs,
    compare=lambda expected, got: close(expected, got, rtol=1e-6),
    wrong=[_no_softmax, _softmax_over_blocks, _most_likely_only],
)(expected_latency)

# ---- 09.3: FLOPs and bytes of a convolution -------------------------------------------------


def conv_flops_and_bytes(c_in, c_out, kernel, side, stride, groups) -> tuple[int, int]:
    """A 'same' convolution on a ``side x side`` input, batch 1: its FLOPs (2 per multiply-add)
    and the float32 bytes of its input, weights and output (Williams et al., CACM 2009)."""
    cost = hardware.conv_cost(c_in, c_out, kernel, side, stride, groups)
    return cost["flops"], cost["bytes"]


def _conv_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = [(32, 32, 3, 8, 1, 32), (16, 24, 1, 7, 2, 1)]  # depthwise; strided, odd side
    for _ in range(5):
        channels = int(rng.choice([8, 16, 24, 48]))
        depthwise = bool(rng.integers(2))
        c_out = channels if depthwise else int(rng.choice([8, 16, 32]))
        cases.append(
            (
                channels,
                c_out,
                int(rng.choice([1, 3, 5])),
                int(rng.choice([4, 7, 8, 14])),
                int(rng.choice([1, 2])),
                channels if depthwise else 1,
            )
        )
    return cases


def _dense_flops(c_in, c_out, kernel, side, stride, groups):  # groups ignored
    return conv_flops_and_bytes(c_in, c_out, kernel, side, stride, 1)[0], conv_flops_and_bytes(
        c_in, c_out, kernel, side, stride, groups
    )[1]


def _activations_only(c_in, c_out, kernel, side, stride, groups):  # weights not counted
    flops, nbytes = conv_flops_and_bytes(c_in, c_out, kernel, side, stride, groups)
    return flops, nbytes - 4 * c_out * (c_in // groups) * kernel * kernel


def _stride_ignored(c_in, c_out, kernel, side, stride, groups):
    return conv_flops_and_bytes(c_in, c_out, kernel, side, 1, groups)


exercise(
    "09.3",
    title="FLOPs and bytes of a convolution",
    points=3,
    inputs=_conv_inputs,
    call=lambda answer, args: [int(v) for v in answer(*args)],
    wrong=[_dense_flops, _activations_only, _stride_ignored],
)(conv_flops_and_bytes)
