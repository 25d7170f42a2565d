"""Pareto fronts, and the best architecture under a limit: one home for every lesson that trades
accuracy against a cost (04's NSGA-II, 09's latency limit, 10's Once-for-All deployment).

Two fronts with two meanings:

- :func:`pareto_front` takes m objectives, all *maximised* (negate a cost first), and returns the
  non-dominated rows: NSGA-II's first front (Deb et al., IEEE TEVC 2002).
- :func:`latency_front` takes a latency (minimised) and an accuracy (maximised) and sweeps them
  by latency: the staircase a deployment chooses from.

:func:`best_under_limit` is the most accurate point within a latency limit; it always lies on the
latency front.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_points(points: ArrayLike) -> np.ndarray:
    """Objective vectors as an (n, m) float array; a clear error for anything else."""
    array = np.asarray(points, dtype=float)
    if array.ndim == 1 and array.size == 0:
        return array.reshape(0, 1)
    if array.ndim != 2:
        raise ValueError(
            f"points must be a 2-D array, one row per solution and one column per objective; "
            f"got shape {array.shape} (for one objective pass a column, e.g. x[:, None])"
        )
    if np.isnan(array).any():
        raise ValueError("points contain NaN; drop or fill those solutions before sorting")
    return array


def pareto_front(points: ArrayLike, chunk: int = 256) -> list[int]:
    """The indices of the non-dominated points (the first front, all objectives maximised), in
    index order. Checks rows in chunks, so a whole table (thousands of points) needs no n x n
    matrix."""
    points = as_points(points)
    keep: list[int] = []
    for start in range(0, len(points), chunk):
        rows = points[start : start + chunk]  # these c rows against all n: (c, n) comparisons
        at_least = np.ones((len(rows), len(points)), dtype=bool)
        better = np.zeros_like(at_least)
        for j in range(points.shape[1]):  # one objective at a time: 2-D arrays, no (c, n, m)
            at_least &= points[None, :, j] >= rows[:, None, j]
            better |= points[None, :, j] > rows[:, None, j]
        keep.extend(start + np.flatnonzero(~(at_least & better).any(axis=1)))
    return [int(i) for i in keep]


def _latency_accuracy(latency: ArrayLike, accuracy: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    lat, acc = np.asarray(latency, dtype=float), np.asarray(accuracy, dtype=float)
    if lat.shape != acc.shape or lat.ndim != 1:
        raise ValueError(
            f"latency and accuracy must be equal-length 1-D arrays, got {lat.shape}, {acc.shape}"
        )
    return lat, acc


def latency_front(latency: ArrayLike, accuracy: ArrayLike) -> list[int]:
    """Indices of the accuracy-latency Pareto front, by increasing latency: sweep the points by
    latency (the most accurate first among equals) and keep each one more accurate than all
    faster ones. Of exact duplicates, one stays."""
    lat, acc = _latency_accuracy(latency, accuracy)
    front: list[int] = []
    best = -np.inf
    for i in np.lexsort((-acc, lat)):
        if acc[i] > best:
            front.append(int(i))
            best = acc[i]
    return front


def best_under_limit(latency: ArrayLike, accuracy: ArrayLike, limit: float) -> int | None:
    """Index of the most accurate point whose latency is at most ``limit`` (the faster one among
    equally accurate points), or None when none is: what a deployment under that limit gets."""
    lat, acc = _latency_accuracy(latency, accuracy)
    feasible = np.flatnonzero(lat <= limit)
    if not len(feasible):
        return None
    return int(feasible[np.lexsort((lat[feasible], -acc[feasible]))[0]])


def pareto_pick(latency: ArrayLike, accuracy: ArrayLike, limit: float) -> dict:
    """The latency front, the best point under ``limit`` and how many points meet it: ``front``
    (indices sorted by latency), ``pick`` (an index, or None) and ``feasible`` (a count)."""
    lat, acc = _latency_accuracy(latency, accuracy)
    if not len(lat):
        raise ValueError("latency and accuracy are empty: there is nothing to pick from")
    return {
        "front": latency_front(lat, acc),
        "pick": best_under_limit(lat, acc, limit),
        "feasible": int((lat <= limit).sum()),
    }
