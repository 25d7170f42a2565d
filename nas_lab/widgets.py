"""Interactive explorers for the lessons, and the figures they redraw. The logic is plain
functions, tested without a browser; the widgets only wire them to controls. The front and the
best point under a latency limit are ``nas_lab.pareto``'s; this module only shows them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from nas_lab.pareto import best_under_limit, latency_front, pareto_pick
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


def _limit_slider(
    low: float,
    high: float,
    value: float,
    step: float,
    classes: tuple[str, str],
    summarise: Callable[[float], str],
    draw: Callable[[float], object] | None = None,
    **options,
):
    """The latency-limit explorer of lessons 09 and 10: a slider from ``low`` to ``high`` ms,
    an HTML text ``summarise(limit)`` and, with ``draw``, a figure ``draw(limit)`` above it, both
    redrawn as the limit moves. ``classes`` are the CSS hooks of the slider and of the text (the
    browser test moves one and watches the other); ``options`` go to the slider."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    slider = widgets.FloatSlider(
        value=value,
        min=low,
        max=high,
        step=step,
        description="limit (ms)",
        readout_format=".3f",
        **options,
    )
    slider.add_class(classes[0])
    figure = None if draw is None else widgets.Output()
    summary = widgets.HTML()
    summary.add_class(classes[1])

    def redraw(_=None) -> None:
        summary.value = summarise(slider.value)
        if figure is not None:
            with figure:
                figure.clear_output(wait=True)
                draw(slider.value)
                plt.show()

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, summary] if figure is None else [slider, figure, summary])


def limit_summary(
    latencies: Sequence[float],
    accuracies: Sequence[float],
    labels: Sequence[str],
    limit_ms: float,
) -> str:
    """What the latency-limit slider shows: the best subnet within ``limit_ms`` (HTML)."""
    best = best_under_limit(latencies, accuracies, limit_ms)
    if best is None:
        return f"<b>no subnet</b> runs within {limit_ms:.3f} ms: raise the limit"
    return (
        f"<b>best within {limit_ms:.3f} ms</b>: {labels[best]}<br>"
        f"accuracy {accuracies[best]:.1%}, latency {latencies[best]:.3f} ms"
    )


def plot_front(latencies, accuracies, limit_ms: float | None = None, ax=None, title: str = ""):
    """All subnets as points, their accuracy-latency front (``nas_lab.pareto.latency_front``)
    as a line; with ``limit_ms``, the limit as a dashed line and the best subnet within it as a
    star. Lesson 10's figure, and the figure of :func:`ofa_limit_explorer`."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    lat, acc = np.asarray(latencies, dtype=float), np.asarray(accuracies, dtype=float)
    front = latency_front(lat, acc)
    ax.scatter(lat, acc, s=12, alpha=0.5, label="subnets")
    ax.step(lat[front], acc[front], where="post", color="crimson", label="front")
    if limit_ms is not None:
        ax.axvline(limit_ms, color="k", ls="--", lw=1, label=f"limit {limit_ms:.3f} ms")
        best = best_under_limit(lat, acc, limit_ms)
        if best is not None:
            ax.scatter(
                lat[best],
                acc[best],
                marker="*",
                s=250,
                color="gold",
                edgecolor="k",
                zorder=3,
                label="best within the limit",
            )
    ax.set_xlabel("latency (ms, lookup table)")
    ax.set_ylabel("accuracy")
    ax.set_title(title or "Accuracy against latency")
    ax.legend(loc="lower right")
    return ax


def ofa_limit_explorer(latencies, accuracies, labels):
    """A latency-limit slider over Once-for-All subnets (lesson 10): the front, the limit, and
    the best subnet within it (``nas_lab.pareto.best_under_limit``), redrawn as the limit moves.
    The slider has the CSS class ``nas-lab-ofa-limit``, the text it changes ``nas-lab-ofa-best``."""
    lo, hi = float(np.min(latencies)), float(np.max(latencies))
    return _limit_slider(
        lo,
        hi,
        value=(lo + hi) / 2,
        step=(hi - lo) / 200 or 0.001,
        classes=("nas-lab-ofa-limit", "nas-lab-ofa-best"),
        summarise=lambda limit: limit_summary(latencies, accuracies, labels, limit),
        draw=lambda limit: plot_front(
            latencies, accuracies, limit, title="Best subnet under a limit"
        ),
        continuous_update=False,
    )


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
    most accurate architecture under the limit (``nas_lab.pareto.pareto_pick``).
    The slider has the CSS class ``nas-lab-latency-limit``, the text it changes
    ``nas-lab-latency-pick``.

    Returns the widget: make it the last expression of a cell to display it."""
    latency, accuracy, names = np.asarray(latency), np.asarray(accuracy), list(names)
    low, high = float(latency.min()), float(latency.max())

    def summarise(value: float) -> str:
        return _limit_html(pareto_pick(latency, accuracy, value), names, latency, accuracy, value)

    return _limit_slider(
        low,
        high,
        value=limit if limit is not None else float(np.median(latency)),
        step=(high - low) / 100,
        classes=("nas-lab-latency-limit", "nas-lab-latency-pick"),
        summarise=summarise,
    )
