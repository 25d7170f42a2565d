"""The NAS-Bench-201 cell as data: its string, isomorphism, sampling, encodings and live edges.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
ICLR 2020. Sections 1-4 of lesson 01, in order: the cell and its index; which of the 15,625
strings compute the same thing (6,466 classes); sampling and local moves; encodings for
predictors; and which edges can reach the output (``active_edges``, ``prune``).
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from nas_lab.spaces import as_rng

# --------------------------------------------------------------------------------------------
# 1. The cell as data
# --------------------------------------------------------------------------------------------

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

# (source, target) in the order the string lists them: node 1's inputs, node 2's, node 3's.
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))

NUM_NODES = 4
NUM_CELLS = len(OPS) ** len(EDGES)  # 15,625

_VALID_OPS = ", ".join(OPS)


def _unknown_op_message(where: str, token: str) -> str:
    """The error for an unknown operation: where it is, what it was, what would be valid."""
    message = f"{where}: unknown operation {token!r}; valid operations are: {_VALID_OPS}"
    close = difflib.get_close_matches(token, OPS, n=1)
    return message + (f" (did you mean {close[0]!r}?)" if close else "")


@dataclass(frozen=True)
class Cell:
    """One NAS-Bench-201 cell: the operation on each edge, in ``EDGES`` order.

    Build one from its operations, ``Cell(("nor_conv_3x3", "none", ...))``, from the
    literature's string, ``Cell.from_string("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|")``,
    or from its number, ``Cell.from_index(42)``.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.ops, str) or not isinstance(self.ops, Sequence):
            raise ValueError(
                f"Cell(ops=...) takes a sequence of {len(EDGES)} operation names, one per edge "
                f"{list(EDGES)}; to parse a string use Cell.from_string(...)"
            )
        ops = tuple(self.ops)
        if len(ops) != len(EDGES):
            raise ValueError(
                f"a cell has {len(EDGES)} edges {list(EDGES)}, so it needs {len(EDGES)} "
                f"operations; got {len(ops)}: {ops}"
            )
        for (i, j), op in zip(EDGES, ops, strict=True):
            if op not in OPS:
                raise ValueError(_unknown_op_message(f"edge {i}->{j}", str(op)))
        object.__setattr__(self, "ops", ops)  # a list becomes a tuple: hashable, immutable

    # -- the string format of the literature ------------------------------------------------

    @classmethod
    def from_string(cls, text: str) -> Cell:
        """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: one ``|...|`` group per node 1, 2, 3,
        listing that node's inputs ``op~source`` for source = 0, 1, ... in order."""
        if not isinstance(text, str):
            raise ValueError(f"expected an architecture string, got {type(text).__name__}")
        groups = text.strip().split("+")
        if len(groups) != NUM_NODES - 1:
            raise ValueError(
                f"expected {NUM_NODES - 1} node groups separated by '+' (one for each of nodes "
                f"1, 2, 3), got {len(groups)} in {text!r}; the format is "
                "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'"
            )
        ops: list[str] = []
        for node, group in enumerate(groups, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise ValueError(
                    f"node {node}: group {group!r} must start and end with '|' "
                    f"(expected like '|{'|'.join(f'op~{i}' for i in range(node))}|')"
                )
            tokens = group[1:-1].split("|")
            if len(tokens) != node:
                raise ValueError(
                    f"node {node}: expected {node} inputs (from nodes {list(range(node))}), "
                    f"got {len(tokens)} in {group!r}"
                )
            for source, token in enumerate(tokens):
                op, sep, src = token.partition("~")
                where = f"node {node}, edge {source}->{node}"
                if not sep:
                    raise ValueError(f"{where}: token {token!r} must look like 'op~{source}'")
                if src != str(source):
                    raise ValueError(
                        f"{where}: expected source index {source} (inputs are listed in the "
                        f"order 0..{node - 1}), got {token!r}"
                    )
                if op not in OPS:
                    raise ValueError(_unknown_op_message(where, op))
                ops.append(op)
        return cls(tuple(ops))

    def to_string(self) -> str:
        """The literature's string, e.g. ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|``."""
        groups = []
        for node in range(1, NUM_NODES):
            tokens = [f"{op}~{i}" for (i, j), op in zip(EDGES, self.ops, strict=True) if j == node]
            groups.append("|" + "|".join(tokens) + "|")
        return "+".join(groups)

    def __str__(self) -> str:
        return self.to_string()

    # -- the index: a cell as a number in base 5 ---------------------------------------------

    @classmethod
    def from_index(cls, index: int) -> Cell:
        """The cell whose operation numbers, read as base-5 digits in ``EDGES`` order (first edge
        = most significant digit), spell ``index``. Index order is ``itertools.product`` order."""
        if not 0 <= int(index) < NUM_CELLS:
            raise ValueError(f"cell index must be in 0..{NUM_CELLS - 1}, got {index}")
        index, digits = int(index), []
        for _ in EDGES:
            index, digit = divmod(index, len(OPS))
            digits.append(digit)
        return cls(tuple(OPS[d] for d in reversed(digits)))

    @property
    def index(self) -> int:
        """Position of this cell among all 15,625 (inverse of ``from_index``)."""
        index = 0
        for op in self.ops:
            index = index * len(OPS) + OPS.index(op)
        return index

    def op(self, source: int, target: int) -> str:
        """The operation on edge ``source -> target``."""
        if (source, target) not in EDGES:
            raise ValueError(f"no edge {source}->{target}; edges are {list(EDGES)}")
        return self.ops[EDGES.index((source, target))]

    def canonical(self) -> Cell:
        """The representative of this cell's isomorphism class (see section 2 below)."""
        return canonical(self)


def as_cell(arch: Cell | str) -> Cell:
    """Accept a ``Cell`` or its string wherever a cell is expected."""
    if isinstance(arch, Cell):
        return arch
    if isinstance(arch, str):
        return Cell.from_string(arch)
    raise ValueError(
        f"expected a Cell or an architecture string like '|op~0|+|op~0|op~1|+|...|', "
        f"got {type(arch).__name__}"
    )


def all_cells() -> list[Cell]:
    """All 15,625 cells, in index order."""
    return [Cell(ops) for ops in itertools.product(OPS, repeat=len(EDGES))]


# --------------------------------------------------------------------------------------------
# 2. Isomorphism: 15,625 strings, 6,466 different architectures
# --------------------------------------------------------------------------------------------
# Two strings can describe the same computation: the sum at a node does not care about the order
# of its inputs, `skip_connect` passes its input on unchanged, and `none` contributes nothing.
# NAS-Bench-201 (Dong & Yang 2020, and its API's `to_unique_str(consider_zero=True)`)
# names each node by the expression it computes and calls two cells isomorphic when their output
# node has the same expression. We rebuild that rule here:
#
#   node 0           -> "0"
#   edge i->j, op    -> "#"                 if op is none, or node i is exactly zero ("#")
#                    -> expr(i)             if op is skip_connect (identity)
#                    -> "(expr(i))@op"      otherwise (a parametric or pooling operation)
#   node j           -> its terms, sorted and joined with "+" (the sum is commutative)
#
# The rule is deliberately conservative: zero terms stay in a sum as "#" placeholders, so only
# a node whose whole expression is "#" counts as zero (in practice node 1, the only node with a
# single input). This is exactly what reproduces the published count of 6,466 unique
# architectures. Every merge it makes is sound (a reordered sum, an identity, a zero), but it
# misses some: a node 2 that receives only zeros is zero too, and a skip detour through node 2
# is an identity, yet such cells stay in classes of their own. Note also that the rule reads the
# expression, not the weights: node 1 = conv(x) used twice (through two skips) and two separate
# conv(x) edges give the same expression, though the second has twice the parameters. So
# members of one class can differ in parameters and FLOPs.

_ZERO = "#"


def expression(cell: Cell | str) -> str:
    """The expression computed by node 3, after NAS-Bench-201's isomorphism rule (above)."""
    cell = as_cell(cell)
    nodes = {0: "0"}
    for target in range(1, NUM_NODES):
        terms = []
        for (source, j), op in zip(EDGES, cell.ops, strict=True):
            if j != target:
                continue
            if op == "none" or nodes[source] == _ZERO:
                terms.append(_ZERO)
            elif op == "skip_connect":
                terms.append(nodes[source])
            else:
                terms.append(f"({nodes[source]})@{op}")
        nodes[target] = "+".join(sorted(terms))
    return nodes[NUM_NODES - 1]


@lru_cache(maxsize=1)
def _class_table() -> tuple[np.ndarray, tuple[int, ...]]:
    """For every index, the index of its class representative; and the sorted representatives.

    Cells are visited in index order, so the first member seen of a class, the one with the
    smallest index, becomes its representative. Computed once, on first use."""
    first_seen: dict[str, int] = {}
    representative = np.empty(NUM_CELLS, dtype=np.int64)
    for index, ops in enumerate(itertools.product(OPS, repeat=len(EDGES))):
        representative[index] = first_seen.setdefault(expression(Cell(ops)), index)
    representative.setflags(write=False)
    return representative, tuple(sorted(first_seen.values()))


def canonical(cell: Cell | str) -> Cell:
    """The representative (smallest index) of the isomorphism class of ``cell``."""
    return Cell.from_index(int(_class_table()[0][as_cell(cell).index]))


def is_isomorphic(a: Cell | str, b: Cell | str) -> bool:
    """Whether two cells fall in the same NAS-Bench-201 isomorphism class."""
    return canonical(a) == canonical(b)


def class_size(cell: Cell | str) -> int:
    """How many of the 15,625 strings fall in the isomorphism class of ``cell``."""
    representative = _class_table()[0]
    return int(np.count_nonzero(representative == representative[as_cell(cell).index]))


def unique_cells() -> list[Cell]:
    """One representative per isomorphism class, in index order (6,466 cells)."""
    return [Cell.from_index(i) for i in _class_table()[1]]


# --------------------------------------------------------------------------------------------
# 3. Sampling and local moves
# --------------------------------------------------------------------------------------------


def sample(rng: np.random.Generator | int) -> Cell:
    """A cell drawn uniformly from the 15,625 strings (not from the 6,466 classes)."""
    rng = as_rng(rng)
    return Cell.from_index(int(rng.integers(NUM_CELLS)))


def mutate(cell: Cell | str, rng: np.random.Generator | int) -> Cell:
    """Change exactly one edge, chosen uniformly, to a different operation, chosen uniformly
    (the mutation of regularized evolution, Real et al., AAAI 2019, used on NAS-Bench-201)."""
    cell, rng = as_cell(cell), as_rng(rng)
    edge = int(rng.integers(len(EDGES)))
    others = [op for op in OPS if op != cell.ops[edge]]
    ops = list(cell.ops)
    ops[edge] = others[int(rng.integers(len(others)))]
    return Cell(tuple(ops))


def neighbours(cell: Cell | str) -> list[Cell]:
    """All cells one edge change away: 6 edges x 4 other operations = 24 cells."""
    cell = as_cell(cell)
    result = []
    for edge, current in enumerate(cell.ops):
        for op in OPS:
            if op != current:
                result.append(Cell(cell.ops[:edge] + (op,) + cell.ops[edge + 1 :]))
    return result


# --------------------------------------------------------------------------------------------
# 4. Encodings, for performance predictors (White et al., "A Study on Encodings for Neural
#    Architecture Search", NeurIPS 2020)
# --------------------------------------------------------------------------------------------


def onehot(cell: Cell | str) -> np.ndarray:
    """One-hot operation per edge: a 6 x 5 table (edges in ``EDGES`` order, columns in ``OPS``
    order) flattened to 30 float32 values."""
    cell = as_cell(cell)
    table = np.zeros((len(EDGES), len(OPS)), dtype=np.float32)
    for edge, op in enumerate(cell.ops):
        table[edge, OPS.index(op)] = 1.0
    return table.reshape(-1)


ADJACENCY_NODES = 2 + len(EDGES)  # input, one node per edge, output


def adjacency(cell: Cell | str) -> tuple[np.ndarray, list[str]]:
    """The cell with operations on nodes, as in NAS-Bench-101 (Ying et al., ICML 2019).

    NAS-Bench-201 puts operations on edges; predictors written for NAS-Bench-101 expect them on
    nodes. So each edge becomes a node of its own. Convention (8 nodes):

    - node 0 is the cell input (label ``"input"``), node 7 the output (label ``"output"``);
    - node 1 + k stands for edge k of ``EDGES`` and is labelled with its operation;
    - A[a, b] = 1 when the value of a feeds b. An edge node i->j is fed by every (non-none) edge
      node that ends at i, or by the input when i = 0; it feeds every (non-none) edge node that
      starts at j, or the output when j = 3. The cell's sum nodes 1 and 2 disappear into these
      links.
    - a ``none`` edge keeps its node (so shapes are fixed) but with no links and label ``"none"``.

    ``EDGES`` is a topological order, so A is upper-triangular. Returns (A as int8, labels).
    """
    cell = as_cell(cell)
    output = ADJACENCY_NODES - 1
    matrix = np.zeros((ADJACENCY_NODES, ADJACENCY_NODES), dtype=np.int8)
    labels = ["input", *cell.ops, "output"]
    for k, ((i, j), op) in enumerate(zip(EDGES, cell.ops, strict=True)):
        if op == "none":
            continue
        node = 1 + k
        if i == 0:
            matrix[0, node] = 1
        for m, ((_, t), feeder_op) in enumerate(zip(EDGES, cell.ops, strict=True)):
            if t == i and feeder_op != "none":
                matrix[1 + m, node] = 1
        if j == NUM_NODES - 1:
            matrix[node, output] = 1
    return matrix, labels


# The three routes from input to output, as edge sequences.
ROUTES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((0, 3),),
    ((0, 1), (1, 3)),
    ((0, 2), (2, 3)),
    ((0, 1), (1, 2), (2, 3)),
)
_PATH_OPS = OPS[1:]  # a path through a `none` edge carries nothing, so `none` never appears

