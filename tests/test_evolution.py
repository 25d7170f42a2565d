"""Random search, regularized evolution and NSGA-II (lesson 04) on landscapes with known answers.

The synthetic table covers all 6,466 unique cells. Its accuracy is SEPARABLE: the sum over edges
of a score per (edge, operation), so the best cell is known and a strategy that keeps good edges
(evolution) must beat one that does not (random search). Its parameter count is separable too and
grows with the operations that score well, so accuracy and size conflict and the true Pareto
front is known by brute force.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from nas_lab.bench import Benchmark, Result
from nas_lab.spaces import nb201
from nas_lab.strategies import nsga2 as moo
from nas_lab.strategies import run
from nas_lab.strategies.evolution import Member, RegularizedEvolution, crossover, tournament
from nas_lab.strategies.random_search import RandomSearch

SEEDS = range(20)
BUDGET = 150.0  # simulated seconds; every cell costs 1 s, so about 150 different cells of 6,466

# Per operation: a base score and a parameter cost (none, skip, conv1x1, conv3x3, avg_pool).
BASE_SCORE = np.array([0.0, 0.3, 0.6, 0.9, 0.4])
PARAMS = np.array([0, 0, 100, 900, 0])


def separable_table(seed: int = 0, noise: float = 0.002) -> Benchmark:
    """val_acc = mean over edges of score[edge, op] (+ small noise per seed); params = sum over
    edges of PARAMS[op] + a little per-edge jitter, so both are known functions of the cell."""
    rng = np.random.default_rng(seed)
    score = BASE_SCORE[None, :] + 0.1 * rng.random((len(nb201.EDGES), len(nb201.OPS)))
    cost = PARAMS[None, :] + rng.integers(0, 20, size=(len(nb201.EDGES), len(nb201.OPS)))
    cells = nb201.unique_cells()
    op_ids = np.array([[nb201.OPS.index(op) for op in c.ops] for c in cells])
    edges = np.arange(len(nb201.EDGES))
    quality = score[edges, op_ids].mean(axis=1)
    params = cost[edges, op_ids].sum(axis=1)
    final = quality[:, None] + noise * rng.standard_normal((len(cells), 2))
    val = np.stack([final - 0.1, final], axis=2)  # two epochs
    return Benchmark(
        {
            "archs": np.array([str(c) for c in cells]),
            "seeds": np.array([0, 1]),
            "val_acc": val,
            "train_loss": 1 - val,
            "test_acc": np.repeat(quality[:, None], 2, axis=1),
            "train_time": np.ones((len(cells), 2)),
            "params": params.astype(np.int64),
            "flops": 10 * params.astype(np.int64),
            "latency_ms_batch1": params / 1000.0,
            "latency_ms_train_batch": params / 100.0,
        },
        manifest={},
    )


@pytest.fixture(scope="module")
def table() -> Benchmark:
    return separable_table()


def best_found(clock) -> float:
    return max(val for _, _, val, _ in clock.trajectory)


def fake_result(val_acc: float, params: int = 0) -> Result:
    return Result("", val_acc, None, 0.0, 1.0, 1, params, 0, 0.0)


# ---------------------------------------------------------------------------------------------
# Random search
# ---------------------------------------------------------------------------------------------


def test_random_search_draws_uniform_cells_from_its_seed():
    strategy, reference = RandomSearch(seed=3), np.random.default_rng(3)
    asked = [strategy.ask() for _ in range(3000)]
    assert asked[:20] == [nb201.sample(reference) for _ in range(20)]
    counts = np.array([[sum(c.ops[e] == op for c in asked) for op in nb201.OPS] for e in range(6)])
    assert stats.chisquare(counts.ravel()).pvalue > 1e-4  # every (edge, op) about 600 times


# ---------------------------------------------------------------------------------------------
# Regularized evolution: the pieces
# ---------------------------------------------------------------------------------------------


def population(values) -> list[Member]:
    return [Member(nb201.Cell.from_index(i), float(v)) for i, v in enumerate(values)]


def test_tournament_returns_the_best_of_its_draw():
    members = population(np.random.default_rng(0).permutation(10) / 10)
    for seed in range(50):
        drawn = np.random.default_rng(seed).integers(len(members), size=3)
        expected = max((members[i] for i in drawn), key=lambda m: m.val_acc)
        assert tournament(members, 3, np.random.default_rng(seed)) == expected


def test_tournament_selection_pressure_matches_the_closed_form():
    # With replacement, the best of P members wins a size-k tournament with probability
    # 1 - (1 - 1/P)^k: 1 - 0.9^3 = 0.271 for P = 10, k = 3; and k = 1 is a uniform draw.
    members, rng = population(np.arange(10) / 10), np.random.default_rng(0)
    wins = np.mean([tournament(members, 3, rng).val_acc == 0.9 for _ in range(20000)])
    assert wins == pytest.approx(1 - 0.9**3, abs=0.015)
    ones = np.mean([tournament(members, 1, rng).val_acc == 0.9 for _ in range(20000)])
    assert ones == pytest.approx(0.1, abs=0.01)
    assert tournament(members[:1], 5, rng) == members[0]


def test_crossover_takes_each_edge_from_one_parent_at_random():
    a = nb201.Cell(("nor_conv_3x3",) * 6)
    b = nb201.Cell(("skip_connect",) * 6)
    rng = np.random.default_rng(0)
    children = [crossover(a, b, rng) for _ in range(2000)]
    assert all(set(c.ops) <= {"nor_conv_3x3", "skip_connect"} for c in children)
    from_a = np.mean([[op == "nor_conv_3x3" for op in c.ops] for c in children], axis=0)
    assert from_a == pytest.approx(np.full(6, 0.5), abs=0.05)  # each edge, a fair coin
    assert crossover(a, a, rng) == a


def test_aging_removes_the_oldest_not_the_worst():
    strategy = RegularizedEvolution(population_size=3, sample_size=2, seed=0)
    for value in (0.9, 0.1, 0.5):  # the oldest is the best, the second the worst
        strategy.tell(strategy.ask(), fake_result(value))
    strategy.tell(strategy.ask(), fake_result(0.2))
    assert [m.val_acc for m in strategy.population] == [0.1, 0.5, 0.2]
    strategy.tell(strategy.ask(), fake_result(0.3))
    assert [m.val_acc for m in strategy.population] == [0.5, 0.2, 0.3]
    assert [m.val_acc for m in strategy.history] == [0.9, 0.1, 0.5, 0.2, 0.3]
    assert strategy.best.val_acc == 0.9  # remembered, though dead


def test_random_start_then_one_edge_mutants_of_a_member():
    strategy = RegularizedEvolution(population_size=5, sample_size=2, seed=1)
    start = [strategy.ask() for _ in range(5)]
    reference = np.random.default_rng(1)
    assert start == [nb201.sample(reference) for _ in range(5)]  # random until told P results
    for cell in start:
        strategy.tell(cell, fake_result(0.5))
    for _ in range(30):
        child = strategy.ask()
        changed = [sum(map(str.__ne__, child.ops, m.cell.ops)) for m in strategy.population]
        assert 1 in changed  # one edge away from its parent (it may equal another member)
        strategy.tell(child, fake_result(0.5))


def test_evolution_refuses_bad_settings_clearly():
    with pytest.raises(ValueError, match="population_size must be an integer >= 1"):
        RegularizedEvolution(population_size=0)
    with pytest.raises(ValueError, match="between 1 and population_size"):
        RegularizedEvolution(population_size=5, sample_size=6)
    with pytest.raises(ValueError, match=r"mutation must be a function \(cell, rng\)"):
        RegularizedEvolution(mutation="one edge")
    with pytest.raises(ValueError, match="non-empty population"):
        tournament([], 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="nothing told yet"):
        _ = RegularizedEvolution().best


def test_a_custom_mutation_is_used():
    calls = []

    def to_all_conv(cell, rng):
        calls.append(cell)
        return nb201.Cell(("nor_conv_3x3",) * 6)

    strategy = RegularizedEvolution(population_size=2, sample_size=1, seed=0, mutation=to_all_conv)
    for _ in range(2):
        strategy.tell(strategy.ask(), fake_result(0.5))
    assert strategy.ask() == nb201.Cell(("nor_conv_3x3",) * 6) and len(calls) == 1


# ---------------------------------------------------------------------------------------------
# Regularized evolution: the search, against random search
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_crossover", [False, True], ids=["mutation", "crossover"])
def test_evolution_beats_random_search_on_a_separable_landscape(table, use_crossover):
    def evolution(seed):
        return RegularizedEvolution(20, 5, seed=seed, crossover=use_crossover)

    rs = [best_found(run(RandomSearch(seed), table, BUDGET, seed)) for seed in SEEDS]
    rea = [best_found(run(evolution(seed), table, BUDGET, seed, max_steps=5000)) for seed in SEEDS]
    assert stats.mannwhitneyu(rea, rs, alternative="greater").pvalue < 0.01
    optimum = float(table.column("val_acc").max())
    assert optimum - np.median(rea) < 0.5 * (optimum - np.median(rs))  # regret at least halved


def test_same_seed_same_trajectory(table):
    factories = {
        "rs": lambda s: RandomSearch(s),
        "rea": lambda s: RegularizedEvolution(10, 3, seed=s),
        "rea-x": lambda s: RegularizedEvolution(10, 3, seed=s, crossover=True),
        "nsga2": lambda s: moo.NSGA2(("val_acc", "-params"), population_size=10, seed=s),
    }
    for name, make in factories.items():
        first = run(make(7), table, 60, seed=7).trajectory
        assert first == run(make(7), table, 60, seed=7).trajectory, name
        assert first != run(make(8), table, 60, seed=8).trajectory, name


# ---------------------------------------------------------------------------------------------
# NSGA-II: non-dominated sorting, crowding distance, survival
# ---------------------------------------------------------------------------------------------


def brute_force_front(points: np.ndarray) -> list[int]:
    """Indices of the points that no other point dominates, by the definition."""
    return [
        i for i, p in enumerate(points) if not any(np.all(q >= p) and np.any(q > p) for q in points)
    ]


@pytest.mark.parametrize("m", [2, 3])
def test_first_front_is_the_brute_force_non_dominated_set(m):
    rng = np.random.default_rng(m)
    for trial in range(30):
        n = int(rng.integers(1, 40))
        points = rng.integers(0, 5, size=(n, m)).astype(float)  # many ties and duplicates
        if trial % 3 == 0:
            points = np.concatenate([points, points[: n // 2]])  # exact duplicate rows
        fronts = moo.non_dominated_sort(points)
        assert fronts[0] == brute_force_front(points)
        assert moo.pareto_front(points, chunk=7) == brute_force_front(points)
        # The fronts partition the points; front k is the brute-force front of what remains.
        assert sorted(itertools.chain(*fronts)) == list(range(len(points)))
        remaining = list(range(len(points)))
        for front in fronts:
            assert front == [remaining[i] for i in brute_force_front(points[remaining])]
            remaining = [i for i in remaining if i not in front]


def test_duplicates_share_a_front_and_dominance_is_strict():
    points = [[1, 1], [1, 1], [0, 2], [0, 1], [0, 1]]
    assert moo.non_dominated_sort(points) == [[0, 1, 2], [3, 4]]
    assert not moo.dominates([1, 1], [1, 1]) and moo.dominates([1, 1], [1, 0])
    assert moo.non_dominated_sort(np.zeros((0, 2))) == []


def test_crowding_distance_matches_a_hand_computation():
    # Objective 1 spans 4: interior gaps (2 - 0)/4 = 0.5 and (4 - 1)/4 = 0.75.
    # Objective 2 spans 5: interior gaps (5 - 2)/5 = 0.6 and (3 - 0)/5 = 0.6.
    points = [[0, 5], [1, 3], [2, 2], [4, 0]]
    distance = moo.crowding_distance(points)
    assert np.isinf(distance[0]) and np.isinf(distance[3])
    assert distance[1:3] == pytest.approx([1.1, 1.35])
    assert np.all(np.isinf(moo.crowding_distance([[0, 1], [1, 0]])))  # both are boundaries
    # One and two points are all boundaries, even when equal (pymoo's convention).
    assert np.all(np.isinf(moo.crowding_distance([[3, 3], [3, 3]])))
    assert np.all(np.isinf(moo.crowding_distance([[3, 3]])))
    assert moo.crowding_distance(np.zeros((0, 2))).shape == (0,)


def test_a_constant_objective_adds_nothing_not_even_infinity():
    # Objective 2 is constant: it adds nothing, and its "ends" (the first and last index, in
    # any order) get no infinity. Only objective 1 speaks: ends 2 and 1, inside (3 - 0)/3 = 1.
    flat = moo.crowding_distance([[1, 7], [3, 7], [0, 7]])
    np.testing.assert_array_equal(flat, [1.0, np.inf, np.inf])
    # Every objective constant (three equal points): nothing to measure, zero everywhere.
    np.testing.assert_array_equal(moo.crowding_distance([[2, 5]] * 3), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(moo.crowding_distance([[2], [2], [2], [2]]), np.zeros(4))


def test_crowding_distance_breaks_ties_best_first_in_index_order():
    # Objective 1 ties at its best value (points 0 and 1): sorted best first, stable, so point 0
    # is the boundary and point 1 sits inside with the gap (1 - 0)/1 = 1. Objective 2: ends 2
    # and 0, point 1 inside with (2 - 0)/2 = 1. Sorting worst first would make point 1 an end.
    np.testing.assert_array_equal(
        moo.crowding_distance([[1, 0], [1, 1], [0, 2]]), [np.inf, 2.0, np.inf]
    )
    # Duplicates are kept, not filtered, and taken in index order: on objective 1 (span 4) the
    # first copy of [1, 2] is next to [4, 0], (4 - 1)/4, the second next to [0, 3], (1 - 0)/4;
    # on objective 2 (span 3, best first: [0, 3] leads) the first is next to [0, 3], (3 - 2)/3,
    # the second next to [4, 0], (2 - 0)/3. Worst first would swap the two copies' distances.
    twins = moo.crowding_distance([[4, 0], [1, 2], [1, 2], [0, 3]])
    np.testing.assert_allclose(twins, [np.inf, 3 / 4 + 1 / 3, 1 / 4 + 2 / 3, np.inf])


@pytest.fixture(scope="module")
def pymoo_cd():
    """pymoo's crowding distance, the "cd" that its NSGA-II uses by default (pymoo >= 0.6.1)."""
    metrics = pytest.importorskip(
        "pymoo.operators.survival.rank_and_crowding.metrics",
        reason="the reference implementation pymoo>=0.6.1 is not installed (the [dev] extra)",
    )
    return lambda points: metrics.get_crowding_function("cd").do(-np.asarray(points, float))


