"""The capstone (lesson 12): the feasible region, Deb's reward, the metered benchmark, the verdict,
and the grading of whole searches (full marks, partial marks, none)."""

from __future__ import annotations

import numpy as np
import pytest

from nas_lab import capstone, checks
from nas_lab.bench import BudgetExhausted
from nas_lab.checks import lesson12
from nas_lab.spaces import nb201
from nas_lab.strategies import run
from nas_lab.strategies.random_search import RandomSearch

REGISTRY = checks.load_all()


@pytest.fixture(scope="module")
def table():
    return capstone.grader_table()


def a_brief(table, quantile: float = 0.3) -> tuple[float, float]:
    latency = table.column(capstone.LATENCY)
    limit = float(np.quantile(latency, quantile))
    return limit, float(np.median(table.column("test_acc")[latency <= limit]))


# ---- 1. the feasible region ------------------------------------------------------------------


def test_feasible_keeps_both_bounds_inclusive_and_the_order():
    cells = ["a", "b", "c", "d", "e"]
    latency = [0.5, 0.7, 0.7, 0.9, 0.2]
    accuracy = [0.95, 0.96, 0.90, 0.99, 0.96]
    # b sits on both bounds (kept); c is too inaccurate; d too slow.
    assert capstone.feasible(cells, latency, accuracy, 0.7, 0.95) == ["a", "b", "e"]
    assert capstone.feasible(cells, latency, accuracy, 0.1, 0.0) == []


def test_feasible_rejects_columns_of_different_lengths():
    with pytest.raises(ValueError, match="one entry per cell"):
        capstone.feasible(["a", "b"], [0.1], [0.9, 0.9], 1.0, 0.5)


# ---- 2. Deb's reward -------------------------------------------------------------------------


def test_constrained_reward_closed_form():
    assert capstone.constrained_reward(0.9, 0.5, 0.5) == 0.9  # on the limit: feasible
    assert capstone.constrained_reward(0.9, 0.75, 0.5) == pytest.approx(-0.5)
    assert capstone.constrained_reward(0.1, 0.2, 0.5) == 0.1


def test_constrained_reward_follows_debs_three_rules():
    rng = np.random.default_rng(0)
    limit = 0.8
    acc, lat = rng.uniform(0, 1, 400), rng.uniform(0.1, 2.0, 400)
    reward = np.array(
        [capstone.constrained_reward(a, t, limit) for a, t in zip(acc, lat, strict=True)]
    )
    ok = lat <= limit
    assert reward[ok].min() > reward[~ok].max()  # feasible beats every infeasible
    assert np.array_equal(np.argsort(reward[ok]), np.argsort(acc[ok]))  # more accurate wins
    assert np.array_equal(np.argsort(reward[~ok]), np.argsort(-lat[~ok]))  # nearer wins


def test_constrained_reward_needs_a_positive_limit():
    with pytest.raises(ValueError, match="positive"):
        capstone.constrained_reward(0.9, 0.5, 0.0)


# ---- 3. strategy wrappers --------------------------------------------------------------------


class Recorder:
    def __init__(self, proposals):
        self.proposals, self.told = iter(proposals), []

    def ask(self):
        return next(self.proposals)

    def tell(self, cell, result):
        self.told.append((cell, result.val_acc))


def test_constrained_tells_the_reward_in_place_of_accuracy(table):
    cell = nb201.Cell.from_index(100)
    inner = Recorder([cell])
    strategy = capstone.Constrained(inner, lambda result: -1.0)
    strategy.tell(strategy.ask(), table.query(cell))
    assert inner.told == [(cell, -1.0)]


def test_filtered_asks_again_until_accepted_and_gives_up_after_max_tries():
    cells = [nb201.Cell.from_index(i) for i in range(5)]
    accept_last = capstone.Filtered(Recorder(cells), lambda c: c == cells[3])
    assert accept_last.ask() == cells[3]
    stubborn = capstone.Filtered(Recorder(cells), lambda c: False, max_tries=2)
    assert stubborn.ask() == cells[1]  # the last of its two tries goes through
    with pytest.raises(ValueError, match="max_tries"):
        capstone.Filtered(Recorder(cells), lambda c: True, max_tries=0)


# ---- 4. the metered benchmark ----------------------------------------------------------------


