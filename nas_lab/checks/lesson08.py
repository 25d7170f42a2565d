"""Checks for lesson 08 (EfficientNet compound scaling, Tan & Le, ICML 2019)."""

from __future__ import annotations

import numpy as np

from nas_lab import scaling
from nas_lab.checks import close, exercise

# ---- 08.1: the compound multipliers of eq. 3 -----------------------------------------------


def compound_multipliers(
    phi: float, alpha: float, beta: float, gamma: float
) -> tuple[float, float, float]:
    """Tan & Le (ICML 2019), eq. 3: depth ``alpha^phi``, width ``beta^phi``, resolution
    ``gamma^phi``."""
    return scaling.compound_multipliers(phi, alpha, beta, gamma)


def _phi_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = [(1.0, 1.2, 1.1, 1.15)]
    for _ in range(5):
        phi = float(rng.choice([0.5, 2.0, 3.0, 4.5, 7.0]))
        coefficients = rng.uniform(1.02, 1.5, size=3).round(3)
        cases.append((phi, *(float(c) for c in coefficients)))
    return cases


def _linear_in_phi(phi, alpha, beta, gamma):  # 1 + phi (c - 1): the power read as a product
    return tuple(1 + phi * (c - 1) for c in (alpha, beta, gamma))


def _power_swapped(phi, alpha, beta, gamma):  # c ** phi written the other way round
    return tuple(phi**c for c in (alpha, beta, gamma))


def _width_and_resolution_squared(phi, alpha, beta, gamma):  # the constraint's squares, misplaced
    return (alpha**phi, (beta**2) ** phi, (gamma**2) ** phi)


exercise(
    "08.1",
    title="compound multipliers (eq. 3)",
    points=1,
    inputs=_phi_inputs,
    compare=close,
    wrong=[_linear_in_phi, _power_swapped, _width_and_resolution_squared],
)(compound_multipliers)

# ---- 08.2: the grid of step 1 ------------------------------------------------------------------


def grid_candidates(step: float, target: float, tolerance: float) -> list[tuple]:
    """Step 1 of the recipe (Section 3.3): every ``(alpha, beta, gamma)`` on the grid
    ``1, 1 + step, ..., 2`` with ``|alpha beta^2 gamma^2 - target| <= tolerance``, in the order
    of ``itertools.product`` (alpha slowest)."""
    return scaling.grid_candidates(step, target, tolerance, max_value=2.0)


def _grid_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = [(0.1, 2.0, 0.1)]
    for _ in range(4):
        step = float(rng.choice([0.05, 0.1, 0.125, 0.25]))
        target = float(rng.choice([1.5, 2.0, 2.5, 3.0]))
        cases.append((step, target, round(float(rng.uniform(0.05, 0.3)), 3)))
    return cases


def _as_rows(answer, args) -> list[list[float]]:
    return [[float(v) for v in triple] for triple in answer(*args)]


def _compare_grids(expected, got) -> str | None:
    if len(got) != len(expected):
        return f"expected {len(expected)} candidates, got {len(got)}"
    return close(expected, got, rtol=0, atol=1e-6)


def _squares_on_alpha(step, target, tolerance):  # alpha^2 beta gamma^2: the squares misplaced
    return [
        (a, b, g) for a, b, g in _grid(step) if abs(a * a * b * g * g - target) <= tolerance + 1e-12
    ]


def _no_squares(step, target, tolerance):  # alpha beta gamma ~ target
    return [(a, b, g) for a, b, g in _grid(step) if abs(a * b * g - target) <= tolerance + 1e-12]


def _grid_from_zero(step, target, tolerance):  # forgets alpha, beta, gamma >= 1
    count = int(round(2.0 / step)) + 1
    values = [round(i * step, 10) for i in range(1, count)]
    return [
        (a, b, g)
        for a in values
        for b in values
        for g in values
        if abs(a * b * b * g * g - target) <= tolerance + 1e-12
    ]


def _grid(step):
    values = [round(1 + i * step, 10) for i in range(int(round(1 / step)) + 1)]
    return [(a, b, g) for a in values for b in values for g in values]


exercise(
    "08.2",
    title="the constrained grid of step 1",
    points=2,
    inputs=_grid_inputs,
    call=_as_rows,
    compare=_compare_grids,
    wrong=[_squares_on_alpha, _no_squares, _grid_from_zero],
)(grid_candidates)

# ---- 08.3: the multiply-adds of an MBConv block ------------------------------------------


def mbconv_macs(c_in: int, c_out: int, kernel: int, expansion: int, stride: int, side: int) -> int:
    """Multiply-adds of one MBConv block (Sandler et al., CVPR 2018, Table 1) on a ``side x
    side`` input, with 'same' padding, so the output side is ``ceil(side / stride)``:
    the 1x1 expansion (absent when ``expansion == 1``) at the input side, then the depthwise
    ``k x k`` convolution (one filter per channel) and the 1x1 projection at the output side.
    Counted by ``torch.utils.flop_counter`` on the real block, BatchNorm excluded."""
    from nas_lab.cost import count_macs
    from nas_lab.spaces.mbconv import MBConvBlock

    block = MBConvBlock(c_in, c_out, kernel, expansion, stride)
    return count_macs(block, (1, c_in, side, side))


def _block_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = [(16, 24, 3, 1, 2, 8), (8, 16, 5, 6, 2, 7)]  # expansion 1; an odd side, stride 2
    for _ in range(5):
        cases.append(
            (
                int(rng.integers(4, 40)),
                int(rng.integers(4, 40)),
                int(rng.choice([3, 5, 7])),
                int(rng.choice([3, 4, 6])),
                int(rng.choice([1, 2])),
                int(rng.choice([5, 7, 8, 9, 12])),  # odd sides: ceil, not floor
            )
        )
    return cases


def _dense_depthwise(c_in, c_out, kernel, expansion, stride, side):  # a full k x k conv
    hidden, out = c_in * expansion, -(-side // stride)
    expand = side * side * c_in * hidden if expansion != 1 else 0
    return expand + out * out * hidden * (hidden * kernel * kernel + c_out)


def _depthwise_at_input_side(c_in, c_out, kernel, expansion, stride, side):  # stride ignored
    hidden, out = c_in * expansion, -(-side // stride)
    expand = side * side * c_in * hidden if expansion != 1 else 0
    return expand + side * side * hidden * kernel * kernel + out * out * hidden * c_out


def _floor_side(c_in, c_out, kernel, expansion, stride, side):  # side // stride: valid padding
    hidden, out = c_in * expansion, side // stride
    expand = side * side * c_in * hidden if expansion != 1 else 0
    return expand + out * out * hidden * (kernel * kernel + c_out)


exercise(
    "08.3",
    title="multiply-adds of an MBConv block",
    points=3,
    inputs=_block_inputs,
    wrong=[_dense_depthwise, _depthwise_at_input_side, _floor_side],
)(mbconv_macs)
