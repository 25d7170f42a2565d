"""Tests for the NAS-Bench-201 cell space (nas_lab.spaces.nb201).

Reference points that do not come from the implementation itself: the literature's string
format, the 6,466 unique architectures reported by Dong & Yang (ICLR 2020), hand-drawn cells for
encodings, and per-layer hand counts of parameters and FLOPs.
"""

from __future__ import annotations

import itertools
import time

import matplotlib
import numpy as np
import pytest
import torch

from nas_lab.spaces import nb201
from nas_lab.spaces.nb201 import (
    EDGES,
    OPS,
    PATHS,
    Cell,
    CellModule,
    NB201Space,
    active_edges,
    adjacency,
    all_cells,
    as_cell,
    build_network,
    canonical,
    draw,
    is_isomorphic,
    mutate,
    neighbours,
    onehot,
    params_and_flops,
    path_encoding,
    sample,
    unique_cells,
)

matplotlib.use("Agg")

# The example cell used throughout the NAS-Bench-201 paper and API docs.
EXAMPLE = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


def cell_of(**ops: str) -> Cell:
    """A cell from keyword edges like e01="nor_conv_3x3"; unnamed edges are `none`."""
    return Cell(tuple(ops.get(f"e{i}{j}", "none") for i, j in EDGES))


def uniform(op: str) -> Cell:
    return Cell((op,) * len(EDGES))


# -- strings and indices ---------------------------------------------------------------------


def test_example_string_parses_to_the_edges_it_names():
    cell = Cell.from_string(EXAMPLE)
    assert cell.ops == (
        "nor_conv_3x3",  # 0->1
        "none",  # 0->2
        "skip_connect",  # 1->2
        "skip_connect",  # 0->3
        "none",  # 1->3
        "nor_conv_3x3",  # 2->3
    )
    assert cell.op(2, 3) == "nor_conv_3x3"
    assert str(cell) == EXAMPLE


def test_all_strings_and_indices_round_trip():
    cells = all_cells()
    assert len(cells) == 5**6 == 15625
    strings = [cell.to_string() for cell in cells]
    assert len(set(strings)) == 15625
    for index, (cell, text) in enumerate(zip(cells, strings, strict=True)):
        assert Cell.from_string(text) == cell
        assert cell.index == index
        assert Cell.from_index(index) == cell


def test_index_is_base5_in_edge_order():
    # itertools.product enumerates the first edge slowest: the most significant base-5 digit.
    for index, ops in enumerate(itertools.product(OPS, repeat=6)):
        if index % 997 == 0:
            assert Cell.from_index(index).ops == ops
    assert Cell.from_index(1).ops == ("none",) * 5 + ("skip_connect",)
    assert uniform("avg_pool_3x3").index == 15624


def test_as_cell_accepts_cells_and_strings():
    cell = Cell.from_string(EXAMPLE)
    assert as_cell(cell) is cell
    assert as_cell(EXAMPLE) == cell
    assert Cell(list(cell.ops)) == cell  # lists become tuples (hashable)
    with pytest.raises(ValueError, match="Cell or an architecture string"):
        as_cell(3.5)


@pytest.mark.parametrize(
    "text, fragments",
    [
        # missing bar at the end of node 2's group
        (
            "|nor_conv_3x3~0|+|none~0|skip_connect~1+|skip_connect~0|none~1|nor_conv_3x3~2|",
            ["node 2", "'|'"],
        ),
        # node 3's second input claims to come from node 2
        (
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~2|nor_conv_3x3~2|",
            ["node 3", "edge 1->3", "none~2", "source index 1"],
        ),
        # unknown operation on edge 0->1
        (
            "|conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
            ["node 1", "edge 0->1", "'conv_3x3'", *OPS, "did you mean 'nor_conv_3x3'"],
        ),
        # only two node groups
        ("|nor_conv_3x3~0|+|none~0|skip_connect~1|", ["3 node groups", "got 2"]),
        # node 2 lists one input instead of two
        (
            "|nor_conv_3x3~0|+|none~0|+|skip_connect~0|none~1|nor_conv_3x3~2|",
            ["node 2", "expected 2 inputs"],
        ),
        # a token without '~source'
        (
            "|nor_conv_3x3|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
            ["node 1", "'op~0'"],
        ),
    ],
)
def test_malformed_strings_name_the_position_and_the_fix(text, fragments):
    with pytest.raises(ValueError) as error:
        Cell.from_string(text)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_invalid_cells_are_rejected_with_the_valid_choices():
    with pytest.raises(ValueError, match="needs 6 operations"):
        Cell(("none",) * 5)
    with pytest.raises(ValueError, match="edge 1->2.*valid operations are: none, skip_connect"):
        Cell(("none", "none", "conv5x5", "none", "none", "none"))
    with pytest.raises(ValueError, match="from_string"):
        Cell(EXAMPLE)  # a string is not a sequence of ops
    with pytest.raises(ValueError, match="0..15624"):
        Cell.from_index(15625)
    with pytest.raises(ValueError, match="no edge 2->1"):
        Cell.from_string(EXAMPLE).op(2, 1)


