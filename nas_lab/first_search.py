"""Lesson 00's first search, in miniature: a search space, a strategy, an estimator.

Elsken, Metzen & Hutter ("Neural Architecture Search: A Survey", JMLR 2019) split every NAS
method into these three parts. Here they are at their smallest: the space is a list of
candidates, the estimator is any function that scores one, and the strategy is random search,
the baseline every method must beat (Li & Talwalkar, "Random Search and Reproducibility for
NAS", UAI 2019).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

Arch = TypeVar("Arch")


def cell_space_size(num_nodes: int, num_ops: int) -> int:
    """Number of cells in a DAG of ``num_nodes`` nodes where every pair i < j is joined by an
    edge carrying one of ``num_ops`` operations: ``num_ops ** (num_nodes * (num_nodes - 1) / 2)``.
    The NAS-Bench-201 cell (4 nodes, 5 operations) gives 5**6 = 15,625."""
    num_edges = num_nodes * (num_nodes - 1) // 2
    return num_ops**num_edges


def incumbent(scores: Sequence[float]) -> list[float]:
    """The best score seen so far after each evaluation (the incumbent's trajectory)."""
    best, trajectory = -np.inf, []
    for score in scores:
        best = max(best, score)
        trajectory.append(best)
    return trajectory


def random_search(
    candidates: Sequence[Arch],
    evaluate: Callable[[Arch], float],
    budget: int,
    seed: int,
) -> tuple[Arch, list[tuple[Arch, float]]]:
    """Evaluate ``budget`` distinct candidates drawn uniformly at random; return the best one and
    the history of (candidate, score) pairs in evaluation order."""
    if not 0 < budget <= len(candidates):
        raise ValueError(f"budget must be between 1 and {len(candidates)}, got {budget}")
    order = np.random.default_rng(seed).permutation(len(candidates))[:budget]
    history = [(candidates[i], evaluate(candidates[i])) for i in order]
    best, _ = max(history, key=lambda pair: pair[1])
    return best, history
