"""Interactive explorers for the lessons. The logic is plain functions, tested without a browser;
the widgets only wire them to controls."""

from __future__ import annotations

from nas_lab.spaces import nb201


def describe_cell(ops: tuple[str, ...], channels: int = 8) -> dict:
    """What the cell builder shows for a choice of six operations."""
    cell = nb201.Cell(tuple(ops))
    params, flops = nb201.params_and_flops(cell, C=channels)
    rep = cell.canonical()
    return {
        "cell": str(cell),
        "canonical": str(rep),
        "class_size": nb201.class_size(cell),
        "params": params,
        "flops": flops,
    }


def cell_builder(channels: int = 8):
    """Six drop-downs, one per edge, beside the drawing, canonical form and cost of the cell.

    Returns the widget: make it the last expression of a cell to display it."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    pickers = [
        widgets.Dropdown(options=nb201.OPS, value="nor_conv_3x3", description=f"{i} → {j}")
        for i, j in nb201.EDGES
    ]
    figure, summary = widgets.Output(), widgets.HTML()

    def redraw(_=None) -> None:
        info = describe_cell(tuple(p.value for p in pickers), channels)
        summary.value = (
            f"<b>canonical form</b> {info['canonical']}<br>"
            f"<b>strings in its isomorphism class</b> {info['class_size']}<br>"
            f"<b>network</b> {info['params']:,} parameters, {info['flops']:,} FLOPs (8x8 input)"
        )
        with figure:
            figure.clear_output(wait=True)
            nb201.draw(nb201.Cell.from_string(info["cell"]))
            plt.show()

    for picker in pickers:
        picker.observe(redraw, names="value")
    redraw()
    return widgets.HBox([widgets.VBox(pickers), widgets.VBox([figure, summary])])