# -- isomorphism -----------------------------------------------------------------------------


def test_number_of_unique_architectures_is_nas_bench_201s():
    # Dong & Yang (ICLR 2020): 15,625 cells, 6,466 unique architectures.
    nb201.cell._class_table.cache_clear()
    start = time.perf_counter()
    reps = unique_cells()
    assert time.perf_counter() - start < 2.0
    assert len(reps) == 6466 == NB201Space.num_unique
    assert len({canonical(cell) for cell in all_cells()}) == 6466


def test_representative_is_the_smallest_index_of_its_class():
    classes: dict[Cell, list[int]] = {}
    for cell in all_cells():
        classes.setdefault(canonical(cell), []).append(cell.index)
    for rep, members in classes.items():
        assert rep.index == min(members)
        assert canonical(rep) == rep
    assert unique_cells() == sorted(classes, key=lambda cell: cell.index)


def test_sum_is_commutative():
    # Node 2 = conv3x3(x) + conv1x1(node 1) with node 1 = skip(x): swapping the two ops
    # between edges 0->2 and 1->2 only reorders the sum.
    a = cell_of(e01="skip_connect", e02="nor_conv_3x3", e12="nor_conv_1x1", e23="skip_connect")
    b = cell_of(e01="skip_connect", e02="nor_conv_1x1", e12="nor_conv_3x3", e23="skip_connect")
    assert a != b and is_isomorphic(a, b)
    # Same at node 3, between edges 0->3 and 1->3.
    c = cell_of(e01="skip_connect", e03="nor_conv_3x3", e13="avg_pool_3x3")
    d = cell_of(e01="skip_connect", e03="avg_pool_3x3", e13="nor_conv_3x3")
    assert is_isomorphic(c, d)
    # Without the skip, node 1 is conv1x1(x) and the swap changes what the sum adds up.
    e = cell_of(e01="nor_conv_1x1", e03="nor_conv_3x3", e13="avg_pool_3x3")
    f = cell_of(e01="nor_conv_1x1", e03="avg_pool_3x3", e13="nor_conv_3x3")
    assert not is_isomorphic(e, f)


def test_skip_connect_is_the_identity():
    direct = cell_of(e03="nor_conv_3x3")
    via_node_1 = cell_of(e01="skip_connect", e13="nor_conv_3x3")
    assert canonical(direct) == canonical(via_node_1)
    both = cell_of(e01="nor_conv_1x1", e13="skip_connect", e03="nor_conv_3x3")
    assert is_isomorphic(both, cell_of(e01="skip_connect", e13="nor_conv_3x3", e03="nor_conv_1x1"))
    # A pooling edge is not an identity: the same detour through avg_pool is a different cell.
    assert not is_isomorphic(direct, cell_of(e01="avg_pool_3x3", e13="nor_conv_3x3"))


def test_none_edges_and_zero_inputs_vanish():
    # Node 1 receives nothing (0->1 is none), so whatever leaves it carries zero.
    base = cell_of(e02="nor_conv_3x3", e23="skip_connect")
    for op12, op13 in itertools.product(OPS, OPS):
        variant = Cell(("none", "nor_conv_3x3", op12, "none", op13, "skip_connect"))
        assert is_isomorphic(base, variant)
    # A node that does not reach the output does not matter: node 2 here is a dead end.
    dead_end = cell_of(e01="nor_conv_1x1", e13="nor_conv_3x3")
    for op02, op12 in itertools.product(OPS, OPS):
        variant = cell_of(e01="nor_conv_1x1", e13="nor_conv_3x3", e02=op02, e12=op12)
        assert is_isomorphic(dead_end, variant)
    # Order along a path matters: conv1x1 then conv3x3 is not conv3x3 then conv1x1.
    assert not is_isomorphic(
        cell_of(e01="nor_conv_1x1", e13="nor_conv_3x3"),
        cell_of(e01="nor_conv_3x3", e13="nor_conv_1x1"),
    )


