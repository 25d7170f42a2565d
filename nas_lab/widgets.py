"""Interactive explorers for the lessons. The logic is plain functions, tested without a browser;
the widgets only wire them to controls."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nas_lab.spaces import nb201

if TYPE_CHECKING:
    from nas_lab.bench import Benchmark


def describe_cell(ops: tuple[str, ...], channels: int = 8, table: Benchmark | None = None) -> dict:
    """What the cell builder shows for a choice of six operations.

    With a benchmark ``table``, also what training gave (mean over seeds) and the cell's
    percentile: the share of the table's architectures whose test accuracy is strictly lower."""
    cell = nb201.Cell(tuple(ops))
    params, flops = nb201.params_and_flops(cell, C=channels)
    info = {
        "cell": str(cell),
        "canonical": str(cell.canonical()),
        "class_size": nb201.class_size(cell),
        "params": params,
        "flops": flops,
    }
    if table is not None:
        result = table.query(cell)
        info |= {
            "val_acc": result.val_acc,
            "test_acc": result.test_acc,
            "percentile": 100 * float(np.mean(table.column("test_acc") < result.test_acc)),
            "latency_ms": result.latency_ms,
        }
    return info


def _summary_html(info: dict) -> str:
    lines = [
        f"<b>canonical form</b> {info['canonical']}",
        f"<b>strings in its isomorphism class</b> {info['class_size']}",
        f"<b>network</b> {info['params']:,} parameters, {info['flops']:,} FLOPs (8x8 input)",
    ]
    if "test_acc" in info:
        lines.append(
            f"<b>benchmark</b> validation {info['val_acc']:.1%}, test {info['test_acc']:.1%}, "
            f"better than {info['percentile']:.1f}% of cells, {info['latency_ms']:.2f} ms"
        )
    return "<br>".join(lines)


def cell_builder(channels: int = 8, table: Benchmark | None = None):
    """Six drop-downs, one per edge, beside the drawing, canonical form and cost of the cell;
    with a benchmark ``table``, its accuracy and percentile, looked up live.

    Returns the widget: make it the last expression of a cell to display it."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    pickers = [
        widgets.Dropdown(options=nb201.OPS, value="nor_conv_3x3", description=f"{i} → {j}")
        for i, j in nb201.EDGES
    ]
    figure, summary = widgets.Output(), widgets.HTML()

    def redraw(_=None) -> None:
        info = describe_cell(tuple(p.value for p in pickers), channels, table)
        summary.value = _summary_html(info)
        with figure:
            figure.clear_output(wait=True)
            nb201.draw(nb201.Cell.from_string(info["cell"]))
            plt.show()

    for picker in pickers:
        picker.observe(redraw, names="value")
    redraw()
    return widgets.HBox([widgets.VBox(pickers), widgets.VBox([figure, summary])])


def proxy_explorer(bench: Benchmark, table, proxies: tuple[str, ...] | None = None):
    """Lesson 11: a drop-down choosing a zero-cost proxy, and the scatter of its score against
    test accuracy over every cell, titled with its Spearman and Kendall correlations. The data
    come from ``nas_lab.proxies.proxy_view``; ``table`` is a ``proxies.ProxyTable``.

    CSS hooks for the browser test: the drop-down has class ``nas-lab-proxy-picker``, the
    output that redraws ``nas-lab-proxy-scatter``. Returns the widget."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from nas_lab.proxies import proxy_view

    names = list(proxies or table.scores)
    picker = widgets.Dropdown(options=names, value=names[0], description="proxy")
    picker.add_class("nas-lab-proxy-picker")
    figure = widgets.Output()
    figure.add_class("nas-lab-proxy-scatter")

    def redraw(_=None) -> None:
        view = proxy_view(bench, table, picker.value)
        with figure:
            figure.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.scatter(view["x"], view["y"], s=3, alpha=0.3, label=f"{len(view['x'])} cells")
            ax.set(xlabel=view["xlabel"], ylabel=view["ylabel"], title=view["title"])
            ax.legend(loc="lower right")
            plt.show()

    picker.observe(redraw, names="value")
    redraw()
    return widgets.VBox([picker, figure])