def crowding_cases(m: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Fronts and point sets with m objectives: continuous values, small integers (ties and
    duplicate rows), a constant column, all rows equal, and one to three points."""
    cases = []
    for n in (1, 2, 3, 3, 4, 7, 12, 25):
        cases.append(rng.normal(size=(n, m)) * 10.0 ** np.arange(m))  # scales apart
        grid = rng.integers(0, 3, size=(n, m)).astype(float)  # many ties and duplicates
        cases.append(grid)
        cases.append(grid[moo.pareto_front(grid)])  # a real front, ties included
        constant = rng.random((n, m))
        constant[:, int(rng.integers(m))] = 0.5
        cases.append(constant)
        cases.append(np.repeat(rng.random((1, m)), n, axis=0))  # every column constant
    front = rng.random((40, m))
    cases.append(front[moo.pareto_front(front)])
    return cases


@pytest.mark.parametrize("m", [2, 3])
def test_crowding_distance_is_m_times_pymoos(pymoo_cd, m):
    """Deb's sum over objectives is m times pymoo's mean, exactly, with pymoo's F = -points
    (it minimises): infinite boundaries, zeros and tie order included."""
    rng = np.random.default_rng(m)
    for _ in range(5):
        for points in crowding_cases(m, rng):
            ours, theirs = moo.crowding_distance(points), m * pymoo_cd(points)
            np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs), err_msg=str(points))
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, err_msg=str(points))


@pytest.mark.parametrize("m", [2, 3])
def test_survival_matches_pymoos_rank_and_crowding(m):
    """``select_survivors`` keeps the same set as pymoo's NSGA-II survival wherever that set is
    determined (pymoo breaks ties in crowding distance at random; we skip cuts inside a tie)."""
    pytest.importorskip(
        "pymoo.operators.survival.rank_and_crowding",
        reason="the reference implementation pymoo>=0.6.1 is not installed (the [dev] extra)",
    )
    from pymoo.core.population import Population
    from pymoo.core.problem import Problem
    from pymoo.operators.survival.rank_and_crowding import RankAndCrowding

    rng, compared = np.random.default_rng(10 + m), 0
    for trial in range(120):
        n = int(rng.integers(3, 40))
        points = rng.random((n, m)) if trial % 2 else rng.integers(0, 4, (n, m)).astype(float)
        if trial % 3 == 0:
            points[:, 0] = 1.0  # a constant objective
        keep = int(rng.integers(1, n + 1))
        kept = 0
        for front in moo.non_dominated_sort(points):
            if kept + len(front) > keep:  # the front that is cut: by distance, best first
                distance = -np.sort(-moo.crowding_distance(points[front]))
                left = keep - kept
                decided = left == 0 or distance[left - 1] != distance[left]
                break
            kept += len(front)
        else:
            decided = True
        if not decided:
            continue
        theirs = RankAndCrowding().do(
            Problem(n_var=1, n_obj=m),
            Population.new("F", -points),
            n_survive=keep,
            return_indices=True,
        )
        assert sorted(moo.select_survivors(points, keep)) == sorted(int(i) for i in theirs)
        compared += 1
    assert compared > 60


def test_survival_keeps_whole_fronts_then_the_least_crowded():
    # Front 1: four points; front 2: one point. Keep 3: the two boundaries (infinite distance)
    # and, of the interior two, the lonelier: [3, 3] has 5.5/6 + 5.5/6, [0.5, 5.5] has 3/6 + 3/6.
    points = [[0, 6], [0.5, 5.5], [3, 3], [6, 0], [0, 0]]
    assert sorted(moo.select_survivors(points, 3)) == [0, 2, 3]
    assert sorted(moo.select_survivors(points, 5)) == [0, 1, 2, 3, 4]
    assert moo.select_survivors([[0, 0], [1, 1], [2, 2]], 1) == [2]  # elitism


def test_survival_is_not_steered_by_a_constant_objective():
    # Objective 3 is the same for all: it must not make points 0 and 3 (its first and last
    # index) boundaries. Keep 3: the true ends 1 and 2, then [3, 3] (5/6 + 5/6) over [1, 5]
    # (3/6 + 3/6).
    points = [[1, 5, 5], [0, 6, 5], [6, 0, 5], [3, 3, 5]]
    assert sorted(moo.select_survivors(points, 3)) == [1, 2, 3]


def test_crowded_comparison_prefers_lower_rank_then_lonelier():
    rank, crowd = np.array([0, 0, 1]), np.array([1.0, np.inf, 5.0])
    assert moo.crowded_better(0, 2, rank, crowd) and not moo.crowded_better(2, 0, rank, crowd)
    assert moo.crowded_better(1, 0, rank, crowd) and not moo.crowded_better(0, 0, rank, crowd)
    wins = [moo.binary_tournament(rank, crowd, np.random.default_rng(s)) for s in range(300)]
    # index 2 (worst rank) wins only when drawn twice: probability 1/9
    assert np.mean(np.array(wins) == 2) == pytest.approx(1 / 9, abs=0.05)


def test_hypervolume_2d_matches_a_hand_computation():
    # A staircase: strips 3*1 + 2*1 + 1*1; a dominated point and one below the reference add 0.
    points = [[3, 1], [2, 2], [1, 3], [1, 1], [-1, 5]]
    assert moo.hypervolume_2d(points, reference=[0, 0]) == pytest.approx(6.0)
    assert moo.hypervolume_2d([[2, 2], [2, 2]], reference=[1, 0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="2 objectives"):
        moo.hypervolume_2d([[1, 2, 3]], reference=[0, 0, 0])


def test_nsga2_refuses_bad_input_clearly():
    with pytest.raises(ValueError, match="unknown objective 'accuracy'"):
        moo.NSGA2(objectives=("accuracy", "-params"))
    with pytest.raises(ValueError, match="not 'test_acc'"):
        moo.NSGA2(objectives=("test_acc", "-params"))
    with pytest.raises(ValueError, match="non-empty sequence"):
        moo.NSGA2(objectives="val_acc")
    with pytest.raises(ValueError, match="population_size must be an integer >= 2"):
        moo.NSGA2(population_size=1)
    with pytest.raises(ValueError, match="2-D array"):
        moo.non_dominated_sort([1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        moo.crowding_distance([[1, np.nan]])


def test_nsga2_generations_are_elitist():
    strategy = moo.NSGA2(("val_acc", "-params"), population_size=4, seed=0)
    values = iter(np.random.default_rng(0).random((40, 2)))
    best_front = None
    for _ in range(40):
        cell = strategy.ask()
        acc, size = next(values)
        strategy.tell(cell, fake_result(acc, int(1000 * size)))
        if not strategy.children:  # a generation just ended
            current = {tuple(i.objectives) for i in strategy.population}
            told = moo.NSGA2.points(strategy.history)
            true_front = {tuple(told[i]) for i in moo.pareto_front(told)}
            # The survivors hold as much of the front of everything told as fits.
            assert len(current & true_front) == min(4, len(true_front))
            best_front = true_front
    assert strategy.generation == 10 and best_front


# ---------------------------------------------------------------------------------------------
# NSGA-II: the search, against random search, measured by hypervolume
# ---------------------------------------------------------------------------------------------


def test_nsga2_approaches_the_true_front_better_than_random_search(table):
    every = np.stack([table.column("val_acc"), -table.column("params").astype(float)], axis=1)
    front = every[moo.pareto_front(every)]
    reference = front.min(axis=0) - [0.01, 100]  # just beyond the front's worst (its nadir)
    true_hv = moo.hypervolume_2d(every, reference)

    def hypervolume(clock) -> float:
        told = [
            [table.query(a, seed=clock.seed).val_acc, -table.query(a).params]
            for _, a, _, _ in clock.trajectory
        ]
        return moo.hypervolume_2d(told, reference) / true_hv

    def nsga(seed):
        return moo.NSGA2(("val_acc", "-params"), population_size=20, seed=seed)

    rs = [hypervolume(run(RandomSearch(s), table, BUDGET, s)) for s in SEEDS]
    ea = [hypervolume(run(nsga(s), table, BUDGET, s, max_steps=5000)) for s in SEEDS]
    assert stats.mannwhitneyu(ea, rs, alternative="greater").pvalue < 0.01
    assert np.median(ea) > 0.9 > np.median(rs)  # measured: 0.93 against 0.87


# ---------------------------------------------------------------------------------------------
# Lesson 04 helpers: aging against removing the worst; a search's reported front over time
# ---------------------------------------------------------------------------------------------


def test_without_aging_the_worst_dies_and_the_oldest_of_equals_first():
    strategy = RegularizedEvolution(population_size=3, sample_size=2, seed=0, aging=False)
    for value in (0.9, 0.1, 0.5):
        strategy.tell(strategy.ask(), fake_result(value))
    strategy.tell(strategy.ask(), fake_result(0.2))
    assert [m.val_acc for m in strategy.population] == [0.9, 0.5, 0.2]  # 0.1 died, 0.9 lives on
    strategy.tell(strategy.ask(), fake_result(0.2))
    assert [m.val_acc for m in strategy.population] == [0.9, 0.5, 0.2]  # the older 0.2 died
    assert strategy.population[-1] == strategy.history[-1]
    assert "aging=False" in repr(strategy)


def test_aging_and_removing_the_worst_differ_only_in_who_dies(table):
    runs = {}
    for aging in (True, False):
        strategy = RegularizedEvolution(10, 3, seed=4, aging=aging)
        clock = run(strategy, table, 60, seed=4)
        runs[aging] = (strategy, clock)
    # Same random start (the first P asks draw the same cells), then different populations.
    young, old = (runs[a][1].trajectory for a in (True, False))
    assert young[:10] == old[:10] and young != old
    keeper = runs[False][0]
    ranked = sorted(m.val_acc for m in keeper.history)
    assert sorted(m.val_acc for m in keeper.population) == ranked[-10:]  # the 10 best survive


def test_run_front_is_the_brute_force_front_of_what_the_run_saw(table):
    clock = run(RandomSearch(seed=2), table, 80, seed=2)
    for until in (None, 0.5, 10.0, 40.0):
        seen = {}
        for elapsed, arch, val, _ in clock.trajectory:
            if until is None or elapsed <= until:
                seen.setdefault(arch, (val, -float(table.query(arch).params)))
        archs = list(seen)
        points = np.array([seen[a] for a in archs]) if archs else np.zeros((0, 2))
        expected = [archs[i] for i in brute_force_front(points)]
        assert moo.run_front(clock, table, "params", until) == expected
    assert moo.run_front(clock, table, "params", until=0.5) == []  # nothing finished yet


def exact_table() -> Benchmark:
    """The separable table's cells, but every training gives the test accuracy (no noise
    between seeds or sets) and the costs are random: known fronts of any shape."""
    rng = np.random.default_rng(5)
    arrays = dict(separable_table().arrays)
    n = len(arrays["archs"])
    acc = rng.uniform(0.5, 1.0, size=n)
    arrays["val_acc"] = np.repeat(acc[:, None, None], 2, axis=1)
    arrays["test_acc"] = np.repeat(acc[:, None], 2, axis=1)
    arrays["params"] = rng.integers(1000, 5000, size=n)
    arrays["flops"] = rng.integers(1000, 5000, size=n)
    arrays["latency_ms_batch1"] = rng.uniform(0.1, 2.0, size=n)
    return Benchmark(arrays, manifest={"complete": True})


@pytest.mark.parametrize("cost", ["params", "flops", "latency_ms"])
def test_a_run_that_trains_everything_finds_the_whole_hypervolume(cost):
    exact = exact_table()
    points = moo.table_points(exact, cost)
    column = {"params": "params", "flops": "flops", "latency_ms": "latency_ms_batch1"}[cost]
    assert np.array_equal(points[:, 1], -exact.column(column).astype(float))
    reference = [0.5, -5000.0 if cost != "latency_ms" else -2.0]
    true_hv = moo.hypervolume_2d(points, reference)
    clock = exact.clock(resume=False)
    for arch in exact.archs:
        clock.query(arch)
    curve = moo.hypervolume_curve(clock, exact, reference, [0, 100, len(exact)], cost)
    assert curve[0] == 0.0 and 0 < curve[1] < true_hv
    assert curve[2] == pytest.approx(true_hv)  # every cell seen: the true front, exactly
    front = moo.run_front(clock, exact, cost)
    assert sorted(exact.row(a) for a in front) == sorted(moo.pareto_front(points))


def test_hypervolume_curve_scores_the_reported_front_on_test(table):
    clock = run(moo.NSGA2(("val_acc", "-params"), population_size=10, seed=1), table, 60, 1)
    reference = [0.3, -6000.0]
    curve = moo.hypervolume_curve(clock, table, reference, np.linspace(0, 60, 7))
    rows = [table.row(a) for a in moo.run_front(clock, table)]
    assert curve[-1] == pytest.approx(moo.hypervolume_2d(moo.table_points(table)[rows], reference))
    assert np.all(curve <= moo.hypervolume_2d(moo.table_points(table), reference) + 1e-12)
    with pytest.raises(ValueError, match="unknown cost 'energy'"):
        moo.table_points(table, "energy")


def test_nsga2_unique_breeds_no_repeats_and_only_redraws(table):
    def repeats(clock) -> int:
        archs = [arch for _, arch, _, _ in clock.trajectory]
        return len(archs) - len(set(archs))

    def nsga(seed, **options):
        return moo.NSGA2(("val_acc", "-params"), population_size=10, seed=seed, **options)

    plain = [run(nsga(s), table, BUDGET, s) for s in range(5)]
    unique = [run(nsga(s, unique=True), table, BUDGET, s) for s in range(5)]
    assert sum(map(repeats, plain)) > 0  # the paper's algorithm pays for repeats
    assert sum(map(repeats, unique)) == 0
    # One try is no re-draw: exactly the paper's algorithm, draw for draw.
    once = run(nsga(3, unique=True, max_tries=1), table, BUDGET, 3)
    assert once.trajectory == plain[3].trajectory
    with pytest.raises(ValueError, match="max_tries must be an integer >= 1"):
        nsga(0, unique=True, max_tries=0)


def test_cheapest_reaching_is_the_brute_force_answer_and_lies_on_the_front():
    rng = np.random.default_rng(4)
    for _ in range(30):
        points = np.stack(
            [rng.integers(0, 5, size=25) / 4, -rng.integers(1, 6, size=25).astype(float)], axis=1
        )
        min_acc = float(rng.choice(points[:, 0]))
        brute = min(
            (i for i in range(len(points)) if points[i, 0] >= min_acc),
            key=lambda i: (-points[i, 1], -points[i, 0], i),
        )
        assert moo.cheapest_reaching(points, min_acc) == brute
        assert brute in moo.pareto_front(points)
    assert moo.cheapest_reaching(points, 2.0) is None  # no point reaches it
    with pytest.raises(ValueError, match="2 columns"):
        moo.cheapest_reaching(np.zeros((3, 3)), 0.5)


def test_the_oracle_front_is_the_front_of_every_trained_cell_on_test(table):
    clock = run(RandomSearch(seed=6), table, 60, seed=6)
    points = moo.table_points(table)
    trained = sorted({table.row(arch) for _, arch, _, _ in clock.trajectory})
    oracle = [table.row(a) for a in moo.run_front(clock, table, choose_on="test_acc")]
    assert sorted(oracle) == sorted(trained[i] for i in brute_force_front(points[trained]))
    reference = [0.3, -6000.0]
    (final,) = moo.hypervolume_curve(clock, table, reference, [60.0], choose_on="test_acc")
    assert final == pytest.approx(moo.hypervolume_2d(points[trained], reference))
    # Choosing on one noisy validation score can only lose hypervolume on test.
    (chosen,) = moo.hypervolume_curve(clock, table, reference, [60.0])
    assert chosen <= final + 1e-12
    with pytest.raises(ValueError, match="choose_on must be"):
        moo.run_front(clock, table, choose_on="train_loss")