def test_the_rule_is_conservative_as_published():
    # NAS-Bench-201's rule keeps "#" (zero) terms inside a sum, so only node 1 (a single input)
    # can be recognised as zero. These pairs compute the same thing, yet land in different
    # classes; reproducing the published 6,466 means keeping them apart.
    # 1. Node 2 receives only zeros, so 2->3 adds nothing, whatever its op.
    a = cell_of(e03="skip_connect", e23="nor_conv_3x3")
    b = cell_of(e03="skip_connect", e23="avg_pool_3x3")
    assert not is_isomorphic(a, b)
    assert active_edges(a) == active_edges(b) == [(0, 3)]  # the same network
    # 2. A skip detour through node 2 (whose sum also holds the zero from 1->2).
    assert not is_isomorphic(
        cell_of(e03="nor_conv_3x3"), cell_of(e02="skip_connect", e23="nor_conv_3x3")
    )


def test_members_of_one_class_can_differ_in_parameters():
    # The rule reads expressions, not weights. Shared: node 1 = conv1x1(x) feeds node 2 and
    # node 3 through skips. Separate: two conv1x1 edges (0->2 and 0->3) compute the same terms.
    shared = Cell.from_string(
        "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|none~0|skip_connect~1|nor_conv_3x3~2|"
    )
    separate = Cell.from_string(
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    )
    assert is_isomorphic(shared, separate)
    (p_shared, _), (p_separate, _) = params_and_flops(shared), params_and_flops(separate)
    # One extra conv1x1 (C*C weights) + BatchNorm (2C) per cell, at C = 8, 16, 32.
    assert p_separate - p_shared == sum(c * c + 2 * c for c in (8, 16, 32))


def _randomise(module: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator))


def _copy_edges(src: CellModule, dst: CellModule, mapping: dict[str, str]) -> None:
    assert sorted(mapping) == sorted(src.edges) and sorted(mapping.values()) == sorted(dst.edges)
    for key_src, key_dst in mapping.items():
        dst.edges[key_dst].load_state_dict(src.edges[key_src].state_dict())


def _outputs(a: CellModule, b: CellModule, x: torch.Tensor, train: bool):
    a.train(train)
    b.train(train)
    with torch.no_grad():
        return a(x), b(x)


@pytest.mark.parametrize("train", [True, False])
def test_isomorphic_cells_compute_the_same_function(train):
    x = torch.randn(3, 4, 6, 6, generator=torch.Generator().manual_seed(0))
    # Pair 1: the two terms of node 2's sum swapped (see test_sum_is_commutative).
    a = cell_of(e01="skip_connect", e02="nor_conv_3x3", e12="nor_conv_1x1", e23="skip_connect")
    b = cell_of(e01="skip_connect", e02="nor_conv_1x1", e12="nor_conv_3x3", e23="skip_connect")
    assert is_isomorphic(a, b)
    net_a, net_b = CellModule(a, 4), CellModule(b, 4)
    _randomise(net_a, 1)
    _randomise(net_b, 2)
    out_a, out_b = _outputs(net_a, net_b, x, train)
    assert not torch.allclose(out_a, out_b)  # different weights: the check below can fail
    _copy_edges(net_a, net_b, {"0->1": "0->1", "0->2": "1->2", "1->2": "0->2", "2->3": "2->3"})
    out_a, out_b = _outputs(net_a, net_b, x, train)
    torch.testing.assert_close(out_a, out_b)

    # Pair 2: a skip detour through node 1 equals the direct edge (and the sum commutes).
    c = cell_of(e01="skip_connect", e13="nor_conv_3x3", e03="nor_conv_1x1")
    d = cell_of(e01="nor_conv_1x1", e13="skip_connect", e03="nor_conv_3x3")
    assert is_isomorphic(c, d)
    net_c, net_d = CellModule(c, 4), CellModule(d, 4)
    _randomise(net_c, 3)
    _copy_edges(net_c, net_d, {"0->1": "1->3", "1->3": "0->3", "0->3": "0->1"})
    torch.testing.assert_close(*_outputs(net_c, net_d, x, train))


