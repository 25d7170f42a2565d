"""The explorers' logic, without a browser: what they show for a choice, and that they react;
and the figures they redraw."""

from __future__ import annotations

from pytest import approx

from nas_lab import widgets
from nas_lab.spaces import nb201


def test_class_sizes_partition_all_strings():
    sizes = [nb201.class_size(cell) for cell in nb201.unique_cells()]
    assert len(sizes) == 6466 and sum(sizes) == 15625


def test_describe_cell_agrees_with_the_library():
    ops = ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "none", "nor_conv_1x1")
    info = widgets.describe_cell(ops)
    cell = nb201.Cell(ops)
    assert info["cell"] == str(cell)
    assert info["canonical"] == str(cell.canonical())
    assert (info["params"], info["flops"]) == nb201.params_and_flops(cell)
    same_class = [c for c in nb201.all_cells() if c.canonical() == cell.canonical()]
    assert info["class_size"] == len(same_class)


def test_cell_builder_redraws_when_an_edge_changes():
    box = widgets.cell_builder()
    pickers, summary = box.children[0].children, box.children[1].children[1]
    assert len(pickers) == 6
    before = summary.value
    for picker in pickers:
        picker.value = "none"
    assert before != summary.value
    empty = nb201.Cell(("none",) * 6)
    assert f"{nb201.class_size(empty)}<br>" in summary.value


def synthetic_table():
    """Every class, with test accuracy rising with the number of 3x3 convolutions."""
    import numpy as np

    from nas_lab.bench import Benchmark

    cells = nb201.unique_cells()
    score = np.array([c.ops.count("nor_conv_3x3") / 6 for c in cells])
    val = np.repeat(score[:, None, None], 2, axis=1).repeat(2, axis=2)
    arrays = {
        "archs": np.array([str(c) for c in cells]),
        "seeds": np.array([0, 1]),
        "val_acc": val,
        "train_loss": 1 - val,
        "test_acc": val[:, :, -1],
        "train_time": np.ones((len(cells), 2)),
        "params": np.zeros(len(cells), dtype=int),
        "flops": np.zeros(len(cells), dtype=int),
        "latency_ms_batch1": np.full(len(cells), 0.5),
        "latency_ms_train_batch": np.ones(len(cells)),
    }
    return Benchmark(arrays, manifest={"complete": True}), score


def test_describe_cell_looks_the_cell_up_in_the_benchmark():
    table, score = synthetic_table()
    ops = ("nor_conv_3x3", "nor_conv_3x3", "skip_connect", "none", "nor_conv_3x3", "none")
    info = widgets.describe_cell(ops, table=table)
    expected = nb201.Cell(ops).canonical().ops.count("nor_conv_3x3") / 6  # its class's score
    assert info["test_acc"] == info["val_acc"] == expected
    assert info["percentile"] == approx(100 * sum(s < expected for s in score) / len(score))
    best = widgets.describe_cell(("nor_conv_3x3",) * 6, table=table)
    assert best["percentile"] == approx(100 * (len(score) - 1) / len(score))


def test_cell_builder_with_a_table_shows_the_lookup_live():
    table, _ = synthetic_table()
    box = widgets.cell_builder(table=table)
    pickers, summary = box.children[0].children, box.children[1].children[1]
    assert "test 100.0%" in summary.value  # the default cell: all 3x3 convolutions
    pickers[nb201.EDGES.index((0, 3))].value = "skip_connect"  # prunes nothing
    assert "test 83.3%" in summary.value


def test_explorers_carry_the_css_hooks_the_browser_test_moves():
    """tests/test_browser.py finds each slider and its output by these classes."""
    phi = widgets.phi_explorer()
    limit = widgets.latency_limit_explorer([1.0, 2.0, 3.0], [0.5, 0.7, 0.9], ["a", "b", "c"])
    ofa = widgets.ofa_limit_explorer([1.0, 2.0, 3.0], [0.5, 0.7, 0.9], ["a", "b", "c"])
    for box, slider, output in [
        (phi, "nas-lab-phi", "nas-lab-phi-summary"),
        (limit, "nas-lab-latency-limit", "nas-lab-latency-pick"),
        (ofa, "nas-lab-ofa-limit", "nas-lab-ofa-best"),
    ]:
        classes = [c for child in box.children for c in child._dom_classes]
        assert slider in classes and output in classes


def test_limit_summary_names_the_best_subnet_within_the_limit():
    lat, acc, names = [1.0, 2.0, 3.0], [0.90, 0.95, 0.94], ["a", "b", "c"]
    assert "b" in widgets.limit_summary(lat, acc, names, 2.5)
    assert "95.0%" in widgets.limit_summary(lat, acc, names, 9.0)
    assert "a" in widgets.limit_summary(lat, acc, names, 1.5)
    assert "raise the limit" in widgets.limit_summary(lat, acc, names, 0.5)


def test_front_figure_is_labelled():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    widgets.plot_front([1.0, 2.0, 3.0], [0.9, 0.95, 0.94], limit_ms=2.5, ax=ax)
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "best within the limit" in labels
    plt.close(fig)
