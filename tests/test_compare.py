"""`nas-lab compare` on a synthetic table over every unique cell: CSV, figure, determinism."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import stats

from nas_lab import compare, estimation, strategies
from nas_lab.bench import Benchmark
from nas_lab.spaces import nb201


@pytest.fixture(scope="module")
def table() -> Benchmark:
    rng = np.random.default_rng(0)
    archs = [str(c) for c in nb201.unique_cells()]
    val = rng.uniform(0.5, 0.95, size=(len(archs), 2, 3))
    arrays = {
        "archs": np.array(archs),
        "seeds": np.array([0, 1]),
        "val_acc": val,
        "train_loss": 1 - val,
        "test_acc": val[:, :, -1] + rng.normal(0, 0.01, size=(len(archs), 2)),
        "train_time": np.ones((len(archs), 2)),
        "params": np.arange(len(archs)),
        "flops": np.arange(len(archs)),
        "latency_ms_batch1": np.ones(len(archs)),
        "latency_ms_train_batch": np.ones(len(archs)),
    }
    return Benchmark(arrays, manifest={"complete": True})


def test_compare_writes_a_csv_and_a_figure_and_repeats_itself(table, tmp_path):
    first = compare.save_comparison(
        ["rs", "rea"], 30, 3, tmp_path / "a", bench=table, progress=False
    )
    again = compare.save_comparison(
        ["rs", "rea"], 30, 3, tmp_path / "b", bench=table, progress=False
    )
    assert first.read_bytes() == again.read_bytes()
    assert (tmp_path / "a" / "regret.png").stat().st_size > 10_000
    rows = list(csv.DictReader(first.open()))
    assert list(rows[0]) == ["strategy", "seed", "time", "best_val_acc", "test_acc", "regret"]
    assert {r["strategy"] for r in rows} == {"rs", "rea"}
    assert {int(r["seed"]) for r in rows} == {0, 1, 2}
    for name in ("rs", "rea"):  # 30 simulated seconds at 1 s a training: 30 queries a run
        assert sum(r["strategy"] == name and r["seed"] == "0" for r in rows) == 30
    regret = np.array([float(r["regret"]) for r in rows])
    assert (regret >= -1e-6).all()
    run0 = [r for r in rows if r["strategy"] == "rs" and r["seed"] == "0"]
    best_val = [float(r["best_val_acc"]) for r in run0]
    assert best_val == sorted(best_val)  # the incumbent only improves


def test_compare_refuses_unknown_strategies_and_interim_tables(table, tmp_path):
    with pytest.raises(ValueError, match="choose from rs, rea"):
        compare.save_comparison(["rs", "hillclimb"], 10, 1, tmp_path, bench=table, progress=False)
    interim = Benchmark(table.arrays, manifest={"complete": False})
    with pytest.raises(ValueError, match="incomplete"):
        compare.save_comparison(["rs"], 10, 1, tmp_path, bench=interim, progress=False)


def test_final_test_acc_is_the_validation_best_cell_of_each_run(table):
    clocks = compare.run_all(["rs", "rea"], table, 40, 4, progress=False)
    finals = compare.final_test_acc(clocks, table)
    for name, runs in clocks.items():
        assert finals[name].shape == (4,)
        for clock, value in zip(runs, finals[name], strict=True):
            seen = [(val, -i, arch) for i, (_, arch, val, _) in enumerate(clock.trajectory)]
            _, _, best = max(seen)  # highest validation accuracy, the first one on ties
            assert value == table.query(best).test_acc


def test_results_table_known_answers():
    finals = {
        "rs": np.array([0.90, 0.91, 0.92, 0.93]),
        "bo": np.array([0.95, 0.92, 0.97, 0.96]),
        "same": np.array([0.90, 0.91, 0.92, 0.93]),
    }
    rows = {r["strategy"]: r for r in compare.results_table(finals)}
    bo = rows["bo"]
    assert bo["runs"] == 4 and bo["mean"] == pytest.approx(0.95)
    assert bo["std"] == pytest.approx(np.std(finals["bo"], ddof=1))
    low, high = stats.t.interval(0.95, 3, loc=0.95, scale=stats.sem(finals["bo"]))
    assert (bo["ci_low"], bo["ci_high"]) == pytest.approx((low, high))
    mw = stats.mannwhitneyu(finals["bo"], finals["rs"], alternative="two-sided").pvalue
    assert bo["p_mannwhitney_vs_rs"] == pytest.approx(mw)
    assert bo["p_wilcoxon_vs_rs"] == pytest.approx(
        stats.wilcoxon(finals["bo"], finals["rs"]).pvalue
    )
    assert np.isnan(rows["rs"]["p_mannwhitney_vs_rs"]) and np.isnan(rows["rs"]["p_wilcoxon_vs_rs"])
    assert np.isnan(rows["same"]["p_wilcoxon_vs_rs"])  # every pair ties: nothing to test
    with pytest.raises(ValueError, match="baseline 'rea'"):
        compare.results_table(finals, baseline="rea")


def test_a_csv_read_back_gives_the_finals_and_curves_of_the_clocks(table, tmp_path):
    """What a lesson rebuilds from the shipped CSV equals what the live runs give."""
    signed = Benchmark(table.arrays, manifest={"complete": True, "sha256": "abc"})
    compare.save_comparison(["rs", "rea"], 25, 3, tmp_path, bench=signed, progress=False)
    rows, meta = compare.load(tmp_path, bench=signed)
    assert meta["seeds"] == 3 and meta["budget"] == 25 and meta["table_sha256"] == "abc"
    assert (
        meta["command"]
        == f"nas-lab compare --strategies rs,rea --budget 25 --seeds 3 --out {tmp_path.as_posix()}"
    )
    clocks = compare.run_all(["rs", "rea"], table, 25, 3, progress=False)
    live = compare.final_test_acc(clocks, table)
    shipped = compare.finals_from_rows(rows)
    grid = np.linspace(0, 25, 17)
    curves = compare.curves_from_rows(rows, grid)
    for name in ("rs", "rea"):
        np.testing.assert_allclose(shipped[name], live[name], atol=1e-5)
        expected = estimation.regret_curves(clocks[name], table, grid)
        np.testing.assert_allclose(curves[name], expected, atol=1e-5)
        assert np.isnan(curves[name][:, 0]).all()  # nothing answered at time 0
        assert not np.isnan(curves[name][:, -1]).any()


def test_load_refuses_a_csv_of_another_table_and_a_missing_folder(table, tmp_path):
    compare.save_comparison(["rs"], 5, 1, tmp_path, bench=table, progress=False)  # no sha256: None
    other = Benchmark(table.arrays, manifest={"complete": True, "sha256": "0123"})
    with pytest.raises(ValueError, match="another benchmark table.*rerun `nas-lab compare"):
        compare.load(tmp_path, bench=other)
    with pytest.raises(FileNotFoundError, match="nas-lab compare"):
        compare.load(tmp_path / "missing")


def test_the_shipped_results_are_what_the_library_computes():
    """Lesson 05 reads data/compare_nb201_digits instead of running 20 seeds: the CSV must come
    from the shipped table and from today's strategies. A run's first queries do not depend on
    its budget, so short live runs must repeat the first rows of the shipped ones."""
    from nas_lab import bench

    table = bench.load()
    shipped, meta = compare.load(compare.SHIPPED, table)  # refuses a CSV of another table
    assert meta["seeds"] >= 20 and meta["strategies"] == list(strategies.REGISTRY)
    assert sum(p.stat().st_size for p in compare.SHIPPED.iterdir()) < 1_000_000
    budget = 10 * float(np.mean(table.column("train_time")))
    clocks = compare.run_all(["rs", "rea", "bo"], table, budget, 2, progress=False)
    live, stored = compare.by_run(compare.rows(clocks, table)), compare.by_run(shipped)
    for name, runs in live.items():
        for seed, rows in runs.items():
            assert len(rows) >= 5 and rows == stored[name][seed][: len(rows)], (name, seed)


def test_one_registration_adds_a_strategy_to_compare_and_its_command(table, tmp_path, monkeypatch):
    from nas_lab import cli

    monkeypatch.setitem(strategies.REGISTRY, "rs2", "random_search:RandomSearch")
    clocks = compare.run_all(["rs", "rs2"], table, 20, 2, progress=False)
    assert [c.trajectory for c in clocks["rs"]] == [c.trajectory for c in clocks["rs2"]]
    asked = []
    monkeypatch.setattr(
        compare, "save_comparison", lambda names, *a: asked.append(names) or tmp_path
    )
    cli.main(["compare", "--budget", "1", "--out", str(tmp_path)])
    assert asked == [list(strategies.REGISTRY)] and "rs2" in asked[0]
    with pytest.raises(ValueError, match="choose from rs, rea"):
        strategies.make("hillclimb", 0)