def test_a_structural_change_shows_up_with_copied_weights():
    # The same convolutions, but node 2 now goes through avg_pool on its way out.
    a = cell_of(e01="skip_connect", e02="nor_conv_3x3", e12="nor_conv_1x1", e23="skip_connect")
    e = cell_of(e01="skip_connect", e02="nor_conv_3x3", e12="nor_conv_1x1", e23="avg_pool_3x3")
    assert not is_isomorphic(a, e)
    net_a, net_e = CellModule(a, 4), CellModule(e, 4)
    _randomise(net_a, 1)
    for key in ("0->2", "1->2"):
        net_e.edges[key].load_state_dict(net_a.edges[key].state_dict())
    x = torch.randn(3, 4, 6, 6, generator=torch.Generator().manual_seed(0))
    out_a, out_e = _outputs(net_a, net_e, x, train=False)
    assert not torch.allclose(out_a, out_e)


# -- sampling and moves ----------------------------------------------------------------------


def test_sample_is_deterministic_per_seed_and_covers_the_space():
    def draws(seed: int) -> list[Cell]:
        rng = np.random.default_rng(seed)
        return [sample(rng) for _ in range(50)]

    first, again, other = draws(7), draws(7), draws(8)
    assert first == again and first != other
    assert sample(3) == sample(3)
    rng = np.random.default_rng(0)
    cells = [sample(rng) for _ in range(3000)]
    # Uniform over strings: every op appears on every edge about 1/5 of the time.
    counts = np.array([[sum(c.ops[e] == op for c in cells) for op in OPS] for e in range(6)])
    assert np.all(np.abs(counts / 3000 - 0.2) < 0.04)


def test_mutate_changes_exactly_one_edge():
    rng = np.random.default_rng(0)
    cell = Cell.from_string(EXAMPLE)
    seen = set()
    for _ in range(400):
        child = mutate(cell, rng)
        changed = [e for e in range(6) if child.ops[e] != cell.ops[e]]
        assert len(changed) == 1
        seen.add(child)
    assert seen == set(neighbours(cell))  # every one-edge change is reachable
    assert mutate(EXAMPLE, 5) == mutate(cell, 5)


def test_neighbours_are_24_distinct_one_edge_changes():
    for cell in [Cell.from_string(EXAMPLE), uniform("none"), Cell.from_index(4321)]:
        near = neighbours(cell)
        assert len(near) == 24 == len(set(near))
        assert cell not in near
        for other in near:
            assert sum(a != b for a, b in zip(cell.ops, other.ops, strict=True)) == 1


# -- encodings -------------------------------------------------------------------------------


def test_onehot_marks_one_op_per_edge_and_is_injective():
    cell = Cell.from_string(EXAMPLE)
    code = onehot(cell)
    assert code.shape == (30,) and code.dtype == np.float32
    table = code.reshape(6, 5)
    assert table.sum(axis=1).tolist() == [1.0] * 6
    assert [OPS[i] for i in table.argmax(axis=1)] == list(cell.ops)
    codes = np.stack([onehot(c) for c in all_cells()])
    assert len(np.unique(codes, axis=0)) == 15625


def test_adjacency_of_the_example_cell_by_hand():
    matrix, labels = adjacency(EXAMPLE)
    # Nodes: 0 input | 1: 0->1 conv3x3 | 2: 0->2 none | 3: 1->2 skip | 4: 0->3 skip
    #        5: 1->3 none | 6: 2->3 conv3x3 | 7 output
    assert labels == ["input", *Cell.from_string(EXAMPLE).ops, "output"]
    expected = np.zeros((8, 8), dtype=int)
    for a, b in [(0, 1), (0, 4), (1, 3), (3, 6), (4, 7), (6, 7)]:
        expected[a, b] = 1
    np.testing.assert_array_equal(matrix, expected)
    assert matrix[:, 2].sum() == matrix[2].sum() == 0  # the none edge's node is isolated


