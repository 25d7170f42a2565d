"""Checks for lesson 00 (welcome: the NAS problem)."""

from __future__ import annotations

import numpy as np

from nas_lab import first_search
from nas_lab.checks import Reason, close, equal, exercise

# ---- 00.1: the size of a cell space -------------------------------------------------------


def _size_inputs(rng: np.random.Generator) -> list[tuple]:
    return [(int(rng.integers(2, 7)), int(rng.integers(2, 9))) for _ in range(6)]


def _size_edges_times_ops(num_nodes: int, num_ops: int) -> int:  # adds where it should multiply
    return num_ops * num_nodes * (num_nodes - 1) // 2


def _size_ops_per_node(num_nodes: int, num_ops: int) -> int:  # one choice per node, not per edge
    return num_ops**num_nodes


exercise(
    "00.1",
    title="size of a cell search space",
    points=1,
    inputs=_size_inputs,
    wrong=[_size_edges_times_ops, _size_ops_per_node],
)(first_search.cell_space_size)

# ---- 00.2: the incumbent trajectory -------------------------------------------------------


def _scores_inputs(rng: np.random.Generator) -> list[tuple]:
    return [(rng.uniform(0, 1, size=int(rng.integers(5, 15))).round(3).tolist(),) for _ in range(4)]


def _running_mean(scores):
    return list(np.cumsum(scores) / np.arange(1, len(scores) + 1))


def _sorted_scores(scores):
    return sorted(scores)


exercise(
    "00.2",
    title="best score so far",
    points=1,
    inputs=_scores_inputs,
    compare=close,
    wrong=[_running_mean, _sorted_scores],
)(first_search.incumbent)

# ---- 00.3: random search -------------------------------------------------------------------
# Answers draw their own random numbers, so a search is checked by what it must do, not by
# matching the reference's samples: `budget` distinct candidates, scores as evaluated, the best.


def _search_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(3):
        n = int(rng.integers(12, 25))
        names = [f"arch{i}" for i in rng.permutation(100)[:n]]
        table = dict(zip(names, rng.uniform(0.1, 0.99, size=n).round(4).tolist(), strict=True))
        cases.append((names, table, int(rng.integers(n // 2, n)), int(rng.integers(1000))))
    return cases


def _run_search(answer, args: tuple) -> dict:
    candidates, table, budget, seed = args
    calls: list = []

    def evaluate(arch):
        calls.append(arch)
        return table[arch]

    best, history = answer(list(candidates), evaluate, budget, seed)
    return {"budget": budget, "table": table, "calls": calls, "best": best, "history": history}


def _compare_search(expected: dict, got: dict) -> Reason:
    # Scores come from the reference's side (the grader's own process), never from the answer's.
    calls, budget, table = got["calls"], expected["budget"], expected["table"]
    if len(calls) != budget:
        return f"evaluate was called {len(calls)} times; the budget is {budget}"
    if len(set(calls)) != len(calls):
        return "some candidates were evaluated twice: draw without replacement"
    if not set(calls) <= set(table):
        return "evaluate was called on something that is not one of the candidates"
    true_scores = [table[a] for a in calls]
    if [a for a, _ in got["history"]] != calls:
        return "history must list the evaluated candidates in the order they were evaluated"
    if equal([s for _, s in got["history"]], true_scores) is not None:
        return "history must pair each candidate with the score evaluate returned for it"
    best = calls[int(np.argmax(true_scores))]
    return None if got["best"] == best else f"the best evaluated was {best!r}, got {got['best']!r}"


def _with_replacement(candidates, evaluate, budget, seed):
    rng = np.random.default_rng(seed)
    history = [(c, evaluate(c)) for c in rng.choice(candidates, size=budget, replace=True)]
    return max(history, key=lambda p: p[1])[0], history


def _returns_last(candidates, evaluate, budget, seed):
    _, history = first_search.random_search(candidates, evaluate, budget, seed)
    return history[-1][0], history


exercise(
    "00.3",
    title="random search",
    points=2,
    inputs=_search_inputs,
    call=_run_search,
    compare=_compare_search,
    wrong=[_with_replacement, _returns_last],
)(first_search.random_search)