def test_every_clock_and_query_charge_one_budget(table):
    metered = capstone.MeteredBench(table, budget=5.0, seed=0)
    cells = [nb201.Cell.from_index(i) for i in (11, 222, 3333, 4444, 5555, 6666, 7777)]
    a = metered.query(cells[0])
    b = metered.clock().query(cells[1])
    assert metered.spent == pytest.approx(a.train_time + b.train_time)
    assert metered.trained == {a.arch, b.arch}
    with pytest.raises(BudgetExhausted):
        for cell in cells * 50:
            metered.clock(resume=False).query(cell)
    # the query that spends the budget completes; none starts after it
    assert (
        metered.budget
        <= metered.spent
        < metered.budget + max(table.query(c).train_time for c in cells)
    )


def test_latency_is_free_and_training_columns_are_closed(table):
    metered = capstone.MeteredBench(table, budget=5.0, seed=0)
    cell = nb201.Cell.from_index(1234)
    assert metered.latency_ms(cell) == table.query(cell).latency_ms
    assert np.array_equal(metered.column("flops"), table.column("flops"))
    assert metered.spent == 0
    with pytest.raises(ValueError, match="costs budget"):
        metered.column("val_acc")
    with pytest.raises(ValueError, match="bench.query or bench.clock"):
        metered.best()


def test_strategies_run_unchanged_on_the_metered_bench(table):
    metered = capstone.MeteredBench(table, budget=30.0, seed=3)
    clock = run(RandomSearch(seed=3), metered, budget=1000.0, seed=3)
    assert clock.elapsed == pytest.approx(metered.spent)  # one clock, one account
    assert metered.spent >= 30.0 and len(metered.trained) > 5
    assert {arch for _, arch, _, _ in clock.trajectory} == metered.trained


@pytest.mark.parametrize("search", ["random_search", "successive_halving", "hyperband"])
def test_lesson_02_searches_run_on_the_metered_bench_within_its_budget(table, search):
    from nas_lab import estimation

    metered = capstone.MeteredBench(table, budget=60.0, seed=2)
    getattr(estimation, search)(metered, 1e6, 2)  # the clock's own budget is not what stops it
    assert 60.0 <= metered.spent < 60.0 + float(table.column("train_time").max())
    assert metered.least_cost() <= metered.spent + 1e-9


def test_watch_table_counts_only_unpaid_reads_and_restores_the_table(table):
    original = type(table).query
    metered = capstone.MeteredBench(table, budget=50.0, seed=0)
    with capstone.watch_table() as reads:
        metered.query(nb201.Cell.from_index(7))
        table.column(capstone.LATENCY)
        assert reads.count == 0
        table.query(nb201.Cell.from_index(8))
        table.column("test_acc")
    assert reads.count == 2 and reads.what[1].startswith("column")
    assert type(table).query is original


# ---- 5. the verdict --------------------------------------------------------------------------


