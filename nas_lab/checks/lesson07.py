"""Checks for lesson 07 (weight sharing: a single path through shared weights, and how well the
supernet's ranking agrees with the truth)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from nas_lab.checks import close, exercise
from nas_lab.spaces import nb201

# ---- 07.1: the overlap of the top k --------------------------------------------------------


def top_k_overlap(estimate: np.ndarray, truth: np.ndarray, k: int) -> float:
    """The share of the k truly best architectures that are also among the k the estimate
    ranks best (larger is better in both): |top_k(estimate) & top_k(truth)| / k, the
    "precision at k" used to judge weight-sharing rankings (e.g. Zhang et al., "Deeper Insights
    into Weight Sharing in Neural Architecture Search", arXiv 2020). Inputs have no ties."""
    best_estimated = set(np.argsort(-np.asarray(estimate))[:k].tolist())
    best_true = set(np.argsort(-np.asarray(truth))[:k].tolist())
    return len(best_estimated & best_true) / k


def _scores(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for noise in (0.02, 0.05, 0.2, 0.1):
        n = int(rng.integers(20, 60))
        truth = rng.uniform(0.2, 0.98, size=n)
        estimate = truth + rng.normal(0, noise, size=n)
        cases.append((estimate, truth, int(rng.integers(3, n // 3))))
    truth = np.linspace(0.1, 0.9, 12)
    cases.append((truth[::-1].copy(), truth, 4))  # reversed ranking: no overlap at all
    return cases


def _bottom_k(estimate, truth, k):  # argsort ascending: the k worst, not the k best
    worst_estimated = set(np.argsort(np.asarray(estimate))[:k].tolist())
    worst_true = set(np.argsort(np.asarray(truth))[:k].tolist())
    return len(worst_estimated & worst_true) / k


def _count_not_share(estimate, truth, k):  # forgets to divide by k
    return float(top_k_overlap(estimate, truth, k) * k)


exercise(
    "07.1",
    title="the overlap of the top k",
    points=1,
    inputs=_scores,
    compare=close,
    wrong=[_bottom_k, _count_not_share],
)(top_k_overlap)

# ---- 07.2: a single path through a cell of shared weights ----------------------------------
#
# A linear stand-in for the supernet's cell: edge e's operation o is the matrix W[e, o] (d x d),
# ``none`` is zero and ``skip_connect`` the identity whatever W holds. Node j sums its inputs,
# node_j = sum_{i<j} op_ij(node_i), for the edges (i, j) of ``nb201.EDGES``; the cell's output is
# node 3. Every cell reuses the same W: that is weight sharing.


def single_path(x: np.ndarray, W: np.ndarray, ops: tuple[str, ...]) -> np.ndarray:
    """The output node of the cell ``ops`` (operation names in ``nb201.EDGES`` order), run with
    the shared weights ``W`` (6 x 5 x d x d, edges x operations in ``nb201.OPS`` order)."""
    nodes = [np.asarray(x, dtype=float)]
    for target in range(1, nb201.NUM_NODES):
        total = np.zeros_like(nodes[0])
        for e, (source, t) in enumerate(nb201.EDGES):
            if t != target or ops[e] == "none":
                continue
            if ops[e] == "skip_connect":
                total = total + nodes[source]
            else:
                total = total + W[e, nb201.OPS.index(ops[e])] @ nodes[source]
        nodes.append(total)
    return nodes[-1]


def _paths(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(5):
        d = int(rng.integers(2, 6))
        W = rng.normal(0, 0.7, size=(len(nb201.EDGES), len(nb201.OPS), d, d))
        ops = tuple(str(op) for op in rng.choice(nb201.OPS, size=len(nb201.EDGES)))
        cases.append((rng.normal(size=d), W, ops))
    d = 3
    W = rng.normal(0, 0.7, size=(6, 5, d, d))
    cases.append((rng.normal(size=d), W, ("nor_conv_3x3",) * 3 + ("skip_connect",) * 3))
    return cases


def _last_edge_only(x, W, ops):  # a node keeps only its last input instead of the sum
    nodes = [np.asarray(x, dtype=float)]
    for target in range(1, nb201.NUM_NODES):
        out = np.zeros_like(nodes[0])
        for e, (source, t) in enumerate(nb201.EDGES):
            if t == target and ops[e] != "none":
                is_skip = ops[e] == "skip_connect"
                out = nodes[source] if is_skip else W[e, nb201.OPS.index(ops[e])] @ nodes[source]
        nodes.append(out)
    return nodes[-1]


def _skip_uses_weights(x, W, ops):  # skip_connect run through W like any other operation
    nodes = [np.asarray(x, dtype=float)]
    for target in range(1, nb201.NUM_NODES):
        total = np.zeros_like(nodes[0])
        for e, (source, t) in enumerate(nb201.EDGES):
            if t == target and ops[e] != "none":
                total = total + W[e, nb201.OPS.index(ops[e])] @ nodes[source]
        nodes.append(total)
    return nodes[-1]


exercise(
    "07.2",
    title="a single path through shared weights",
    points=2,
    inputs=_paths,
    compare=close,
    wrong=[_last_edge_only, _skip_uses_weights],
)(single_path)

# ---- 07.3: Kendall's tau-b, ties included -------------------------------------------------


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b (Kendall, Biometrika 1945): (concordant - discordant) pairs over
    sqrt((n0 - n1)(n0 - n2)), n0 = n(n-1)/2, n1 and n2 the pairs tied in a and in b."""
    return float(stats.kendalltau(a, b, variant="b").statistic)


def _rankings(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for levels in (5, 8, 12, 30):  # accuracies on a few hundred images tie often
        n = int(rng.integers(15, 40))
        truth = rng.uniform(0.3, 0.95, size=n)
        estimate = np.round((truth + rng.normal(0, 0.08, size=n)) * levels) / levels
        cases.append((estimate, np.round(truth * 50) / 50))
    return cases


def _tau_a(a, b):  # no correction for ties: divides by all n(n-1)/2 pairs
    a, b = np.asarray(a), np.asarray(b)
    i, j = np.triu_indices(len(a), 1)
    s = np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
    return float(s.sum() / len(s))


def _spearman_instead(a, b):
    return float(stats.spearmanr(a, b).statistic)


exercise(
    "07.3",
    title="Kendall's tau-b with ties",
    points=3,
    inputs=_rankings,
    compare=lambda expected, got: close(expected, got, rtol=1e-7, atol=1e-9),
    wrong=[_tau_a, _spearman_instead],
)(kendall_tau)
