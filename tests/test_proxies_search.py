"""Proxies in search, and the explorer's logic, on a synthetic landscape whose answer is known.

The landscape: every unique cell's accuracy is a known, distinct number; a "perfect" proxy
table scores each cell by that accuracy, a "reversed" one by its negative. Warm-started from
every unique cell, evolution with the perfect proxy must query the global best first (regret
exactly 0 from its first answer on), and with the reversed proxy its first population must be
exactly the worst cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nas_lab import proxies, warmstart
from nas_lab.bench import Benchmark
from nas_lab.spaces import nb201
from nas_lab.strategies import run


@pytest.fixture(scope="module")
def landscape() -> tuple[Benchmark, np.ndarray]:
    archs = [str(c) for c in nb201.unique_cells()]
    acc = np.random.default_rng(0).permutation(len(archs)) / len(archs)  # distinct values
    val = np.repeat(acc[:, None, None], 2, axis=1)  # two seeds, one epoch, no noise
    arrays = {
        "archs": np.array(archs),
        "seeds": np.array([0, 1]),
        "val_acc": val,
        "train_loss": 1 - val,
        "test_acc": val[:, :, 0],
        "train_time": np.ones((len(archs), 2)),
        "params": np.arange(1, len(archs) + 1),
        "flops": np.arange(1, len(archs) + 1),
        "latency_ms_batch1": np.ones(len(archs)),
        "latency_ms_train_batch": np.ones(len(archs)),
    }
    return Benchmark(arrays, manifest={"complete": True}), acc


def table_of(bench: Benchmark, **columns: np.ndarray) -> proxies.ProxyTable:
    return proxies.ProxyTable(list(bench.archs), dict(columns), manifest={})


def test_ranked_keeps_order_and_puts_missing_scores_last():
    values = np.array([2.0, np.nan, -np.inf, 5.0, np.inf, -1.0])
    r = proxies.ranked(values)
    assert np.isfinite(r).all()
    assert list(np.argsort(r, kind="stable")) == [1, 2, 5, 0, 3, 4]
    assert r[1] == r[2] < r[5]


def test_proxy_pool_is_the_top_of_the_drawn_cells_by_brute_force(landscape):
    bench, acc = landscape
    noisy = acc + np.random.default_rng(1).normal(0, 0.1, size=len(acc))
    table = table_of(bench, noisy=noisy)
    pool = warmstart.proxy_pool(table, "noisy", size=7, pool=200, seed=5)
    rng = np.random.default_rng(5)
    drawn = {str(nb201.canonical(nb201.sample(rng))) for _ in range(200)}
    best = sorted(drawn, key=lambda a: -noisy[bench.row(a)])[:7]
    assert [str(c) for c in pool] == best
    assert pool == warmstart.proxy_pool(table, "noisy", size=7, pool=200, seed=5)  # seeded


def test_a_perfect_proxy_warm_start_finds_the_best_cell_first(landscape):
    bench, acc = landscape
    table = table_of(bench, perfect=acc, reversed=-acc)
    best = warmstart.proxy_pool(table, "perfect", size=10, pool=None)
    assert str(best[0]) == bench.archs[int(np.argmax(acc))]
    curves = warmstart.warmup_comparison(
        bench, table, "perfect", budget=30, seeds=3, pool=None, grid=[1, 10, 30], progress=False
    )
    warm, plain = curves["evolution + perfect warm-up"], curves["evolution"]
    np.testing.assert_array_equal(warm, 0.0)  # the first query is the global best
    assert (plain[:, 0] > 0).all()  # a random first cell is not


def test_a_reversed_proxy_warm_start_trains_the_worst_cells_first(landscape):
    bench, acc = landscape
    table = table_of(bench, reversed=-acc)
    worst = warmstart.proxy_pool(table, "reversed", size=10, pool=None)
    strategy = warmstart.WarmStartedEvolution(worst, population_size=10, sample_size=3, seed=0)
    clock = run(strategy, bench, budget=10, seed=0)
    told = sorted(acc[bench.row(a)] for _, a, *_ in clock.trajectory)
    np.testing.assert_array_equal(told, np.sort(acc)[:10])


def test_without_warm_cells_it_is_plain_regularized_evolution(landscape):
    from nas_lab.strategies.evolution import RegularizedEvolution

    bench, _ = landscape
    a = run(warmstart.WarmStartedEvolution([], population_size=5, seed=3), bench, 40, seed=3)
    b = run(RegularizedEvolution(population_size=5, seed=3), bench, 40, seed=3)
    assert a.trajectory == b.trajectory


def test_proxy_view_matches_scipy_and_logs_the_baselines(landscape):
    bench, acc = landscape
    score = acc + np.random.default_rng(2).normal(0, 0.2, size=len(acc))
    score[:5] = np.nan  # unscored: not drawn, ranked last
    table = table_of(bench, synflow=score, params=np.arange(1.0, len(acc) + 1))
    view = proxies.proxy_view(bench, table, "synflow")
    assert view["dropped"] == 5 and len(view["x"]) == len(acc) - 5
    filled = np.where(np.isnan(score), np.nanmin(score) - 1, score)
    assert view["spearman"] == pytest.approx(stats.spearmanr(filled, acc).statistic)
    assert view["kendall"] == pytest.approx(stats.kendalltau(filled, acc).statistic)
    assert "Spearman" in view["title"]
    (row,) = proxies.correlations(bench, table, names=["synflow"])
    assert (row["spearman"], row["unscored"], row["n"]) == (view["spearman"], 5, len(acc))
    params = proxies.proxy_view(bench, table, "params")
    np.testing.assert_allclose(params["x"], np.log10(np.arange(1.0, len(acc) + 1)))
    with pytest.raises(ValueError, match="unknown proxy 'snipp'"):
        proxies.proxy_view(bench, table, "snipp")


def test_the_lesson_synflow_exercise_agrees_with_the_library():
    import torch
    from torch import nn

    from nas_lab.checks import lesson11

    rng = np.random.default_rng(0)
    widths = [3, 5, 4, 2, 6, 3]
    weights = [1e20 * rng.normal(size=(b, a)) for a, b in zip(widths, widths[1:], strict=False)]
    chain = nn.Sequential(*[nn.Linear(w.shape[1], w.shape[0], bias=False) for w in weights])
    chain.double()
    with torch.no_grad():
        for layer, w in zip(chain, weights, strict=True):
            layer.weight.copy_(torch.tensor(w))
    expected = proxies.synflow(chain, (widths[0],))  # R ~ 1e100: no rescaling needed
    assert lesson11.synflow_log10(weights) == pytest.approx(expected, rel=1e-12)


def test_the_pool_can_be_charged_to_the_clock(landscape):
    bench, acc = landscape
    table = table_of(bench, perfect=acc)
    # 100 cells at 0.05 s: 5 s before the first training; trainings cost 1 s each.
    grid = [4.9, 5.0, 6.0, 30.0]
    curves = warmstart.warmup_comparison(
        bench,
        table,
        "perfect",
        budget=30,
        seeds=2,
        pool=100,
        proxy_seconds=0.05,
        grid=grid,
        progress=False,
    )
    warm = curves["evolution + perfect warm-up"]
    assert np.isnan(warm[:, :2]).all()  # no answer yet at 5 s: the pool's score came first
    assert np.isfinite(warm[:, 2:]).all()
    with pytest.raises(ValueError, match="smaller pool"):
        warmstart.warmup_comparison(bench, table, "perfect", budget=4, pool=100, proxy_seconds=0.05)


def test_the_explorer_redraws_when_the_proxy_changes(landscape, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from nas_lab.widgets import proxy_explorer

    bench, acc = landscape
    table = table_of(bench, synflow=acc, params=np.arange(1.0, len(acc) + 1))
    drawn = []
    view = proxies.proxy_view
    monkeypatch.setattr(proxies, "proxy_view", lambda *a: drawn.append(a[2]) or view(*a))
    box = proxy_explorer(bench, table)
    picker, figure = box.children
    assert picker.options == ("synflow", "params")
    assert "nas-lab-proxy-picker" in picker._dom_classes
    assert "nas-lab-proxy-scatter" in figure._dom_classes
    picker.value = "params"
    assert drawn == ["synflow", "params"]
