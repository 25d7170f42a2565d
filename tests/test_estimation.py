"""Performance estimation (lesson 02) on synthetic tables where the right answer is known: the
final accuracy is a known function of the architecture, and the early epochs rank architectures
perfectly, in reverse, or with noise, as each test needs."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from nas_lab import estimation as est
from nas_lab.bench import Benchmark, BudgetExhausted, build
from nas_lab.spaces import nb201
from nas_lab.strategies.random_search import RandomSearch


def synthetic(
    n_archs: int = 243,
    epochs: int = 4,
    early: str | float = "perfect",
    final_noise: float = 0.0,
    times: np.ndarray | None = None,
    q: np.ndarray | None = None,
    seed: int = 0,
) -> Benchmark:
    """A table of ``n_archs`` real cells with made-up curves. Each architecture has a quality q
    (distinct, in [0, 1)); its test accuracy is 0.6 + 0.3 q on every seed, its final validation
    accuracy the same plus ``final_noise`` per seed. Before the last epoch the curve rises with the
    epoch and, on top, tracks q ("perfect"), 1 - q ("anti"), or q plus Gaussian noise of that
    standard deviation per seed (a float). Every early value lies below every final one."""
    rng = np.random.default_rng(seed)
    cells = [str(c) for c in nb201.unique_cells()[:n_archs]]
    q = rng.permutation(n_archs) / n_archs if q is None else np.asarray(q, dtype=float)
    seeds = 2
    if early == "perfect":
        signal = np.repeat(q[:, None], seeds, axis=1)
    elif early == "anti":
        signal = np.repeat(1 - q[:, None], seeds, axis=1)
    else:
        signal = q[:, None] + early * rng.standard_normal((n_archs, seeds))
    e = np.arange(1, epochs)[None, None, :] / epochs
    val = np.empty((n_archs, seeds, epochs))
    val[:, :, :-1] = 0.2 + 0.3 * e + 0.05 * np.clip(signal, -0.9, 1.9)[:, :, None]
    val[:, :, -1] = 0.6 + 0.3 * q[:, None] + final_noise * rng.standard_normal((n_archs, seeds))
    times = np.full(n_archs, 100.0) if times is None else np.asarray(times, dtype=float)
    arrays = {
        "archs": np.array(cells),
        "seeds": np.array([0, 1]),
        "val_acc": val.astype(np.float32),
        "train_loss": (1 - val).astype(np.float32),
        "test_acc": np.repeat(0.6 + 0.3 * q[:, None], seeds, axis=1),
        "train_time": np.repeat(times[:, None], seeds, axis=1),
        "params": np.zeros(n_archs, dtype=np.int64),
        "flops": np.zeros(n_archs, dtype=np.int64),
        "latency_ms_batch1": np.zeros(n_archs),
        "latency_ms_train_batch": np.zeros(n_archs),
    }
    return Benchmark(arrays, manifest={})


@pytest.fixture(scope="module")
def perfect4():
    return synthetic(epochs=4, early="perfect")


@pytest.fixture(scope="module")
def perfect27():
    return synthetic(epochs=27, early="perfect")


def epochs_of(clock) -> list[int]:
    """The epoch of each query, read back from the (strictly rising) synthetic curves."""
    epochs = range(1, clock.bench.epochs + 1)
    curve = {
        a: [clock.bench.query(a, seed=clock.seed, epoch=e).val_acc for e in epochs]
        for _, a, _, _ in clock.trajectory
    }
    return [curve[arch].index(val) + 1 for _, arch, val, _ in clock.trajectory]


def final_regret(clock, bench) -> float:
    return float(est.regret_curves([clock], bench, [clock.elapsed])[0, -1])


# ---------------------------------------------------------------------------------------------
# Rank correlation and fidelity
# ---------------------------------------------------------------------------------------------


def test_rank_correlation_matches_a_hand_computed_case():
    # ranks differ by d = (0, 1, -1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8;
    # of the 6 pairs only (2, 3) is discordant: tau = (5 - 1) / 6.
    r = est.rank_correlation([1, 2, 3, 4], [10, 30, 20, 40])
    assert r["spearman"] == pytest.approx(0.8) and r["kendall"] == pytest.approx(2 / 3)
    assert est.rank_correlation([1, 2, 3], [3, 2, 1]) == {"spearman": -1.0, "kendall": -1.0}


def test_rank_correlation_refuses_bad_input_clearly():
    with pytest.warns(RuntimeWarning, match="constant"):
        r = est.rank_correlation([1, 2, 3], [5, 5, 5])
    assert np.isnan(r["spearman"]) and np.isnan(r["kendall"])
    with pytest.raises(ValueError, match="equal length"):
        est.rank_correlation([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="drop those architectures"):
        est.rank_correlation([1, np.nan, 3], [1, 2, 3])


def test_fidelity_correlations_know_the_sign_of_the_early_signal(perfect4):
    rows = est.fidelity_correlations(perfect4, seed=0)
    assert [e for e, _, _ in rows] == [1, 2, 3, 4]
    assert all(rho == pytest.approx(1) and tau == pytest.approx(1) for _, rho, tau in rows)
    anti = est.fidelity_correlations(synthetic(epochs=4, early="anti"), seed=1)
    assert [round(rho, 6) for _, rho, _ in anti] == [-1, -1, -1, 1]


def test_fidelity_target_is_the_other_seed_not_a_mean_containing_itself():
    bench = synthetic(epochs=4, early=0.2, final_noise=0.05)
    *_, (epoch, rho, tau) = est.fidelity_correlations(bench, seed=0)
    final = bench.arrays["val_acc"][:, :, -1]
    assert epoch == 4 and rho < 0.99
    assert rho == pytest.approx(stats.spearmanr(final[:, 0], final[:, 1])[0])
    assert tau == pytest.approx(stats.kendalltau(final[:, 0], final[:, 1])[0])
    with pytest.raises(ValueError, match="seeds are"):
        est.fidelity_correlations(bench, seed=7)


# ---------------------------------------------------------------------------------------------
# Random search, and the budget rule every strategy shares
# ---------------------------------------------------------------------------------------------


def test_random_search_is_reproducible(perfect4):
    a, b = (est.random_search(perfect4, 2000, seed=3) for _ in range(2))
    assert a.trajectory == b.trajectory and a.seed == b.seed
    assert est.random_search(perfect4, 2000, seed=4).trajectory != a.trajectory


def test_random_search_trains_distinct_archs_fully_and_exhaustively(perfect4):
    clock = est.random_search(perfect4, None, seed=0)
    archs = [arch for _, arch, _, _ in clock.trajectory]
    assert sorted(archs) == sorted(perfect4.archs)
    assert all(test is not None for *_, test in clock.trajectory)
    assert clock.elapsed == pytest.approx(100.0 * len(perfect4))
    low = est.random_search(perfect4, 500, seed=0, epochs=1)
    assert set(epochs_of(low)) == {1} and len(low.trajectory) == 20


def test_the_two_random_searches_draw_classes_and_strings_as_documented(perfect4):
    # estimation.random_search: table classes, uniformly, each once (lesson 02).
    clock = est.random_search(perfect4, 1000, seed=0)
    drawn = [arch for _, arch, _, _ in clock.trajectory]
    assert len(set(drawn)) == len(drawn) and set(drawn) <= set(perfect4.archs)
    # RandomSearch: strings, uniformly, with replacement (lessons 03-05, 12): a class comes up
    # in proportion to its number of strings, and strings repeat.
    sampler = RandomSearch(seed=0)
    asks = [sampler.ask() for _ in range(4000)]
    assert len({str(c) for c in asks}) < len(asks)
    sizes = Counter(str(c.canonical()) for c in nb201.all_cells())
    big = max(sizes, key=sizes.get)  # the class with the most strings
    share = sum(str(c.canonical()) == big for c in asks) / len(asks)
    assert share == pytest.approx(sizes[big] / nb201.NUM_CELLS, rel=0.25)
    assert (
        "classes" in est.random_search.__doc__
        and "without replacement" in est.random_search.__doc__
    )
    assert "strings" in RandomSearch.__doc__ and "with replacement" in RandomSearch.__doc__


def test_an_epoch_e_record_is_epoch_e_of_the_full_cosine_schedule():
    # The builder trains once for the recipe's epochs and records every epoch: the table's
    # epoch-e accuracy is the prefix of that run, not a training of e epochs (issue 15, item 13).
    tiny = replace(build.RECIPE, epochs=3, cells_per_stage=1, channels=4, train_fraction=0.5)
    cell = nb201.Cell.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    )
    full = build.run_record(cell, 0, tiny)
    short = build.run_record(cell, 0, replace(tiny, epochs=2))
    assert len(full["val_acc"]) == 3 and len(short["val_acc"]) == 2
    # the learning rate falls more slowly over 3 epochs than over 2: another run from step 1 on
    assert full["train_loss"][:2] != short["train_loss"] and full["val_acc"][:2] != short["val_acc"]
    assert (
        "cosine" in Benchmark.query.__doc__ and "not a shorter training" in Benchmark.query.__doc__
    )


STRATEGIES = {
    "random": est.random_search,
    "halving": lambda b, budget, s: est.successive_halving(b, budget, s, eta=2),
    "hyperband": est.hyperband,
    "early stopping": est.random_search_early_stopping,
    "extrapolation": est.random_search_extrapolation,
}


@pytest.mark.parametrize("name", STRATEGIES)
def test_the_last_query_starts_within_budget_and_completes(perfect4, name):
    clock = STRATEGIES[name](perfect4, 1010.0, 0)
    *_, (before, *_), (after, *_) = clock.trajectory
    assert before < 1010.0 <= after and clock.exhausted
    with pytest.raises(BudgetExhausted):
        clock.query(perfect4.archs[0])


def test_clock_is_charged_exactly_the_recorded_times():
    # Three cells trained 40, 80, 120 s; the 120 s one is best. Halving with n=3, eta=2 on
    # 4 epochs: all three to epoch 1 (a quarter each), the best to 2 (+30 s), then to 4 (+60 s).
    times = np.array([40.0, 80.0, 120.0])
    bench = synthetic(n_archs=3, epochs=4, times=times, q=[0.0, 1 / 3, 2 / 3])
    clock = est.successive_halving(bench, None, seed=0, n=3, eta=2)
    seen = [arch for _, arch, _, _ in clock.trajectory]
    quarter = [times[bench.row(arch)] / 4 for arch in seen[:3]]
    expected = np.cumsum(quarter + [30.0, 60.0])
    assert [t for t, *_ in clock.trajectory] == pytest.approx(expected)
    assert epochs_of(clock) == [1, 1, 1, 2, 4] and seen[3] == seen[4] == bench.archs[2]
    assert clock.elapsed == pytest.approx(150.0)
    assert est.random_search(bench, None, seed=0).elapsed == pytest.approx(240.0)


# ---------------------------------------------------------------------------------------------
# Successive halving and Hyperband
# ---------------------------------------------------------------------------------------------


def test_rungs_match_hand_computed_schedules():
    assert est.rungs(9, eta=3, min_epoch=1, max_epoch=9) == [(9, 1), (3, 3), (1, 9)]
    assert est.rungs(9, eta=3, min_epoch=1, max_epoch=4) == [(9, 1), (3, 3), (1, 4)]  # capped
    assert est.rungs(4, eta=2, min_epoch=1, max_epoch=4) == [(4, 1), (2, 2), (1, 4)]
    assert est.rungs(10, eta=3, min_epoch=3, max_epoch=9) == [(10, 3), (3, 9)]


def test_successive_halving_promotes_the_top_third_for_n9_eta3():
    bench = synthetic(n_archs=30, epochs=9, early=0.3, seed=2)
    clock = est.successive_halving(bench, None, seed=1, n=9, eta=3)
    assert epochs_of(clock)[:13] == [1] * 9 + [3] * 3 + [9]
    first = clock.trajectory[:9]
    top3 = [arch for _, arch, _, _ in sorted(first, key=lambda q: -q[2])[:3]]
    assert [arch for _, arch, _, _ in clock.trajectory[9:12]] == top3
    rung2 = clock.trajectory[9:12]
    assert clock.trajectory[12][1] == max(rung2, key=lambda q: q[2])[1]


def test_hyperband_brackets_match_li_et_al():
    # Li et al., JMLR 2018, Table 1 (R = 81, eta = 3): (n_i, r_i) for s = 4 .. 0.
    assert est.hyperband_brackets(81, eta=3) == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]
    # R = 4, eta = 2 by hand: s_max = 2, B = 12; n = ceil(3 * 2^s / (s + 1)) = 4, 3, 3.
    assert est.hyperband_brackets(4, eta=2) == [
        [(4, 1), (2, 2), (1, 4)],
        [(3, 2), (1, 4)],
        [(3, 4)],
    ]


def test_hyperband_runs_its_brackets_in_turn(perfect4):
    clock = est.hyperband(perfect4, 4000, seed=0, eta=2)
    cycle = [1, 1, 1, 1, 2, 2, 4] + [2, 2, 2, 4] + [4, 4, 4]
    assert epochs_of(clock)[: 2 * len(cycle)] == cycle * 2
    assert len({arch for _, arch, _, _ in clock.trajectory[:14]}) == 4 + 3 + 3  # fresh archs


def test_successive_halving_finds_the_best_for_a_ninth_of_exhaustive_cost(perfect27):
    clock = est.successive_halving(perfect27, None, seed=0, n=243, eta=3)
    assert est.incumbents(clock)[-1] == perfect27.best("test_acc").arch
    exhaustive = est.random_search(perfect27, None, seed=0).elapsed
    assert clock.elapsed == pytest.approx(exhaustive / 9)


def test_successive_halving_fails_when_low_fidelity_is_anti_correlated():
    bench = synthetic(epochs=4, early="anti")
    sh = [final_regret(est.successive_halving(bench, 1200, s, eta=2), bench) for s in range(10)]
    rs = [final_regret(est.random_search(bench, 1200, s), bench) for s in range(10)]
    assert np.mean(sh) > 3 * np.mean(rs)
    assert stats.mannwhitneyu(sh, rs, alternative="greater").pvalue < 0.01


def test_successive_halving_beats_random_search_over_30_seeds():
    bench = synthetic(epochs=9, early=0.15)  # epoch-1 Spearman about 0.9
    assert est.fidelity_correlations(bench)[0][1] > 0.85
    sh = [
        final_regret(est.successive_halving(bench, 2700, s, n=27, eta=3), bench) for s in range(30)
    ]
    rs = [final_regret(est.random_search(bench, 2700, s), bench) for s in range(30)]
    assert stats.mannwhitneyu(sh, rs, alternative="less").pvalue < 0.01


def test_halving_refuses_bad_settings_clearly(perfect4):
    with pytest.raises(ValueError, match="eta must be an integer >= 2"):
        est.successive_halving(perfect4, 1000, 0, eta=1)
    with pytest.raises(ValueError, match="min_epoch must be an integer between 1 and 4"):
        est.hyperband(perfect4, 1000, 0, min_epoch=5)
    with pytest.raises(ValueError, match="n \\(architectures"):
        est.successive_halving(perfect4, 1000, 0, n=0)
    with pytest.raises(ValueError, match="either budget or clock"):
        est.successive_halving(perfect4, 1000, 0, clock=perfect4.clock(100))
    with pytest.raises(ValueError, match="positive number of simulated seconds"):
        est.random_search(perfect4, -5, 0)


# ---------------------------------------------------------------------------------------------
# Early stopping
# ---------------------------------------------------------------------------------------------


def test_should_stop():
    assert est.should_stop(0.5, 0.6) and not est.should_stop(0.7, 0.6)
    assert not est.should_stop(0.55, 0.6, margin=0.1) and not est.should_stop(0.5, None)
    assert est.should_stop(0.5, None, threshold=0.55)


def test_early_stopping_keeps_every_record_for_less(perfect4):
    # With a perfect early ranking, stopping below the incumbent's epoch-1 accuracy drops only
    # architectures that would not have become incumbent: the same records, cheaper.
    stop = est.random_search_early_stopping(perfect4, None, seed=5, check_epoch=1)
    full = est.random_search(perfect4, None, seed=5)
    records = sorted(set(est.incumbents(full)), key=est.incumbents(full).index)
    finished = [arch for _, arch, _, test in stop.trajectory if test is not None]
    assert finished == records and finished[-1] == perfect4.best("test_acc").arch
    assert stop.elapsed == pytest.approx(len(perfect4) * 25.0 + len(finished) * 75.0)
    cut = est.random_search_early_stopping(perfect4, None, seed=5, threshold=0.9)
    assert cut.elapsed == pytest.approx(len(perfect4) * 25.0)  # every curve is below 0.9
    with pytest.raises(ValueError, match="between 1 and 3"):
        est.random_search_early_stopping(perfect4, 1000, 0, check_epoch=4)


def test_early_stopping_measures_against_the_incumbent_not_the_last_finished():
    # A noisy early signal and a margin: some finished architectures do not become incumbent,
    # and the bar must stay the incumbent's early accuracy. Replay the rule on the trajectory.
    bench = synthetic(epochs=4, early=0.3, seed=3)
    clock = est.random_search_early_stopping(bench, None, seed=0, margin=0.01)
    steps, bar, best, finished_but_not_best = iter(clock.trajectory), -np.inf, -np.inf, 0
    for _, arch, early, _ in steps:
        if early < bar - 0.01:
            continue
        _, again, final, test = next(steps)  # it must have been resumed to the end
        assert again == arch and test is not None
        if final > best:
            best, bar = final, early
        else:
            finished_but_not_best += 1
    assert finished_but_not_best > 0


# ---------------------------------------------------------------------------------------------
# Learning-curve extrapolation (Domhan et al., IJCAI 2015) and its stopping rule
# ---------------------------------------------------------------------------------------------


def family_curve(name: str, shape: int, c: float, a: float, horizon: int) -> np.ndarray:
    """c - a g(t), t = 1..horizon, for the shape-th grid point of a family of the ensemble."""
    g, grid = est.CURVE_FAMILIES[name]
    return c - a * g(np.arange(1, horizon + 1.0), horizon, *grid[shape])


@pytest.mark.parametrize(
    "name, shape, c, a",
    [
        ("pow3", 8, 0.95, 0.6),
        ("weibull", 40, 0.92, 0.7),
        ("mmf", 33, 0.9, 0.75),
        ("ilog2", 0, 0.99, 0.5),
    ],
)
def test_extrapolation_recovers_a_known_curve_from_its_prefix(name, shape, c, a):
    truth = family_curve(name, shape, c, a, horizon=40)
    clean = est.extrapolate(truth[:20], 40, noise=0.001, seed=0)
    low, high = clean.band(0.9)
    assert clean.mean() == pytest.approx(truth[-1], abs=0.002)
    assert low[-1] <= truth[-1] <= high[-1] and high[-1] - low[-1] < 0.01
    assert clean.family_weights[name] > 0.8
    noisy = truth[:20] + 0.01 * np.random.default_rng(3).standard_normal(20)
    fit = est.extrapolate(noisy, 40, noise=0.01, seed=0)
    low, high = fit.band(0.95)
    assert low[-1] <= truth[-1] <= high[-1] and fit.mean() == pytest.approx(truth[-1], abs=0.03)
    assert high[-1] - low[-1] > 3 * (clean.band(0.95)[1][-1] - clean.band(0.95)[0][-1])


def test_extrapolated_curves_rise_and_stay_accuracies():
    # A steep prefix that a free power law would carry past 1 (as 0.10, 0.66, 0.92 on digits).
    fit = est.extrapolate([0.10, 0.66, 0.92], 4, seed=0)
    assert fit.curves.shape[1] == fit.horizon == 4 and fit.weights.sum() == pytest.approx(1)
    assert (fit.curves[:, -1] <= 1).all() and (fit.curves[:, 0] >= 0).all()
    assert (fit.curves[:, -1] >= fit.curves[:, 0]).all()
    assert 0.92 < fit.mean() <= 1
    flat = est.extrapolate([0.5, 0.5, 0.5, 0.5], 8, noise=0.001, seed=0)
    assert flat.mean() == pytest.approx(0.5, abs=0.01)  # nothing says it will rise
    with warnings.catch_warnings():  # a 2-epoch horizon: some shapes are flat to float precision
        warnings.simplefilter("error")
        short = est.extrapolate([0.3, 0.6], 2, seed=0)
    assert np.isfinite(short.mean()) and abs(sum(short.family_weights.values()) - 1) < 1e-9


def test_improvement_probability_is_monotone_in_the_incumbent():
    fit = est.extrapolate([0.3, 0.55, 0.68, 0.75], 12, seed=0)
    bars = np.linspace(0, 1.1, 111)
    p = np.array([fit.prob_above(bar) for bar in bars])
    assert (np.diff(p) <= 0).all() and p[0] == pytest.approx(1, abs=1e-6) and p[-1] < 1e-3
    assert p[np.searchsorted(bars, fit.mean())] == pytest.approx(0.5, abs=0.2)


def test_extrapolation_is_seeded():
    runs = [est.extrapolate([0.2, 0.5, 0.6], 10, seed=s) for s in (4, 4, 5)]
    np.testing.assert_array_equal(runs[0].curves, runs[1].curves)
    assert runs[0].curves.shape != runs[2].curves.shape or (runs[0].curves != runs[2].curves).any()
    assert runs[0].prob_above(0.7) == pytest.approx(runs[2].prob_above(0.7), abs=0.05)


def test_extrapolation_refuses_bad_input_clearly():
    with pytest.raises(ValueError, match="at least 2 epochs"):
        est.extrapolate([0.5], 4)
    with pytest.raises(ValueError, match="divide percentages by 100"):
        est.extrapolate([50.0, 70.0], 4)
    with pytest.raises(ValueError, match="horizon must be an integer epoch"):
        est.extrapolate([0.5, 0.6, 0.7], 2)
    with pytest.raises(ValueError, match="noise must be a positive"):
        est.extrapolate([0.5, 0.6], 4, noise=0)


def test_stopping_rule_stops_a_curve_that_cannot_catch_up_and_keeps_one_that_will():
    plateau = family_curve("weibull", 14, 0.80, 0.5, horizon=10)  # flat at 0.80 from epoch 5
    bloomer = family_curve("pow3", 12, 1.0, 0.75, horizon=10)  # still rising, ends at 0.88
    assert plateau[5] < bloomer[5] < 0.85 < bloomer[-1] and plateau[-1] < 0.81
    stop = est.should_stop_extrapolated
    assert stop(plateau[:6], 0.85, horizon=10, seed=0)
    assert not stop(bloomer[:6], 0.85, horizon=10, seed=0)
    assert not stop(plateau[:6], None, horizon=10, seed=0)  # no incumbent yet
    assert not stop(plateau[:1], 0.85, horizon=10, seed=0)  # one point: nothing to fit
    assert not stop(plateau[:6], 0.7, horizon=10, seed=0)  # already above the incumbent
    assert not stop([0.9, 0.5], 0.95, horizon=10, seed=0)  # no rising curve fits: go on
    with pytest.raises(ValueError, match="delta must be a probability"):
        stop(plateau[:4], 0.9, horizon=10, delta=1.5)


def late_bloomers(n_archs: int = 30, epochs: int = 8, times: np.ndarray | None = None) -> Benchmark:
    """Pow3 curves (a shape of the ensemble's grid) whose epoch-1 accuracy is anti-correlated with
    the final one: the best cell starts lowest. Reading one early point misleads; extrapolating
    the curve does not."""
    arrays = dict(synthetic(n_archs, epochs, times=times).arrays)
    final = arrays["val_acc"][:, 0, -1].astype(float)  # 0.6 + 0.3 q, distinct
    start = 0.5 - (final - 0.6)  # 0.5 for the worst cell, 0.2 for the best
    rise = family_curve("pow3", 10, 1, 1, epochs)  # 1 - t^-alpha
    rise = (rise - rise[0]) / (rise[-1] - rise[0])  # 0 at epoch 1, 1 at the last
    val = start[:, None] + (final - start)[:, None] * rise[None, :]
    arrays["val_acc"] = np.repeat(val[:, None, :], 2, axis=1)
    return Benchmark(arrays, manifest={})


def trainings(clock) -> list[tuple[str, int]]:
    """(architecture, epochs trained) in visiting order: the search queries one epoch at a time."""
    runs: list[tuple[str, int]] = []
    for _, arch, _, _ in clock.trajectory:
        if runs and runs[-1][0] == arch:
            runs[-1] = (arch, runs[-1][1] + 1)
        else:
            runs.append((arch, 1))
    return runs


def test_extrapolation_search_stops_only_what_cannot_win_and_keeps_the_late_bloomer():
    bench = late_bloomers()
    best, epochs = bench.best("test_acc").arch, bench.epochs
    missed_by_one_point = 0
    for seed in range(5):
        clock = est.random_search_extrapolation(bench, None, seed)
        runs, incumbent, stopped = trainings(clock), -np.inf, 0
        full = est.random_search(bench, None, seed)
        assert [arch for arch, _ in runs] == [arch for _, arch, _, _ in full.trajectory]
        for arch, trained in runs:
            final = bench.query(arch, seed=clock.seed).val_acc
            if trained < epochs:  # stopped: it could not have beaten the incumbent
                assert trained >= 2 and final < incumbent
                stopped += 1
            else:
                incumbent = max(incumbent, final)
        assert est.incumbents(clock)[-1] == best and stopped >= len(bench) // 2
        assert clock.elapsed < 0.75 * full.elapsed
        one_point = est.random_search_early_stopping(bench, None, seed, check_epoch=1)
        missed_by_one_point += est.incumbents(one_point)[-1] != best
    assert missed_by_one_point >= 3  # the epoch-1 rule drops the late bloomer


def test_extrapolation_search_is_domhans_rule_against_the_best_final_so_far():
    # Replay on a table of finals closer together than the noise, where some finished trainings
    # end below the incumbent: the bar must stay the best final accuracy so far (not the last
    # one), checked after epochs 2..E-1, with the draws taken from the search's generator in turn.
    bench = late_bloomers(n_archs=243, epochs=6)
    clock = est.random_search_extrapolation(bench, None, seed=2)
    rng = np.random.default_rng(2)
    seed = bench.seeds[int(rng.integers(len(bench.seeds)))]
    order = [bench.archs[i] for i in rng.permutation(len(bench))]
    assert clock.seed == seed and [arch for arch, _ in trainings(clock)] == order
    best, below = None, 0
    for arch, trained in trainings(clock):
        curve = [bench.query(arch, seed=seed, epoch=e).val_acc for e in range(1, 7)]
        for epoch in range(2, 6):
            if est.should_stop_extrapolated(curve[:epoch], best, 6, seed=rng):
                assert trained == epoch
                break
        else:
            assert trained == 6
            below += best is not None and curve[-1] < best
            best = curve[-1] if best is None else max(best, curve[-1])
    assert below > 0


def test_extrapolation_search_charges_only_the_epochs_trained():
    times = np.random.default_rng(0).uniform(50, 150, size=30)
    bench = late_bloomers(times=times)
    clock = est.random_search_extrapolation(bench, None, seed=1)
    steps = [times[bench.row(arch)] / bench.epochs for _, arch, _, _ in clock.trajectory]
    assert [t for t, *_ in clock.trajectory] == pytest.approx(np.cumsum(steps))
    charged = sum(times[bench.row(arch)] * trained / 8 for arch, trained in trainings(clock))
    assert clock.elapsed == pytest.approx(charged) and charged < times.sum()
    assert epochs_of(clock) == [e for _, trained in trainings(clock) for e in range(1, trained + 1)]


def test_extrapolation_search_is_seeded(perfect4):
    bench = late_bloomers()
    a, b = (est.random_search_extrapolation(bench, 2000, seed=3) for _ in range(2))
    assert a.trajectory == b.trajectory and a.seed == b.seed
    assert est.random_search_extrapolation(bench, 2000, seed=4).trajectory != a.trajectory
    rng = np.random.default_rng(3)
    assert est.random_search_extrapolation(bench, 2000, rng).trajectory == a.trajectory
    with pytest.raises(ValueError, match="at least 2"):
        est.random_search_extrapolation(perfect4, 1000, 0, min_epoch=1)
    with pytest.raises(ValueError, match="between 1 and 3"):
        est.random_search_extrapolation(perfect4, 1000, 0, min_epoch=4)


# ---------------------------------------------------------------------------------------------
# Regret, summaries, comparison
# ---------------------------------------------------------------------------------------------


def test_incumbent_prefers_finished_training_and_validation_only(perfect4):
    clock = perfect4.clock()
    clock.trajectory = [
        (1, "a", 0.9, None),
        (2, "b", 0.5, 0.4),
        (3, "c", 0.95, None),
        (4, "d", 0.6, 0.2),
        (5, "e", 0.6, 0.99),
    ]
    assert est.incumbents(clock) == ["a", "b", "b", "d", "d"]


def test_regret_is_non_increasing_and_zero_once_the_best_is_found(perfect4):
    clock = est.random_search(perfect4, None, seed=2)
    times = [t for t, *_ in clock.trajectory]
    found = times[[a for _, a, _, _ in clock.trajectory].index(perfect4.best("test_acc").arch)]
    grid = np.linspace(0, clock.elapsed, 500)
    (curve,) = est.regret_curves([clock], perfect4, grid)
    assert np.isnan(curve[grid < times[0]]).all()
    answered = curve[grid >= times[0]]
    assert (np.diff(answered) <= 0).all() and (answered >= 0).all() and answered[0] > 0
    assert (curve[grid >= found] == 0).all()
    assert (curve[(grid >= times[0]) & (grid < found)] > 0).all()


def test_a_low_fidelity_incumbent_is_reported_by_its_final_test_accuracy(perfect4):
    clock = est.successive_halving(perfect4, None, seed=0, n=4, eta=2)
    first4 = clock.trajectory[:4]  # epoch 1 only: no test accuracy seen yet
    leader = max(first4, key=lambda q: q[2])[1]
    (regret,) = est.regret_curves([clock], perfect4, [first4[-1][0]])[:, 0]
    assert regret == pytest.approx(
        perfect4.best("test_acc").test_acc - perfect4.query(leader).test_acc
    )


def test_summarize_matches_a_t_interval():
    curves = np.array([[0.0, 1.0, np.nan], [2.0, 1.0, 3.0], [1.0, 4.0, 2.0]])
    s = est.summarize(curves)
    low, high = stats.t.interval(0.95, 2, loc=1.0, scale=stats.sem(curves[:, 0]))
    assert s["mean"][:2] == pytest.approx([1.0, 2.0])
    assert (s["low"][0], s["high"][0]) == pytest.approx((low, high))
    assert s["high"][1] - s["low"][1] > s["high"][0] - s["low"][0]  # wider spread, wider band
    assert np.isnan(s["mean"][2])  # one run has no answer yet


def test_compare_runs_each_strategy_at_equal_budget(perfect4):
    grid = np.linspace(0, 800, 9)
    strategies = {"random": est.random_search, "hyperband": est.hyperband}
    curves = est.compare(strategies, perfect4, 800, seeds=[0, 1, 2], grid=grid, progress=False)
    assert set(curves) == set(strategies) and curves["random"].shape == (3, 9)
    again = est.regret_curves([est.hyperband(perfect4, 800, s) for s in (0, 1, 2)], perfect4, grid)
    np.testing.assert_array_equal(curves["hyperband"], again)
    with pytest.raises(TypeError, match="must return the SimulatedClock"):
        est.compare({"bad": lambda b, budget, s: None}, perfect4, 800, seeds=1, progress=False)