# Every possible sequence of operations along a route, in bit order: length 1, then 2, then 3;
# within a length, itertools.product order. 4 + 16 + 64 = 84.
PATHS: tuple[tuple[str, ...], ...] = tuple(
    ops for length in (1, 2, 3) for ops in itertools.product(_PATH_OPS, repeat=length)
)
_PATH_BIT = {ops: bit for bit, ops in enumerate(PATHS)}


def paths(cell: Cell | str) -> list[tuple[str, ...]]:
    """The operation sequences along the input -> output routes that carry a signal."""
    cell = as_cell(cell)
    found = []
    for route in ROUTES:
        ops = tuple(cell.op(i, j) for i, j in route)
        if "none" not in ops:
            found.append(ops)
    return found


def path_encoding(cell: Cell | str) -> np.ndarray:
    """BANANAS' path encoding (White, Neiswanger & Savani, AAAI 2021, Section 4).

    One bit per possible sequence of operations along an input -> output path (``PATHS``): a
    route has 1 edge (0->3), 2 edges (0->1->3 or 0->2->3) or 3 edges (0->1->2->3), and each
    edge one of the 4 non-``none`` operations, so 4 + 16 + 64 = 84 bits. The bit is set when
    some route of the cell carries that sequence. Routes 0->1->3 and 0->2->3 share their bits:
    the encoding records which op sequences exist, not where. float32 array of length 84.
    """
    bits = np.zeros(len(PATHS), dtype=np.float32)
    for ops in paths(cell):
        bits[_PATH_BIT[ops]] = 1.0
    return bits


