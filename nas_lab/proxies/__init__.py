"""Zero-cost proxies: scoring an untrained network from one batch of data (lesson 11).

Abdelfattah, Mehrotra, Dudziak & Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, ask
how well a score computed at initialisation, from a single minibatch, ranks architectures by the
accuracy they reach after training. The package reads in this order:

1. ``scores``: the layers that are scored, ``probe`` (one forward pass and the backward passes the
   gradient-based proxies need), the proxies themselves, each a small function named after its
   paper (``grad_norm``, ``snip``, ``grasp``, ``fisher``, ``jacob_cov``, ``naswot``, ``synflow``),
   and ``score``, with parameters and FLOPs as baselines. Plain PyTorch: no benchmark, no search;
2. ``cells``: scoring one cell of the benchmark: the network the benchmark trains, initialised
   with the seed the benchmark used, and a seeded batch of its training data; many cells in a
   process pool;
3. ``table``: every one of the 6,466 unique cells scored, saved with a manifest
   (``compute_table``), and loaded back (``load_table``);
4. ``report``: the correlation table, Spearman and Kendall against trained accuracy beside the
   published NAS-Bench-201 CIFAR-10 figures, and the explorer's view of one proxy.

Proxies in search (evolution warm-started from a proxy-ranked pool) combine this package with a
strategy, so they live in the lesson module :mod:`nas_lab.warmstart`.

Every public name is available here, as ``proxies.score_cell`` and so on.
"""

from __future__ import annotations

from nas_lab.proxies.cells import Settings, proxy_batch, score_cell, score_cells
from nas_lab.proxies.report import (
    PUBLISHED_SPEARMAN,
    correlations,
    format_correlations,
    proxy_view,
    ranked,
)
from nas_lab.proxies.scores import (
    BASELINES,
    DESCRIPTIONS,
    FROM_PROBE,
    JACOB_COV_K,
    PROXIES,
    SYNFLOW_SCALES,
    Probe,
    fisher,
    grad_norm,
    grasp,
    jacob_cov,
    naswot,
    probe,
    score,
    scored_layers,
    snip,
    synflow,
)
from nas_lab.proxies.table import TABLE, ProxyTable, compute_table, load_table

__all__ = [
    "BASELINES",
    "DESCRIPTIONS",
    "FROM_PROBE",
    "JACOB_COV_K",
    "PROXIES",
    "PUBLISHED_SPEARMAN",
    "SYNFLOW_SCALES",
    "TABLE",
    "Probe",
    "ProxyTable",
    "Settings",
    "compute_table",
    "correlations",
    "fisher",
    "format_correlations",
    "grad_norm",
    "grasp",
    "jacob_cov",
    "load_table",
    "naswot",
    "probe",
    "proxy_batch",
    "proxy_view",
    "ranked",
    "score",
    "score_cell",
    "score_cells",
    "scored_layers",
    "snip",
    "synflow",
]
