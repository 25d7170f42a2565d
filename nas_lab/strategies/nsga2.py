"""NSGA-II: search for the trade-off between accuracy and cost, not for one best cell.

Deb, Pratap, Agarwal & Meyarivan, "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II",
IEEE Transactions on Evolutionary Computation 6(2), 2002. With two or more objectives there is
no single best architecture, only a Pareto front: the cells that no other cell beats on every
objective at once. NSGA-II evolves a population toward that front and spreads it along it.

Convention: every objective is MAXIMISED (Deb minimises; a minus sign converts one to the
other). A strategy names its objectives as fields of ``bench.Result`` with a sign, e.g.
``("val_acc", "-params")``: maximise accuracy, minimise parameters.

The file follows the paper:

1. dominance and the fast non-dominated sort (Section III-A);
2. the crowding distance and the crowded-comparison operator (Section III-B);
3. elitist survival of parents plus children (Section III-C, the main loop);
4. measuring a front: ``pareto_front`` (from :mod:`nas_lab.pareto`), the 2-D hypervolume,
   the true front of the table and the hypervolume of a search's reported front over time;
5. ``NSGA2``, the ask-and-tell strategy over NAS-Bench-201 cells.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from nas_lab.bench import Benchmark, Result, SimulatedClock
from nas_lab.pareto import as_points, pareto_front
from nas_lab.spaces import as_rng, nb201
from nas_lab.strategies.evolution import Mutation, crossover

# --------------------------------------------------------------------------------------------
# 1. Dominance and the fast non-dominated sort (Section III-A)
# --------------------------------------------------------------------------------------------


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` dominates ``b``: at least as good on every objective, strictly better on one."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a >= b) and np.any(a > b))


def domination_matrix(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """D[p, q] = True when point p dominates point q: all n x n comparisons at once."""
    points = as_points(points)
    at_least = np.ones((len(points), len(points)), dtype=bool)
    better = np.zeros_like(at_least)
    for column in points.T:  # one objective at a time keeps memory at n x n
        at_least &= column[:, None] >= column[None, :]
        better |= column[:, None] > column[None, :]
    return at_least & better


def non_dominated_sort(points: Sequence[Sequence[float]] | np.ndarray) -> list[list[int]]:
    """Fronts F1, F2, ... as lists of row indices (Deb et al. 2002, Fig. "fast-non-dominated-sort").

    For every p: S_p = the points p dominates, n_p = how many points dominate p. F1 holds the
    points with n_p = 0. Removing a front decrements n_q for every q in S_p of its members; the
    points whose count reaches 0 form the next front. O(M N^2). Equal points share a front.
    """
    dominated_by = domination_matrix(points)  # row p is S_p
    count = dominated_by.sum(axis=0)  # n_p
    unsorted = np.ones(len(count), dtype=bool)
    fronts: list[list[int]] = []
    front = np.flatnonzero(count == 0)
    while front.size:
        fronts.append(front.tolist())
        unsorted[front] = False
        count -= dominated_by[front].sum(axis=0)  # for p in F_i, for q in S_p: n_q -= 1
        front = np.flatnonzero((count == 0) & unsorted)
    return fronts


# --------------------------------------------------------------------------------------------
# 2. Crowding distance and the crowded-comparison operator (Section III-B)
# --------------------------------------------------------------------------------------------


def crowding_distance(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The crowding distance of each point of ONE front (Deb et al. 2002, Section III-B,
    "crowding-distance-assignment"): for each objective m, sort the front by it; the two
    boundary points get infinity, every other point i adds the normalised gap between its
    neighbours,

        I[i] += (f_m(i+1) - f_m(i-1)) / (f_m^max - f_m^min).

    The sum is half the perimeter of the box around i spanned by its neighbours: large means
    lonely, a point worth keeping for spread.

    Where the paper leaves a case open, this follows pymoo (``calc_crowding_distance``, the
    ``"cd"`` crowding of its NSGA-II, version 0.6.1 on):

    - an objective on which every point of the front is equal (zero range) contributes nothing,
      to the boundary points too: the normalisation is undefined there, and no point stretches
      the front along it;
    - a front of one or two points gets infinity everywhere (all its points are boundaries);
    - the sort is best first and stable: equal values keep their index order. That is Deb's
      ascending sort of a minimised objective, and pymoo's ``mergesort`` of its F, which is
      ``-points`` here (pymoo minimises). With ties it matters which of the equal points is
      the boundary or which neighbour each sees, so sorting worst first gives other numbers.
      Duplicate points are kept, not filtered (each one sees the other as a neighbour at gap 0).

    One difference, a constant factor: this is Deb's SUM over the m objectives; pymoo divides
    the sum by m (its distance is the mean). So ``crowding_distance(points) == m *
    calc_crowding_distance(-points)``, infinities and zeros included; every front gets the same
    factor, so the order of the points, all that NSGA-II reads, is the same."""
    points = as_points(points)
    n = len(points)
    if n <= 2:
        return np.full(n, np.inf)
    distance = np.zeros(n)
    for column in points.T:
        order = np.argsort(-column, kind="stable")  # best first; ties in index order
        value = column[order]
        span = value[0] - value[-1]
        if span == 0:  # a constant objective says nothing about crowding
            continue
        distance[order[0]] = distance[order[-1]] = np.inf
        distance[order[1:-1]] += (value[:-2] - value[2:]) / span
    return distance