# --------------------------------------------------------------------------------------------
# 5. Edges that reach the output
# --------------------------------------------------------------------------------------------


def active_edges(cell: Cell | str) -> list[tuple[int, int]]:
    """The edges whose operation can influence the cell's output.

    An edge is active when it is not ``none``, its source receives a signal from the input
    (node 0 always does; node j does when a non-``none`` edge from such a node enters it), and
    its target leads on to the output through non-``none`` edges. Other edges are not
    computed: an edge out of a node that only ever receives zeros would just add a constant
    (the BatchNorm bias), which NAS-Bench-201's isomorphism rule treats as zero too, and an edge
    into a dead end is wasted work."""
    cell = as_cell(cell)
    reached = {0}  # nodes that receive a signal from the input
    for (i, j), op in zip(EDGES, cell.ops, strict=True):
        if op != "none" and i in reached:
            reached.add(j)
    useful = {NUM_NODES - 1}  # nodes from which a signal reaches the output
    for (i, j), op in reversed(list(zip(EDGES, cell.ops, strict=True))):
        if op != "none" and j in useful:
            useful.add(i)
    return [
        (i, j)
        for (i, j), op in zip(EDGES, cell.ops, strict=True)
        if op != "none" and i in reached and j in useful
    ]


def prune(cell: Cell | str) -> Cell:
    """The cell with every inactive edge (see ``active_edges``) set to ``none``: lesson 01's
    exercise 01.4. The pruned cell computes the same function and has the same cost."""
    cell = as_cell(cell)
    active = set(active_edges(cell))
    return Cell(
        tuple(op if edge in active else "none" for edge, op in zip(EDGES, cell.ops, strict=True))
    )
