"""The explorers' logic, without a browser: what they show for a choice, and that they react."""

from __future__ import annotations

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