def rank_and_crowding(
    points: Sequence[Sequence[float]] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For every point, its front number (0 = non-dominated) and its crowding distance within
    its front: the two attributes the crowded-comparison operator reads."""
    points = as_points(points)
    rank, crowd = np.zeros(len(points), dtype=int), np.zeros(len(points))
    for number, front in enumerate(non_dominated_sort(points)):
        rank[front] = number
        crowd[front] = crowding_distance(points[front])
    return rank, crowd


def crowded_better(i: int, j: int, rank: np.ndarray, crowd: np.ndarray) -> bool:
    """The crowded-comparison operator, i <_n j: a better (lower) front wins; within one front,
    the less crowded point (larger distance) wins."""
    return bool(rank[i] < rank[j] or (rank[i] == rank[j] and crowd[i] > crowd[j]))


def binary_tournament(rank: np.ndarray, crowd: np.ndarray, rng: np.random.Generator) -> int:
    """Draw two members uniformly and return the index of the crowded-comparison winner (the
    first drawn if neither is better)."""
    i, j = (int(x) for x in rng.integers(len(rank), size=2))
    return j if crowded_better(j, i, rank, crowd) else i


# --------------------------------------------------------------------------------------------
# 3. Elitist survival (Section III-C): R_t = P_t u Q_t, keep the best N
# --------------------------------------------------------------------------------------------


def select_survivors(points: Sequence[Sequence[float]] | np.ndarray, n: int) -> list[int]:
    """The N survivors of parents and children together: whole fronts F1, F2, ... while they
    fit; from the first front that does not fit, the least crowded points fill what is left
    (of equal distances, the lower row: pymoo's ``RankAndCrowding`` breaks such ties at random;
    otherwise it keeps the same set). Returns row indices. Parents compete with children, so a
    good parent is never lost."""
    points = as_points(points)
    if not 0 <= n <= len(points):
        raise ValueError(f"can keep between 0 and {len(points)} points, asked for {n}")
    chosen: list[int] = []
    for front in non_dominated_sort(points):
        if len(chosen) + len(front) <= n:
            chosen += front
            continue
        crowd = crowding_distance(points[front])
        most_lonely = np.argsort(-crowd, kind="stable")[: n - len(chosen)]
        chosen += [front[i] for i in most_lonely]
        break
    return chosen


# --------------------------------------------------------------------------------------------
# 4. Measuring a front
# --------------------------------------------------------------------------------------------


def hypervolume_2d(
    points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]
) -> float:
    """The area dominated by ``points`` and bounded below by ``reference`` (both objectives
    maximised; the reference must be worse than every point that should count). Zitzler & Thiele,
    "Multiobjective Optimization Using Evolutionary Algorithms: A Comparative Case Study",
    PPSN 1998. Larger is better; it grows both by approaching the true front and by covering it.

    Sweep: sort the front by the first objective, best first; the second then rises, and each
    point adds the strip (x_i - r_x) * (y_i - y_previous)."""
    points = as_points(points)
    reference = np.asarray(reference, dtype=float)
    if points.shape[1] != 2 or reference.shape != (2,):
        raise ValueError(
            f"hypervolume_2d takes points with 2 objectives and a reference of 2 values; got "
            f"points of shape {points.shape} and reference {reference.tolist()}"
        )
    points = points[np.all(points > reference, axis=1)]  # only what beats the reference counts
    front = points[pareto_front(points)]
    front = front[np.argsort(-front[:, 0], kind="stable")]
    area, y_previous = 0.0, reference[1]
    for x, y in front:
        if y > y_previous:
            area += (x - reference[0]) * (y - y_previous)
            y_previous = y
    return float(area)


# Columns of the benchmark table for each cost a front can trade accuracy against.
COST_COLUMNS = {"params": "params", "flops": "flops", "latency_ms": "latency_ms_batch1"}


def _cost_column(cost: str) -> str:
    if cost not in COST_COLUMNS:
        raise ValueError(f"unknown cost {cost!r}; choose from {', '.join(COST_COLUMNS)}")
    return COST_COLUMNS[cost]


def table_points(bench: Benchmark, cost: str = "params") -> np.ndarray:
    """(test accuracy, -cost) of every cell in the table, test accuracy the mean over seeds:
    the points whose ``pareto_front`` is the true front, found by brute force. Both columns are
    to be maximised, as everywhere in this file."""
    test = bench.column("test_acc")
    return np.stack([test, -bench.column(_cost_column(cost)).astype(float)], axis=1)


def cheapest_reaching(points: Sequence[Sequence[float]] | np.ndarray, min_acc: float) -> int | None:
    """The row of the cheapest point that reaches accuracy ``min_acc``, or None if none does:
    the question a deployment asks of a front ("the smallest cell with at least 98%?"). Points
    are (accuracy, -cost), as ``table_points`` gives them. The answer always lies on the Pareto
    front: a point that dominated it would be as accurate and cheaper. Of equally cheap points
    the more accurate wins, then the lower row."""
    points = as_points(points)
    if points.shape[1] != 2:
        raise ValueError(
            f"points must have 2 columns, (accuracy, -cost) as table_points gives them; "
            f"got shape {points.shape}"
        )
    ok = np.flatnonzero(points[:, 0] >= min_acc)
    if ok.size == 0:
        return None
    # lexsort sorts by its last key first: the largest -cost (cheapest), then the most accurate
    return int(ok[np.lexsort((ok, -points[ok, 0], -points[ok, 1]))[0]])


def run_front(
    clock: SimulatedClock,
    bench: Benchmark,
    cost: str = "params",
    until: float | None = None,
    choose_on: str = "val_acc",
) -> list[str]:
    """The cells a search would report as its front after simulated time ``until`` (default:
    the end): those no other cell it trained beats on both validation accuracy, as the run
    observed it, and ``cost``. Like a single-objective incumbent, the front is chosen on what
    the search saw (never the test set); each cell is listed once, in the order it was found.

    ``choose_on="test_acc"`` is the oracle that no real search has: the front of the trained
    cells by their mean test accuracy. The gap between the two fronts is what choosing on one
    noisy validation score costs; the oracle front measures what the search trained."""
    if choose_on not in ("val_acc", "test_acc"):
        raise ValueError(f"choose_on must be 'val_acc' or 'test_acc', got {choose_on!r}")
    column = bench.column(_cost_column(cost))
    test = bench.column("test_acc")
    seen: dict[str, tuple[float, float]] = {}
    for elapsed, arch, val_acc, _ in clock.trajectory:
        if until is not None and elapsed > until:
            break
        row = bench.row(arch)
        accuracy = val_acc if choose_on == "val_acc" else float(test[row])
        seen.setdefault(arch, (accuracy, -float(column[row])))
    archs = list(seen)
    if not archs:
        return []
    return [archs[i] for i in pareto_front(np.array([seen[a] for a in archs]))]


def hypervolume_curve(
    clock: SimulatedClock,
    bench: Benchmark,
    reference: Sequence[float],
    grid: Sequence[float],
    cost: str = "params",
    choose_on: str = "val_acc",
) -> np.ndarray:
    """The hypervolume of the run's reported front at each time in ``grid``, every reported
    cell scored by its mean test accuracy and its cost (``table_points``). Divided by the
    hypervolume of the whole table, it is 1 only for a run that found the entire true front:
    the multi-objective counterpart of regret, chosen on validation, reported on test.
    ``choose_on="test_acc"`` scores the oracle front instead (see ``run_front``)."""
    points = table_points(bench, cost)
    curve = []
    for until in np.asarray(grid, dtype=float):
        front = run_front(clock, bench, cost, until, choose_on)
        rows = [bench.row(arch) for arch in front]
        curve.append(hypervolume_2d(points[rows], reference) if rows else 0.0)
    return np.array(curve)


# --------------------------------------------------------------------------------------------
# 5. The strategy over NAS-Bench-201 cells
# --------------------------------------------------------------------------------------------

OBJECTIVES = ("val_acc", "params", "flops", "latency_ms", "train_time")


def parse_objectives(objectives: Sequence[str]) -> list[tuple[str, float]]:
    """``("val_acc", "-params")`` -> ``[("val_acc", 1.0), ("params", -1.0)]``: a Result field
    and the sign that makes it an objective to maximise."""
    if isinstance(objectives, str) or len(objectives) == 0:
        raise ValueError(
            f"objectives must be a non-empty sequence of names such as ('val_acc', '-params'), "
            f"got {objectives!r}"
        )
    parsed = []
    for name in objectives:
        field = str(name).removeprefix("-")
        if field == "test_acc":
            raise ValueError("search on 'val_acc', not 'test_acc': the test set is for reporting")
        if field not in OBJECTIVES:
            raise ValueError(
                f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}, with a leading "
                "'-' to minimise (e.g. '-params')"
            )
        parsed.append((field, -1.0 if str(name).startswith("-") else 1.0))
    return parsed


class Individual(NamedTuple):
    """One evaluated cell and its objective vector (signed: larger is better)."""

    cell: nb201.Cell
    objectives: np.ndarray


class NSGA2:
    """NSGA-II as an ask-and-tell strategy, one generation of N children at a time.

    Generation 0 is N random cells. Each later generation breeds N children from the current
    population P_t: two binary tournaments (crowded comparison) pick the parents, uniform
    crossover mixes their edges, and a mutation changes one edge. Once all N children are
    told, parents and children compete and the best N survive (``select_survivors``).
    ``history`` keeps everything told; ``front()`` is the run's non-dominated set.

    With ``unique=True`` a child that repeats a cell already told, or bred earlier in the same
    generation (up to isomorphism), is bred again, up to ``max_tries`` times: a search on a
    clock pays again for a repeat and learns nothing from it. The paper does not need this
    (real-valued genes rarely repeat); pymoo's genetic algorithms drop duplicates by default
    (``eliminate_duplicates``, against the current population; here against everything told).
    Off by default: the paper's algorithm.
    """

    def __init__(
        self,
        objectives: Sequence[str] = ("val_acc", "-params"),
        population_size: int = 20,
        seed: int | np.random.Generator = 0,
        mutation: Mutation = nb201.mutate,
        unique: bool = False,
        max_tries: int = 20,
    ):
        if int(population_size) != population_size or population_size < 2:
            raise ValueError(f"population_size must be an integer >= 2, got {population_size!r}")
        if int(max_tries) != max_tries or max_tries < 1:
            raise ValueError(f"max_tries must be an integer >= 1, got {max_tries!r}")
        if not callable(mutation):
            raise ValueError(f"mutation must be a function (cell, rng) -> cell, got {mutation!r}")
        self._signed_fields = parse_objectives(objectives)
        self.objectives = tuple(objectives)
        self.population_size = int(population_size)
        self.mutation = mutation
        self.unique, self.max_tries = bool(unique), int(max_tries)
        self.rng = as_rng(seed)
        self.population: list[Individual] = []  # P_t, the survivors
        self.children: list[Individual] = []  # Q_t, told so far this generation
        self.history: list[Individual] = []
        self.generation = 0
        self._to_ask: deque[nb201.Cell] = deque()

    def evaluate(self, result: Result) -> np.ndarray:
        """The signed objective vector of a result (every entry to be maximised)."""
        return np.array([sign * float(getattr(result, f)) for f, sign in self._signed_fields])

    def ask(self) -> nb201.Cell:
        if not self._to_ask:
            self._to_ask.extend(self.breed() if self.population else self._random_generation())
        return self._to_ask.popleft()

    def tell(self, cell: nb201.Cell, result: Result) -> None:
        child = Individual(nb201.as_cell(cell), self.evaluate(result))
        self.children.append(child)
        self.history.append(child)
        if len(self.children) >= self.population_size:  # generation complete: R_t = P_t u Q_t
            combined = self.population + self.children
            survivors = select_survivors(self.points(combined), self.population_size)
            self.population = [combined[i] for i in survivors]
            self.children, self.generation = [], self.generation + 1
            self._to_ask.clear()  # children bred from the old parents are stale

    def breed(self) -> list[nb201.Cell]:
        """Q_t: N children by binary tournament, uniform crossover and mutation (with
        ``unique``: each bred again while it repeats a cell seen, at most ``max_tries`` times)."""
        rank, crowd = rank_and_crowding(self.points(self.population))
        seen = self._seen()
        return [
            self._draw(lambda: self._child(rank, crowd), seen) for _ in range(self.population_size)
        ]

    def _child(self, rank: np.ndarray, crowd: np.ndarray) -> nb201.Cell:
        a = self.population[binary_tournament(rank, crowd, self.rng)]
        b = self.population[binary_tournament(rank, crowd, self.rng)]
        return self.mutation(crossover(a.cell, b.cell, self.rng), self.rng)

    def _random_generation(self) -> list[nb201.Cell]:
        seen = self._seen()
        return [
            self._draw(lambda: nb201.sample(self.rng), seen) for _ in range(self.population_size)
        ]

    def _seen(self) -> set[nb201.Cell]:
        """The classes told so far (their representatives), when repeats are to be avoided."""
        return {i.cell.canonical() for i in self.history} if self.unique else set()

    def _draw(self, make: Callable[[], nb201.Cell], seen: set[nb201.Cell]) -> nb201.Cell:
        """One cell from ``make``; with ``unique``, made again while its class is in ``seen``
        (at most ``max_tries`` draws in all), then added to ``seen``."""
        cell, tries = make(), 1
        while self.unique and cell.canonical() in seen and tries < self.max_tries:
            cell, tries = make(), tries + 1
        if self.unique:
            seen.add(cell.canonical())
        return cell

    @staticmethod
    def points(individuals: Sequence[Individual]) -> np.ndarray:
        """The (n, m) array of signed objective vectors."""
        if not individuals:
            return np.zeros((0, 1))
        return np.stack([individual.objectives for individual in individuals])

    def front(self) -> list[Individual]:
        """The non-dominated individuals among all told so far: the run's Pareto front."""
        return [self.history[i] for i in pareto_front(self.points(self.history))]

    def __repr__(self) -> str:
        return (
            f"NSGA2(objectives={self.objectives}, population_size={self.population_size}, "
            f"unique={self.unique})"
        )