def _count_paths(matrix: np.ndarray) -> int:
    """Input -> output paths in a DAG: sum over lengths k of (A^k)[0, -1]."""
    total, power = 0, np.eye(len(matrix), dtype=np.int64)
    for _ in range(len(matrix)):
        power = power @ matrix.astype(np.int64)
        total += int(power[0, -1])
    return total


def test_adjacency_is_upper_triangular_and_keeps_every_route():
    rng = np.random.default_rng(1)
    for index in rng.choice(15625, size=600, replace=False):
        cell = Cell.from_index(int(index))
        matrix, _ = adjacency(cell)
        assert matrix.shape == (8, 8) and set(np.unique(matrix)) <= {0, 1}
        assert not np.tril(matrix).any()
        # Independent count: routes 0->3, 0->1->3, 0->2->3, 0->1->2->3 without a none edge.
        routes = [((0, 3),), ((0, 1), (1, 3)), ((0, 2), (2, 3)), ((0, 1), (1, 2), (2, 3))]
        live = sum(all(cell.op(i, j) != "none" for i, j in route) for route in routes)
        assert _count_paths(matrix) == live


def test_path_encoding_by_hand():
    assert len(PATHS) == 84 == 4 + 16 + 64
    # Bit order: paths of length 1, 2, 3; ops (skip, conv1x1, conv3x3, avgpool) as base-4 digits.
    # Example: 0->3 is skip -> bit 0; 0->1->2->3 is conv3x3, skip, conv3x3 -> 20 + 2*16+0*4+2
    # = 54; 0->1->3 and 0->2->3 pass through a none edge and carry nothing.
    assert np.flatnonzero(path_encoding(EXAMPLE)).tolist() == [0, 54]
    # All conv3x3: (c3) -> 2; (c3, c3) -> 4 + 2*4+2 = 14 (both two-edge routes share it);
    # (c3, c3, c3) -> 20 + 2*16 + 2*4 + 2 = 62.
    assert np.flatnonzero(path_encoding(uniform("nor_conv_3x3"))).tolist() == [2, 14, 62]
    assert not path_encoding(uniform("none")).any()
    code = path_encoding(uniform("skip_connect"))
    assert code.shape == (84,) and code.dtype == np.float32
    assert not np.array_equal(code, path_encoding(uniform("avg_pool_3x3")))


def test_space_encodings_have_fixed_sizes_and_differ_between_cells():
    space = NB201Space()
    a, b = Cell.from_string(EXAMPLE), uniform("nor_conv_1x1")
    for kind, size in [("onehot", 30), ("adjacency", 28 + 30), ("path", 84)]:
        code_a, code_b = space.encode(a, kind), space.encode(b, kind)
        assert code_a.shape == code_b.shape == (size,)
        assert code_a.dtype == np.float32
        assert not np.array_equal(code_a, code_b)
    with pytest.raises(ValueError, match="onehot, adjacency, path"):
        space.encode(a, "graph")


# -- the network and its cost ----------------------------------------------------------------


