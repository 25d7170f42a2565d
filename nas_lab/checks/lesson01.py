"""Checks for lesson 01 (search spaces)."""

from __future__ import annotations

import numpy as np

from nas_lab.checks import exercise
from nas_lab.cost import count_flops, count_params
from nas_lab.spaces import nb201


def _random_cells(rng: np.random.Generator, n: int, p_none: float = 0.2) -> list[str]:
    """Random cell strings; `p_none` raises the share of `none` edges where pruning matters."""
    others = [op for op in nb201.OPS if op != "none"]
    cells = []
    for _ in range(n):
        ops = [
            "none" if rng.random() < p_none else others[rng.integers(len(others))]
            for _ in nb201.EDGES
        ]
        cells.append(str(nb201.Cell(tuple(ops))))
    return cells


# ---- 01.1: parse a cell string ------------------------------------------------------------


def parse_cell(cell_string: str) -> list[tuple[int, int, str]]:
    """The edges of a cell as (source, target, operation), in the string's order."""
    ops = nb201.Cell.from_string(cell_string).ops
    return [(i, j, op) for (i, j), op in zip(nb201.EDGES, ops, strict=True)]


def _target_source_swapped(cell_string):
    return [(j, i, op) for i, j, op in parse_cell(cell_string)]


def _targets_from_zero(cell_string):  # numbers the cell's nodes from the first sum, not the input
    return [(i, j - 1, op) for i, j, op in parse_cell(cell_string)]


exercise(
    "01.1",
    title="parse a NAS-Bench-201 cell string",
    points=1,
    inputs=lambda rng: [(c,) for c in _random_cells(rng, 5)],
    wrong=[_target_source_swapped, _targets_from_zero],
)(parse_cell)

# ---- 01.2: parameters of a cell -----------------------------------------------------------


def cell_params(cell_string: str, channels: int) -> int:
    """Trainable parameters of one cell with `channels` channels on every node."""
    return count_params(nb201.CellModule(nb201.Cell.from_string(cell_string), channels))


# Cells without `none` edges: every edge is then built (lesson 01, section 3 shows why not always).
def _cell_inputs(rng: np.random.Generator) -> list[tuple]:
    return [(c, int(rng.integers(2, 17))) for c in _random_cells(rng, 5, p_none=0.0)]


def _weights_without_batchnorm(cell_string, channels):
    ops = nb201.Cell.from_string(cell_string).ops
    kernels = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
    return sum(kernels[op] ** 2 * channels**2 for op in ops if op in kernels)


def _depthwise_convolutions(cell_string, channels):
    ops = nb201.Cell.from_string(cell_string).ops
    kernels = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
    return sum(kernels[op] ** 2 * channels + 2 * channels for op in ops if op in kernels)


exercise(
    "01.2",
    title="parameters of a cell",
    points=2,
    inputs=_cell_inputs,
    wrong=[_weights_without_batchnorm, _depthwise_convolutions],
)(cell_params)

# ---- 01.3: FLOPs of a cell ----------------------------------------------------------------


def cell_flops(cell_string: str, channels: int, size: int) -> int:
    """FLOPs of one forward pass of a cell on a (1, channels, size, size) input."""
    cell = nb201.CellModule(nb201.Cell.from_string(cell_string), channels)
    return count_flops(cell, (1, channels, size, size))


def _flops_inputs(rng: np.random.Generator) -> list[tuple]:
    cells = _random_cells(rng, 5, p_none=0.0)
    return [(c, int(rng.integers(2, 17)), int(rng.integers(2, 9))) for c in cells]


def _multiply_adds(cell_string, channels, size):  # counts a multiply-add once, not twice
    return cell_flops(cell_string, channels, size) // 2


def _only_3x3(cell_string, channels, size):
    ops = nb201.Cell.from_string(cell_string).ops
    return sum(2 * 9 * channels**2 * size**2 for op in ops if op == "nor_conv_3x3")


exercise(
    "01.3",
    title="FLOPs of a cell",
    points=2,
    inputs=_flops_inputs,
    wrong=[_multiply_adds, _only_3x3],
)(cell_flops)

# ---- 01.4: prune the edges that cannot matter ---------------------------------------------


def prune(cell_string: str) -> str:
    """The cell with every edge that lies on no input-to-output path set to `none`."""
    return str(nb201.prune(cell_string))


def _prune_inputs(rng: np.random.Generator) -> list[tuple]:
    return [(c,) for c in _random_cells(rng, 12, p_none=0.5)]


def _forward_only(cell_string):  # drops edges the input cannot reach, keeps dead ends
    cell = nb201.Cell.from_string(cell_string)
    reached, ops = {0}, []
    for (i, j), op in zip(nb201.EDGES, cell.ops, strict=True):
        keep = op != "none" and i in reached
        reached |= {j} if keep else set()
        ops.append(op if keep else "none")
    return str(nb201.Cell(tuple(ops)))


def _backward_only(cell_string):  # drops dead ends, keeps edges the input cannot reach
    cell = nb201.Cell.from_string(cell_string)
    reaches_out, keep = {3}, {}
    for (i, j), op in reversed(list(zip(nb201.EDGES, cell.ops, strict=True))):
        keep[(i, j)] = op != "none" and j in reaches_out
        reaches_out |= {i} if keep[(i, j)] else set()
    ops = [op if keep[e] else "none" for e, op in zip(nb201.EDGES, cell.ops, strict=True)]
    return str(nb201.Cell(tuple(ops)))


exercise(
    "01.4",
    title="prune edges off every input-output path",
    points=3,
    inputs=_prune_inputs,
    wrong=[_forward_only, _backward_only],
)(prune)
