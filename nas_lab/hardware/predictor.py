"""A learned latency predictor (lesson 09, step 3).

:class:`LearnedLatencyPredictor` is a ridge regression fitted to whole-network measurements
(:func:`measure_networks`) on :func:`block_features`, which can learn what the lookup table's sum
leaves out (a per-network overhead, caches shared by blocks); :func:`prediction_errors` says how
far any predictor is from the measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nas_lab.arguments import is_real
from nas_lab.hardware.timing import measure_latency


def block_features(space, arch) -> np.ndarray:
    """The features of a learned latency predictor for a :class:`ChainSpace` architecture: per
    stage, a one-hot ``(kernel, expansion)`` of its first block (the one that downsamples and
    changes the width) and the *counts* of each ``(kernel, expansion)`` among its other blocks.

    These are exactly the table's terms, so a linear model on them is a lookup table learned
    from whole-network measurements; its intercept absorbs the fixed ends and whatever per-network
    overhead the block-by-block measurement misses."""
    space.validate(arch)
    choices = [(k, e) for k in space.kernels for e in space.expansions]
    index = {choice: i for i, choice in enumerate(choices)}
    out = np.zeros((space.num_stages, 2, len(choices)))
    for s, stage in enumerate(arch.stages):
        for b, choice in enumerate(stage.blocks):
            out[s, min(b, 1), index[choice]] += 1.0
    return out.reshape(-1)


@dataclass
class LearnedLatencyPredictor:
    """Ridge regression from features of an architecture to its measured latency (ms).

    ``fit`` solves ``min_w ||X w + b - y||^2 + ridge ||w||^2`` in closed form (the intercept
    ``b`` is not penalised). Neither FBNet nor Once-for-All fits latency: FBNet's latency-aware
    loss sums per-block latencies from a lookup table (Wu et al., CVPR 2019, Section 3.2,
    "Latency-Aware Loss Function"), and Once-for-All's "neural-network-twins" pair a learned
    *accuracy* predictor (trained on 16K sub-networks' measured accuracies) with a latency
    lookup table per device, built as ProxylessNAS's (Cai et al., ICLR 2020, Section 3.4): both
    are :class:`~nas_lab.hardware.lookup.LatencyTable`. A latency predictor fitted to
    whole-network measurements, as this one is, is e.g. BRP-NAS's graph convolutional network
    (Dudziak et al., NeurIPS 2020). Ours is the simplest such model: linear in the table's own
    block terms, so it is a lookup table learned from whole networks."""

    ridge: float = 1e-3
    weights: np.ndarray | None = None
    intercept: float = 0.0

    def fit(self, features: np.ndarray, latencies: Sequence[float]) -> LearnedLatencyPredictor:
        x = np.asarray(features, dtype=float)
        y = np.asarray(latencies, dtype=float)
        if x.ndim != 2 or len(x) != len(y) or len(y) < 2:
            raise ValueError(
                "fit needs a 2-D feature matrix with one row per measured latency (at least 2); "
                f"got features {x.shape} and {y.shape} latencies"
            )
        if not is_real(self.ridge) or self.ridge < 0:
            raise ValueError(f"ridge must be a number >= 0, got {self.ridge!r}")
        x_mean, y_mean = x.mean(axis=0), y.mean()
        xc = x - x_mean
        gram = xc.T @ xc + self.ridge * np.eye(x.shape[1])
        self.weights = np.linalg.lstsq(gram, xc.T @ (y - y_mean), rcond=None)[0]
        self.intercept = float(y_mean - x_mean @ self.weights)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise ValueError("the predictor is not fitted yet: call fit(features, latencies)")
        x = np.atleast_2d(np.asarray(features, dtype=float))
        if x.shape[1] != len(self.weights):
            raise ValueError(f"expected {len(self.weights)} features per row, got {x.shape[1]}")
        return x @ self.weights + self.intercept


def prediction_errors(predicted: Sequence[float], measured: Sequence[float]) -> dict:
    """How far predictions are from measurements: mean absolute percentage error, RMSE (ms),
    the largest relative error, and Kendall's tau (a search only needs the order right)."""
    from scipy.stats import kendalltau

    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    if p.shape != m.shape or p.ndim != 1 or len(p) < 2:
        raise ValueError(
            f"need two equal-length 1-D sequences of >= 2 values, got {p.shape}, {m.shape}"
        )
    relative = np.abs(p - m) / m
    return {
        "mape": float(relative.mean()),
        "max_rel": float(relative.max()),
        "rmse_ms": float(np.sqrt(np.mean((p - m) ** 2))),
        "kendall_tau": float(kendalltau(p, m).statistic),
    }


def measure_networks(
    space,
    archs: Sequence,
    threads: int = 1,
    device: str = "cpu",
    input_size: int = 8,
    batch: int = 1,
    clock: str = "wall",
) -> np.ndarray:
    """Measured latency (ms) of each architecture's whole network, built with seed 0."""
    from tqdm.auto import tqdm

    return np.array(
        [
            measure_latency(
                space.build(arch, seed=0),
                (batch, space.in_channels, input_size, input_size),
                threads,
                device,
                clock=clock,
            )
            for arch in tqdm(archs, desc="measure", leave=False)
        ]
    )