def test_network_forward_shape_and_input_check():
    net = build_network(EXAMPLE)
    assert net.cell == Cell.from_string(EXAMPLE)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert build_network(uniform("none"), num_classes=3)(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"\(batch, 1, height, width\)"):
        net(torch.randn(2, 8, 8))
    with pytest.raises(ValueError, match="C must be a positive integer"):
        build_network(EXAMPLE, C=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_network_runs_on_the_gpu():
    net = build_network(EXAMPLE, device="cuda")
    assert net(torch.randn(2, 1, 8, 8, device="cuda")).shape == (2, 10)


def test_cell_module_runs_only_edges_that_reach_the_output():
    # Node 2 gets nothing (0->2, 1->2 none) and node 1 leads nowhere (1->2, 1->3 none):
    # only the skip 0->3 matters, so the cell has no parameters at all.
    cell = Cell.from_string(
        "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    )
    assert active_edges(cell) == [(0, 3)]
    module = CellModule(cell, 8)
    assert list(module.edges) == ["0->3"]
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(module(x), x)
    assert params_and_flops(cell) == params_and_flops(uniform("skip_connect"))
    # 6 conv3x3 edges at C=8: each 3*3*8*8 weights + BatchNorm's 2*8.
    assert sum(p.numel() for p in CellModule(uniform("nor_conv_3x3"), 8).parameters()) == 6 * (
        9 * 8 * 8 + 2 * 8
    )


def conv(k: int, c_in: int, c_out: int, hw: int) -> tuple[int, int]:
    """(params, FLOPs) of a k x k convolution without bias on an hw x hw output: k*k*Cin*Cout
    weights, 2 FLOPs (multiply + add) per weight per output position."""
    return k * k * c_in * c_out, 2 * k * k * c_in * c_out * hw * hw


def bn(c: int) -> tuple[int, int]:
    """BatchNorm: a weight and a bias per channel; torch's flop counter counts none of it."""
    return 2 * c, 0


def add(*layers: tuple[int, int]) -> tuple[int, int]:
    return sum(p for p, _ in layers), sum(f for _, f in layers)


def skeleton_cost(cell_cost) -> tuple[int, int]:
    """Hand count of CellNet(C=8, N=1) on a 1x1x8x8 input; cell_cost(C, hw) is one cell's."""
    stem = add(conv(3, 1, 8, 8), bn(8))  # 8x8
    reduce_1 = add(  # 8 -> 16 channels, 8x8 -> 4x4
        conv(3, 8, 16, 4), bn(16), conv(3, 16, 16, 4), bn(16), conv(1, 8, 16, 4)
    )  # AvgPool2d in the shortcut: 0 params, not counted
    reduce_2 = add(conv(3, 16, 32, 2), bn(32), conv(3, 32, 32, 2), bn(32), conv(1, 16, 32, 2))
    head = add(bn(32), (32 * 10 + 10, 2 * 32 * 10))  # linear: weights + bias; 2*in*out FLOPs
    cells = add(cell_cost(8, 8), cell_cost(16, 4), cell_cost(32, 2))
    return add(stem, reduce_1, reduce_2, head, cells)


def test_params_and_flops_match_a_hand_count_all_conv3x3():
    def cell_cost(c: int, hw: int) -> tuple[int, int]:
        return add(*[add(conv(3, c, c, hw), bn(c)) for _ in range(6)])

    expected = skeleton_cost(cell_cost)
    # Written out: stem 88 params / 9,216 FLOPs; cells 3,552 + 14,016 + 55,680 params,
    # 442,368 FLOPs each; reductions 3,648 + 14,464 params, 114,688 FLOPs each; head 394 / 640.
    assert expected == (91842, 1566336)
    assert params_and_flops(uniform("nor_conv_3x3")) == expected


def test_params_and_flops_match_a_hand_count_all_skip_and_all_none():
    # Skips, zeros (and pooling) have no parameters and no counted FLOPs: only the skeleton.
    expected = skeleton_cost(lambda c, hw: (0, 0))
    assert expected == (18594, 239232)
    assert params_and_flops(uniform("skip_connect")) == expected
    assert params_and_flops(uniform("none")) == expected
    assert params_and_flops(uniform("avg_pool_3x3")) == expected


def test_flops_scale_with_the_input_batch():
    params, flops = params_and_flops(EXAMPLE)
    params_2, flops_2 = params_and_flops(EXAMPLE, input_shape=(2, 1, 8, 8))
    assert params_2 == params and flops_2 == 2 * flops
    with pytest.raises(ValueError, match="batch, channels, height, width"):
        params_and_flops(EXAMPLE, input_shape=(1, 8, 8))


# -- drawing and the space object ------------------------------------------------------------


def test_draw_one_arrow_per_non_none_edge():
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    for cell in [Cell.from_string(EXAMPLE), uniform("nor_conv_1x1"), uniform("none")]:
        ax = draw(cell)
        arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
        assert len(arrows) == sum(op != "none" for op in cell.ops)
        assert ax.get_title() == str(cell)
        plt.close(ax.figure)
    fig, ax = plt.subplots()
    assert draw(EXAMPLE, ax=ax) is ax
    plt.close(fig)


def test_space_object():
    space = NB201Space()
    assert len(space) == 15625
    cells = list(space)
    assert len(cells) == len(set(cells)) == 15625
    assert space.num_unique == len(unique_cells())
    rng = np.random.default_rng(0)
    cell = space.sample(rng)
    assert isinstance(cell, Cell) and cell in space and EXAMPLE in space
    assert "|bad|" not in space
    assert len(space.neighbours(cell)) == 24
    assert space.mutate(cell, 1) in space.neighbours(cell)
    assert space.canonical(cell) == canonical(cell)
