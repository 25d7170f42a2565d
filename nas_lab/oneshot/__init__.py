"""One-shot NAS: search on a supernet whose weights every candidate shares, instead of training
every candidate.

On the NAS-Bench-201 cell (lessons 06-07), one module per method, each reading like its paper:

- ``supernet``: the supernet (mixed edges, single paths, partial channels) and what every
  search shares (data halves, discretisation, subnet accuracy, timing, peak memory);
- ``darts``: DARTS (Liu, Simonyan & Yang, ICLR 2019), first and second order;
- ``gdas``: GDAS (Dong & Yang, CVPR 2019), Gumbel-softmax sampling of one operation per edge;
- ``pcdarts``: PC-DARTS (Xu et al., ICLR 2020), partial channels and edge normalisation;
- ``enas``: ENAS (Pham et al., ICML 2018), a REINFORCE controller over shared weights;
- ``spos``: SPOS (Guo et al., ECCV 2020), uniform single-path training, then evolution; and the
  weight-sharing estimate of many architectures (``spos.weight_sharing_ranking``).

On the MBConv chain space (lessons 09-10): ``proxylessnas`` (Cai, Zhu & Han, ICLR 2019, binarized
paths with a differentiable latency loss) and the package ``ofa`` (Once-for-All, Cai et al., ICLR
2020: an elastic supernet trained by progressive shrinking). Import them as modules:
``from nas_lab.oneshot import ofa, proxylessnas``; ``METHODS`` holds the cell searches only.

Every search takes a seed and ``fast``, shows a progress bar, prints its wall time and returns
an ``nb201.Cell`` that the benchmark can look up: ``bench.load().query(cell)``.

    from nas_lab.oneshot import METHODS
    cell = METHODS["GDAS"](seed=0, fast=True)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from nas_lab.bench import Benchmark
from nas_lab.oneshot import darts, enas, gdas, pcdarts, spos, supernet
from nas_lab.spaces import nb201

Search = Callable[..., nb201.Cell]

# Each takes (seed=0, fast=False, **options) and returns the cell it finds.
METHODS: dict[str, Search] = {
    "DARTS (1st order)": partial(darts.search, 1),
    "DARTS (2nd order)": partial(darts.search, 2),
    "GDAS": gdas.search,
    "PC-DARTS": pcdarts.search,
    "ENAS": enas.search,
    "SPOS": spos.search,
}


def ground_truth(cell: nb201.Cell | str, bench: Benchmark) -> dict[str, float]:
    """What the benchmark says of a cell a search returned: its test and validation accuracy
    (mean over the table's seeds) and its test-accuracy percentile among all the table's
    architectures (the share of them it matches or beats, in %; 100 for the best), the form of
    NAS-Bench-201's comparison of search methods (Dong & Yang, ICLR 2020)."""
    result = bench.query(cell)
    test = bench.column("test_acc")
    return {
        "test_acc": result.test_acc,
        "val_acc": result.val_acc,
        "percentile": float(100 * np.mean(test <= result.test_acc)),
    }


__all__ = ["METHODS", "ground_truth", "darts", "enas", "gdas", "pcdarts", "spos", "supernet"]
