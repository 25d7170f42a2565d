"""A drawing of the cell, and ``NB201Space``: the space as one object for search strategies."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nas_lab.spaces.nb201.cell import (
    ADJACENCY_NODES,
    EDGES,
    NUM_CELLS,
    NUM_NODES,
    OPS,
    Cell,
    active_edges,
    adjacency,
    all_cells,
    as_cell,
    canonical,
    mutate,
    neighbours,
    onehot,
    path_encoding,
    sample,
)

_OP_STYLE = {  # colour and short label per operation
    "skip_connect": ("tab:gray", "skip"),
    "nor_conv_1x1": ("tab:blue", "conv1x1"),
    "nor_conv_3x3": ("tab:red", "conv3x3"),
    "avg_pool_3x3": ("tab:green", "avgpool"),
}


def draw(cell: Cell | str, ax=None):
    """Draw the cell: nodes 0..3 on a line, one curved, labelled arrow per non-``none`` edge,
    coloured by operation. Edges that cannot reach the output (see ``active_edges``) are dashed.
    Returns the matplotlib Axes (nothing is shown)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    cell = as_cell(cell)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    position = {node: (float(node), 0.0) for node in range(NUM_NODES)}
    active = set(active_edges(cell))
    for (i, j), op in zip(EDGES, cell.ops, strict=True):
        if op == "none":
            continue
        colour, label = _OP_STYLE[op]
        # Neighbours: a straight arrow. Longer edges arc over the nodes they skip; with arc3 the
        # curve's peak sits rad * span / 2 above the line, so 0->3 arcs over 0->2 and 1->3.
        bend = 0.0 if j - i == 1 else 0.4
        ax.add_patch(
            FancyArrowPatch(
                position[i],
                position[j],
                connectionstyle=f"arc3,rad={-bend}",
                arrowstyle="-|>",
                mutation_scale=15,
                color=colour,
                linewidth=2,
                linestyle="-" if (i, j) in active else "--",
                shrinkA=12,
                shrinkB=12,
            )
        )
        peak = bend * (j - i) / 2
        ax.text((i + j) / 2, peak + 0.05, label, ha="center", fontsize=8, color=colour)
    for node, (x, y) in position.items():
        name = {0: "in", NUM_NODES - 1: "out"}.get(node, str(node))
        ax.scatter([x], [y], s=500, color="white", edgecolors="black", zorder=3)
        ax.text(x, y, name, ha="center", va="center", fontsize=9, zorder=4)
    handles = [Line2D([], [], color=c, linewidth=2, label=op) for op, (c, _) in _OP_STYLE.items()]
    ax.legend(handles=handles, loc="lower center", ncol=4, fontsize=7, frameon=False)
    ax.set_xlim(-0.4, NUM_NODES - 0.6)
    ax.set_ylim(-0.4, 0.85)
    ax.set_axis_off()
    ax.set_title(cell.to_string(), fontsize=8)
    return ax


ENCODINGS = ("onehot", "adjacency", "path")


class NB201Space:
    """The NAS-Bench-201 space as one object for search strategies (space, strategy and evaluator
    are separate, as in NNI): sample, mutate, neighbours, encode, canonical, and iteration."""

    num_unique = 6466  # isomorphism classes, Dong & Yang 2020 (checked in the tests)

    def sample(self, rng: np.random.Generator | int) -> Cell:
        return sample(rng)

    def mutate(self, cell: Cell | str, rng: np.random.Generator | int) -> Cell:
        return mutate(cell, rng)

    def neighbours(self, cell: Cell | str) -> list[Cell]:
        return neighbours(cell)

    def canonical(self, cell: Cell | str) -> Cell:
        return canonical(cell)

    def encode(self, cell: Cell | str, kind: str = "onehot") -> np.ndarray:
        """A flat float32 vector: ``onehot`` (30), ``adjacency`` (the 8x8 matrix's upper
        triangle, 28, then the 6 edge nodes' one-hot ops, 30: 58 in all) or ``path`` (84)."""
        if kind == "onehot":
            return onehot(cell)
        if kind == "path":
            return path_encoding(cell)
        if kind == "adjacency":
            matrix, _ = adjacency(cell)
            upper = matrix[np.triu_indices(ADJACENCY_NODES, k=1)].astype(np.float32)
            return np.concatenate([upper, onehot(cell)])
        raise ValueError(f"unknown encoding {kind!r}; choose one of {', '.join(ENCODINGS)}")

    def __len__(self) -> int:
        return NUM_CELLS

    def __iter__(self) -> Iterator[Cell]:
        return iter(all_cells())

    def __contains__(self, arch: object) -> bool:
        try:
            as_cell(arch)  # type: ignore[arg-type]
        except ValueError:
            return False
        return True

    def __repr__(self) -> str:
        return f"NB201Space({NUM_CELLS} cells, {self.num_unique} unique, ops={OPS})"