def test_percentile_against_a_brute_force_count(table):
    limit, _ = a_brief(table)
    rows = [i for i, a in enumerate(table.archs) if table.query(a).latency_ms <= limit]
    tests = [table.query(table.archs[i]).test_acc for i in rows]
    for i in rows[:: max(1, len(rows) // 7)]:
        mine = table.query(table.archs[i]).test_acc
        expected = sum(t <= mine for t in tests) / len(tests)
        assert capstone.percentile(table, table.archs[i], limit) == pytest.approx(expected)
    best = rows[int(np.argmax(tests))]
    assert capstone.percentile(table, table.archs[best], limit) == 1.0


def test_judge_says_why(table):
    limit, target = a_brief(table)
    latency, test = table.column(capstone.LATENCY), table.column("test_acc")
    good = table.archs[int(np.argmax(np.where(latency <= limit, test, -1)))]
    slow = table.archs[int(np.argmax(latency))]
    weak = table.archs[int(np.argmin(np.where(latency <= limit, test, 2)))]
    assert capstone.judge(good, limit, target).ok
    assert capstone.judge(nb201.as_cell(good), limit, target).percentile == 1.0
    assert "over the limit" in capstone.judge(slow, limit, target).reason
    assert "below the target" in capstone.judge(weak, limit, target).reason
    assert "never trained" in capstone.judge(good, limit, target, trained=[]).reason
    assert "well-formed" in capstone.judge("|conv~0|", limit, target).reason
    assert "not a cell string" in capstone.judge(3, limit, target).reason


# ---- 6. the searches, and how the checks grade them ------------------------------------------


def test_reference_search_is_deterministic_feasible_and_within_budget(table):
    limit, target = a_brief(table)
    answers = []
    for _ in range(2):
        metered = capstone.MeteredBench(table, 300.0, seed=5)
        answers.append(capstone.reference_search(metered, 300.0, 5, limit, target))
        verdict = capstone.judge(answers[-1], limit, target, trained=metered.trained)
        assert verdict.ok, verdict.reason
        assert metered.spent < 300.0 + float(table.column("train_time").max())
    assert answers[0] == answers[1]


def grade(answer, seed: int = 0) -> dict[str, bool]:
    return {
        ex: checks.evaluate(REGISTRY[ex], answer, seed).passed for ex in ("12.3", "12.4", "12.5")
    }


def test_the_reference_gets_full_marks():
    assert grade(lesson12.capstone_search, seed=11) == {"12.3": True, "12.4": True, "12.5": True}


def test_random_search_gets_partial_marks_and_a_tiny_budget_fewer():
    # Random search with the whole budget meets the limits and the lower bar, not the top one.
    full = grade(capstone.baseline_search, seed=4)
    assert full == {"12.3": True, "12.4": True, "12.5": False}
    tiny = grade(lambda bench, budget, *rest: capstone.baseline_search(bench, 5.0, *rest))
    assert not tiny["12.4"] and not tiny["12.5"]


def test_ignoring_the_latency_limit_gets_nothing():
    def accuracy_only(bench, budget, seed, latency_limit, target):
        clock = run(RandomSearch(seed=seed), bench, budget, seed)
        return max(clock.trajectory, key=lambda step: step[2])[1]

    assert grade(accuracy_only, seed=7) == {"12.3": False, "12.4": False, "12.5": False}


def test_a_hard_coded_answer_fails_on_fresh_limits(table):
    limit, _ = a_brief(table, 0.5)
    latency, test = table.column(capstone.LATENCY), table.column("test_acc")
    favourite = table.archs[int(np.argmax(np.where(latency <= limit, test, -1)))]

    def hard_coded(bench, budget, seed, latency_limit, target):
        bench.query(favourite)  # trained, so only the limits can catch it
        return favourite

    result = checks.evaluate(REGISTRY["12.3"], hard_coded, 0)
    assert not result.passed and "over the limit" in result.reason


def test_reaching_around_the_meter_or_an_unseeded_search_fails():
    def around(bench, budget, seed, latency_limit, target):
        inner = bench._bench  # the table behind the meter: free, and against the rules
        return max(inner.archs[:500], key=lambda a: inner.query(a).val_acc)

    result = checks.evaluate(REGISTRY["12.3"], around, 0)
    assert not result.passed and "outside the metered bench" in result.reason

    calls = iter(range(10**6))

    def unseeded(bench, budget, seed, latency_limit, target):
        return capstone.reference_search(bench, budget, next(calls), latency_limit, target)

    result = checks.evaluate(REGISTRY["12.3"], unseeded, 0)
    assert not result.passed and "same seed" in result.reason


def test_least_cost_bounds_an_honest_spend_from_below(table):
    metered = capstone.MeteredBench(table, budget=40.0, seed=1)
    run(RandomSearch(seed=1), metered, budget=20.0, seed=1)
    clock = metered.clock(resume=True)  # multi-fidelity: one epoch each, the cheapest there is
    for index in range(50, 70):
        clock.query(nb201.Cell.from_index(index), epoch=1)
    assert 0 < metered.least_cost() <= metered.spent + 1e-9


def test_tampering_with_the_account_is_caught():
    def resets_the_meter(bench, budget, seed, latency_limit, target):
        rng = np.random.default_rng(seed)
        for _ in range(8):  # eight budgets of training, the meter reset each time
            bench.account.spent = 0.0
            clock = run(RandomSearch(seed=rng), bench, budget, rng)
        return capstone.best_feasible(clock.trajectory, bench.latency_ms, latency_limit)

    result = checks.evaluate(REGISTRY["12.3"], resets_the_meter, 0)
    assert not result.passed and "spent at least" in result.reason

    def raises_the_budget(bench, budget, seed, latency_limit, target):
        bench.account.budget = 10 * budget
        return capstone.reference_search(bench, budget, seed, latency_limit, target)

    result = checks.evaluate(REGISTRY["12.3"], raises_the_budget, 0)
    assert not result.passed and "budget" in result.reason
