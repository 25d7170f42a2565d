"""Checks for lesson 04 (regularized evolution, NSGA-II and Pareto fronts).

Every objective is MAXIMISED, as in ``nas_lab.strategies.nsga2`` (Deb et al. minimise; a minus
sign turns one into the other): a point is (accuracy, -parameters), say.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas_lab.checks import close, exercise
from nas_lab.strategies import nsga2 as moo

# ---- 04.1: the aging step of regularized evolution -----------------------------------------


def age(population: list[tuple[str, float]], child: tuple[str, float]) -> list[tuple[str, float]]:
    """Real et al. (AAAI 2019), Algorithm 1, the last two lines: add the child on the right (the
    young end) of the full population, then remove the leftmost, the oldest, however good it is.
    Members are (name, validation accuracy) pairs, oldest first."""
    return list(population[1:]) + [child]


def _populations(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for case in range(5):
        size = int(rng.integers(3, 9))
        names = [f"cell{int(i)}" for i in rng.choice(1000, size=size + 1, replace=False)]
        acc = rng.uniform(0.80, 0.98, size=size + 1).round(4)
        if case % 2 == 0:  # the oldest member is the best: aging must still remove it
            acc[0] = acc.max() + 0.01
        population = [(n, float(a)) for n, a in zip(names[:size], acc[:size], strict=True)]
        cases.append((population, (names[size], float(acc[size]))))
    return cases


def _members(answer: Callable, args: tuple) -> list[tuple]:
    """A deque, tuple or list of pairs, compared as a list of tuples."""
    return [tuple(member) for member in answer(*args)]


def _remove_the_worst(population, child):  # classic tournament evolution, not aging
    worst = min(range(len(population)), key=lambda i: population[i][1])
    return [m for i, m in enumerate(population) if i != worst] + [child]


def _youngest_first(population, child):  # child on the left, the newest removed
    return [child] + list(population[:-1])


def _no_removal(population, child):  # the population grows without bound
    return list(population) + [child]


exercise(
    "04.1",
    title="the aging step",
    points=1,
    inputs=_populations,
    call=_members,
    wrong=[_remove_the_worst, _youngest_first, _no_removal],
)(age)

# ---- 04.2: Pareto dominance -----------------------------------------------------------------


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Deb et al. (IEEE TEC 2002), Section III-A, for objectives to maximise: ``a`` is at least
    as good as ``b`` on every objective and strictly better on at least one."""
    return moo.dominates(a, b)


