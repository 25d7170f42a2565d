"""The NAS-Bench-201 cell search space.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
ICLR 2020. A cell is a small DAG with 4 nodes (0 = the cell's input, 3 = its output). Every pair
i < j is joined by an edge, and each of the 6 edges carries one of 5 operations, so there are
5**6 = 15,625 cells. A node is the sum of its incoming edges:

    node_j = sum_{i < j} op_ij(node_i)

The package reads in the order lesson 01 builds the space (``cell``: 1-4, ``network``: 5-6,
``space``: the drawing and ``NB201Space``); every name is available here, as ``nb201.Cell``:

1. the cell as data: ``Cell``, its string in the literature's format and its index;
2. isomorphism: which of the 15,625 strings compute the same thing (6,466 classes);
3. sampling and local moves, for the search strategies;
4. encodings for predictors: one-hot, adjacency ("operations on nodes") and paths;
5. the network: the cell as a PyTorch module, stacked in NAS-Bench-201's macro skeleton;
6. its cost (parameters, FLOPs), a drawing, and ``NB201Space`` that bundles it all.
"""

from __future__ import annotations

from nas_lab.spaces.nb201.cell import (
    ADJACENCY_NODES,
    EDGES,
    NUM_CELLS,
    NUM_NODES,
    OPS,
    PATHS,
    ROUTES,
    Cell,
    active_edges,
    adjacency,
    all_cells,
    as_cell,
    canonical,
    class_size,
    expression,
    is_isomorphic,
    mutate,
    neighbours,
    onehot,
    path_encoding,
    paths,
    prune,
    sample,
    unique_cells,
)
from nas_lab.spaces.nb201.network import (
    CellModule,
    CellNet,
    ReLUConvBN,
    ResidualReduction,
    build_network,
    make_op,
    params_and_flops,
)
from nas_lab.spaces.nb201.space import (
    ENCODINGS,
    NB201Space,
    draw,
)

__all__ = [
    "OPS",
    "EDGES",
    "NUM_NODES",
    "NUM_CELLS",
    "Cell",
    "as_cell",
    "all_cells",
    "expression",
    "canonical",
    "is_isomorphic",
    "class_size",
    "unique_cells",
    "sample",
    "mutate",
    "neighbours",
    "onehot",
    "ADJACENCY_NODES",
    "adjacency",
    "ROUTES",
    "PATHS",
    "paths",
    "path_encoding",
    "active_edges",
    "prune",
    "ReLUConvBN",
    "make_op",
    "CellModule",
    "ResidualReduction",
    "CellNet",
    "build_network",
    "params_and_flops",
    "draw",
    "ENCODINGS",
    "NB201Space",
]