def _phi_html(info: dict) -> str:
    return "<br>".join(
        [
            f"<b>phi = {info['phi']:.2f}</b>: depth x{info['depth']:.2f}, "
            f"width x{info['width']:.2f}, resolution x{info['resolution']:.2f}",
            f"<b>realised</b> blocks per stage {info['depths']}, channels {info['widths']}, "
            f"input {info['side']}x{info['side']}",
            f"<b>cost</b> {info['flops']:,} FLOPs, {info['params']:,} parameters",
            f"<b>FLOPs growth</b> rule (alpha beta^2 gamma^2)^phi = {info['rule_growth']:.2f}, "
            f"counted {info['counted_growth']:.2f}",
        ]
    )


def phi_explorer(coefficients: tuple[float, float, float] = (1.2, 1.1, 1.15)):
    """Lesson 08: a slider for EfficientNet's compound coefficient phi (Tan & Le, ICML 2019,
    eq. 3) beside what it does to the course's base network (``scaling.describe_phi``).

    Returns the widget: make it the last expression of a cell to display it."""
    import ipywidgets as widgets

    from nas_lab import scaling

    slider = widgets.FloatSlider(value=1.0, min=0.0, max=4.0, step=0.25, description="phi")
    summary = widgets.HTML()
    slider.add_class("nas-lab-phi")  # CSS hooks for the browser test
    summary.add_class("nas-lab-phi-summary")

    def redraw(_=None) -> None:
        summary.value = _phi_html(scaling.describe_phi(slider.value, coefficients))

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, summary])


def ofa_limit_explorer(latencies, accuracies, labels):
    """A latency-limit slider over Once-for-All subnets (lesson 10): the front, the limit, and
    the best subnet within it (``nas_lab.ofa.best_under_limit``), redrawn as the limit moves.
    The slider has the CSS class ``nas-lab-ofa-limit``, the text it changes ``nas-lab-ofa-best``."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from nas_lab import ofa

    lo, hi = float(np.min(latencies)), float(np.max(latencies))
    slider = widgets.FloatSlider(
        value=(lo + hi) / 2,
        min=lo,
        max=hi,
        step=(hi - lo) / 200 or 0.001,
        description="limit (ms)",
        readout_format=".3f",
        continuous_update=False,
    )
    slider.add_class("nas-lab-ofa-limit")
    figure, summary = widgets.Output(), widgets.HTML()
    summary.add_class("nas-lab-ofa-best")

    def redraw(_=None) -> None:
        summary.value = ofa.limit_summary(latencies, accuracies, labels, slider.value)
        with figure:
            figure.clear_output(wait=True)
            ofa.plot_front(latencies, accuracies, slider.value, title="Best subnet under a limit")
            plt.show()

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, figure, summary])


def _limit_html(info: dict, names: list[str], latency, accuracy, limit: float) -> str:
    if info["pick"] is None:
        return f"<b>limit {limit:.3f} ms</b>: no architecture is that fast"
    i = info["pick"]
    return "<br>".join(
        [
            f"<b>limit {limit:.3f} ms</b>: {info['feasible']} architectures qualify",
            f"<b>deploy</b> {names[i]}",
            f"<b>its accuracy</b> {accuracy[i]:.2%} at {latency[i]:.3f} ms",
        ]
    )


def latency_limit_explorer(latency, accuracy, names, limit: float | None = None):
    """Lesson 09: a latency-limit slider over an accuracy-latency Pareto front; it shows the
    most accurate architecture under the limit (``hardware.pareto_pick``).

    Returns the widget: make it the last expression of a cell to display it."""
    import ipywidgets as widgets

    from nas_lab.hardware import pareto_pick

    latency, accuracy, names = np.asarray(latency), np.asarray(accuracy), list(names)
    low, high = float(latency.min()), float(latency.max())
    slider = widgets.FloatSlider(
        value=limit if limit is not None else float(np.median(latency)),
        min=low,
        max=high,
        step=(high - low) / 100,
        readout_format=".3f",
        description="limit (ms)",
    )
    summary = widgets.HTML()
    slider.add_class("nas-lab-latency-limit")  # CSS hooks for the browser test
    summary.add_class("nas-lab-latency-pick")

    def redraw(_=None) -> None:
        info = pareto_pick(latency, accuracy, slider.value)
        summary.value = _limit_html(info, names, latency, accuracy, slider.value)

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, summary])