def _vector_pairs(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(3):
        m = int(rng.integers(2, 5))
        a = rng.integers(0, 4, size=m).astype(float)
        better_on_one = a.copy()
        better_on_one[int(rng.integers(m))] += 1  # weakly better: ties everywhere else
        worse_on_one = a.copy()
        worse_on_one[int(rng.integers(m))] -= 1
        traded = a.copy()
        traded[0], traded[1] = a[0] + 1, a[1] - 1  # better on one, worse on another
        cases += [(a, a.copy()), (better_on_one, a), (a, better_on_one), (worse_on_one, a)]
        cases += [(traded, a), (rng.integers(0, 4, size=m).astype(float), a)]
    return cases


def _bool(answer: Callable, args: tuple) -> bool:
    return bool(answer(*args))


def _strictly_better_everywhere(a, b):  # misses points that tie on some objectives
    return bool(np.all(np.asarray(a) > np.asarray(b)))


def _ties_dominate(a, b):  # "at least as good" alone: equal points dominate each other
    return bool(np.all(np.asarray(a) >= np.asarray(b)))


def _minimising(a, b):  # Deb's convention, but these objectives are to be maximised
    a, b = np.asarray(a), np.asarray(b)
    return bool(np.all(a <= b) and np.any(a < b))


exercise(
    "04.2",
    title="Pareto dominance",
    points=1,
    inputs=_vector_pairs,
    call=_bool,
    wrong=[_strictly_better_everywhere, _ties_dominate, _minimising],
)(dominates)

# ---- 04.3: the non-dominated set, by brute force --------------------------------------------


def pareto_front(points: np.ndarray) -> list[int]:
    """The indices of the rows of ``points`` that no other row dominates: the first front of
    Deb et al.'s non-dominated sort. Equal rows do not dominate each other: both stay."""
    return moo.pareto_front(points)


def _point_sets(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for case in range(6):
        n, m = int(rng.integers(5, 30)), 2 if case < 4 else 3
        points = rng.integers(0, 6, size=(n, m)).astype(float)  # small integers: many ties
        on_front = points[moo.pareto_front(points)[0]]
        shaved = on_front.copy()
        shaved[int(rng.integers(m))] -= 1  # beaten on one objective, tied on the others
        points = np.concatenate([points, [on_front, shaved]])  # and a duplicate on the front
        cases.append((points[rng.permutation(len(points))],))
    return cases


def _indices(answer: Callable, args: tuple) -> list[int]:
    """Any order, any integer type: compared as a sorted list of ints."""
    return sorted(int(i) for i in answer(*args))


def _strict_dominance(points):  # a point beaten on one objective and tied on another survives
    points = np.asarray(points)
    return [i for i, p in enumerate(points) if not any(np.all(q > p) for q in points)]


def _duplicates_knock_out(points):  # "at least as good everywhere" drops equal points too
    points = np.asarray(points)
    return [
        i
        for i, p in enumerate(points)
        if not any(np.all(q >= p) for j, q in enumerate(points) if j != i)
    ]


exercise(
    "04.3",
    title="the non-dominated front",
    points=2,
    inputs=_point_sets,
    call=_indices,
    wrong=[_strict_dominance, _duplicates_knock_out],
)(pareto_front)

# ---- 04.4: the crowding distance ------------------------------------------------------------


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """Deb et al. (IEEE TEC 2002), Section III-B: per objective, sort the front best first (a
    stable sort: equal values keep their index order); the two ends get infinity; every other
    point adds (f(previous) - f(next)) / (f_max - f_min). An objective with zero range adds
    nothing, not even infinity; a front of one or two points is all infinity. Deb's sum over
    the objectives: m times pymoo's mean, on pymoo's F = -points."""
    return moo.crowding_distance(points)


def _fronts(rng: np.random.Generator) -> list[tuple]:
    """Accuracy in (0.85, 0.99) against -parameters in the tens of thousands: objectives on
    scales 100,000 times apart, so leaving out the normalisation shows. Then the edge cases:
    one point, two equal points, a duplicated cell, a constant objective, and three objectives
    on a small integer grid, where ties decide which equal point is the end."""
    cases = []
    for n, copies in ((1, 0), (int(rng.integers(5, 12)), 0), (int(rng.integers(5, 12)), 2)):
        acc = np.sort(rng.uniform(0.85, 0.99, size=n))
        params = np.sort(rng.uniform(2e4, 2.4e5, size=n))  # better accuracy costs more
        front = np.stack([acc, -params], axis=1)
        front = np.concatenate([front, front[rng.integers(n, size=copies)]])  # repeated cells
        cases.append((front[rng.permutation(len(front))],))
    cases.append((np.repeat(rng.uniform(size=(1, 2)), 2, axis=0),))  # two equal points
    n = int(rng.integers(4, 9))
    flat = np.stack([rng.uniform(size=n), np.full(n, 0.9), rng.uniform(size=n) * 10], axis=1)
    cases.append((flat,))  # the middle objective is the same for every point
    for _ in range(2):  # three objectives, not a front: one sort order no longer fits all
        n = int(rng.integers(6, 12))
        cases.append((rng.integers(0, 4, size=(n, 3)) * [1.0, 10.0, 100.0],))
    return cases


def _not_normalised(points):  # the raw gap: parameters swamp accuracy
    points = np.asarray(points, dtype=float)
    distance = np.full(len(points), np.inf) if len(points) <= 2 else np.zeros(len(points))
    for column in points.T:
        order = np.argsort(-column, kind="stable")
        if len(points) > 2 and column.max() > column.min():
            distance[order[0]] = distance[order[-1]] = np.inf
            distance[order[1:-1]] += column[order[:-2]] - column[order[2:]]
    return distance


def _finite_boundaries(points):  # the ends get 0: NSGA-II would drop the extremes of the front
    distance = moo.crowding_distance(points)
    return np.where(np.isinf(distance), 0.0, distance)


def _sorted_once(points):  # neighbours taken in the order of the first objective only
    points = np.asarray(points, dtype=float)
    order = np.argsort(-points[:, 0], kind="stable")
    distance = np.zeros(len(points))
    distance[order[0]] = distance[order[-1]] = np.inf
    for column in points.T:
        value = column[order]
        span = value.max() - value.min()
        if len(points) > 2 and span > 0:
            distance[order[1:-1]] += np.abs(value[:-2] - value[2:]) / span
    return distance


def _ends_of_a_constant_objective(points):  # nas_lab before issue 15: infinity by index
    points = np.asarray(points, dtype=float)
    distance = np.zeros(len(points))
    for column in points.T:
        order = np.argsort(column, kind="stable")
        value = column[order]
        distance[order[0]] = distance[order[-1]] = np.inf
        span = value[-1] - value[0]
        if len(points) > 2 and span > 0:
            distance[order[1:-1]] += (value[2:] - value[:-2]) / span
    return distance


def _worst_first(points):  # np.argsort(column): right but for ties, where another point is an end
    points = np.asarray(points, dtype=float)
    if len(points) <= 2:
        return np.full(len(points), np.inf)
    distance = np.zeros(len(points))
    for column in points.T:
        order = np.argsort(column, kind="stable")
        value = column[order]
        if value[-1] > value[0]:
            distance[order[0]] = distance[order[-1]] = np.inf
            distance[order[1:-1]] += (value[2:] - value[:-2]) / (value[-1] - value[0])
    return distance


def _mean_over_objectives(points):  # pymoo's scale, not the paper's sum
    points = np.asarray(points, dtype=float)
    return moo.crowding_distance(points) / points.shape[1]


exercise(
    "04.4",
    title="the crowding distance",
    points=3,
    inputs=_fronts,
    compare=close,
    wrong=[
        _not_normalised,
        _finite_boundaries,
        _sorted_once,
        _ends_of_a_constant_objective,
        _worst_first,
        _mean_over_objectives,
    ],
)(crowding_distance)
