"""How well each zero-cost proxy ranks the benchmark: the correlation table and the explorer.

Spearman and Kendall rank correlations of each proxy against trained accuracy (``correlations``),
beside the NAS-Bench-201 CIFAR-10 figures published by Abdelfattah et al., ICLR 2021
(``PUBLISHED_SPEARMAN``); ``ranked`` makes a proxy column with unscored cells safe to rank, and
``proxy_view`` is what the proxy explorer draws for one proxy against accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from nas_lab.proxies.scores import BASELINES, DESCRIPTIONS, check_names
from nas_lab.proxies.table import ProxyTable

# Spearman's rho between each proxy and final test accuracy over NAS-Bench-201 on CIFAR-10,
# Abdelfattah et al., ICLR 2021. Checked against the authors' repository (SamsungLabs/
# zero-cost-nas, notebooks/nasbench201_correlations.ipynb, the cell "Table 1: Spearman rho of
# zero-cost proxies on NAS-Bench-201"): row "CIFAR10", columns grad_norm, snip, grasp, fisher,
# synflow, jacob_cov, to the three decimals it prints. That notebook computes |rho| (absolute
# values) against NAS-Bench-201's test accuracy (API dataset "cifar10-valid", 200 epochs) over
# all 15,625 cells, one random batch, seed 42; ``correlations`` reports signed values. The
# paper's own table text could not be read here, so which table number the paper gives it
# was not checked (the notebook calls it Table 1).
PUBLISHED_SPEARMAN: dict[str, float] = {
    "synflow": 0.737,
    "jacob_cov": 0.731,
    "snip": 0.596,
    "grad_norm": 0.594,
    "grasp": 0.514,
    "fisher": 0.360,
}


def ranked(values: np.ndarray) -> np.ndarray:
    """A proxy column made safe to sort and rank, in the same order: NaN (no score, e.g.
    jacob_cov of a network that ignores its input) and -inf tie below every finite score,
    +inf above; both become finite so that ``scipy.stats`` accepts them."""
    values = np.array(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    low, high = (finite.min() - 1, finite.max() + 1) if finite.size else (0.0, 0.0)
    values[np.isnan(values) | (values == -np.inf)] = low
    values[values == np.inf] = high
    return values


def correlations(
    bench,
    table: ProxyTable,
    metric: str = "test_acc",
    archs: Sequence[str] | None = None,
    names: Iterable[str] | None = None,
) -> list[dict]:
    """Per proxy: Spearman and Kendall against ``bench.column(metric)`` over ``archs``
    (default: every architecture of the table), next to the published Spearman figure.
    A score that is not finite (synflow and NASWOT give -inf, jacob_cov NaN, to a network
    whose output ignores its input) ranks below every finite one, as in ``proxy_pool``; such
    architectures are counted (``unscored``)."""
    from nas_lab.estimation import rank_correlation

    truth = bench.column(metric)
    if archs is not None:
        truth = truth[np.array([bench.row(a) for a in archs], dtype=np.int64)]
    archs = list(bench.archs) if archs is None else list(archs)
    rows = []
    for name in check_names(names):
        values = table.column(name, archs)
        keep = np.isfinite(truth)
        rho = rank_correlation(ranked(values)[keep], truth[keep])
        rows.append(
            {
                "proxy": name,
                "spearman": rho["spearman"],
                "kendall": rho["kendall"],
                "published_spearman": PUBLISHED_SPEARMAN.get(name),
                "n": int(keep.sum()),
                "unscored": int((~np.isfinite(values[keep])).sum()),
            }
        )
    return rows


def format_correlations(rows: Sequence[dict]) -> str:
    """The rows of ``correlations`` as a Markdown table."""
    lines = [
        "| proxy | Spearman | Kendall | published Spearman (NB201 CIFAR-10) | n | unscored |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        published = "" if r["published_spearman"] is None else f"{r['published_spearman']:.3f}"
        lines.append(
            f"| {r['proxy']} | {r['spearman']:.3f} | {r['kendall']:.3f} | {published} | {r['n']} "
            f"| {r['unscored']} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The explorer's logic: one proxy against accuracy
# --------------------------------------------------------------------------------------------


def proxy_view(bench, table: ProxyTable, proxy: str, metric: str = "test_acc") -> dict:
    """What the proxy explorer draws for ``proxy``: the finite scores (x, log10 for params and
    FLOPs so that their spread shows), the accuracies (y), the rank correlations over every
    cell (unscored ones ranked last, as in ``correlations``), how many cells could not be
    drawn (``dropped``: no finite score), and axis labels."""
    from nas_lab.estimation import rank_correlation

    if proxy not in table.scores:
        raise ValueError(f"unknown proxy {proxy!r}; choose from {', '.join(table.scores)}")
    x = table.column(proxy, bench.archs)
    y = np.asarray(bench.column(metric), dtype=np.float64)
    rho = rank_correlation(ranked(x), y)  # over every cell, as ``correlations`` ranks them
    keep = np.isfinite(x)  # what can be drawn
    x, y = x[keep], y[keep]
    label = DESCRIPTIONS.get(proxy, proxy)
    if proxy in BASELINES:
        x, label = np.log10(x), f"log10 {proxy}"
    return {
        "proxy": proxy,
        "x": x,
        "y": y,
        "spearman": rho["spearman"],
        "kendall": rho["kendall"],
        "dropped": int((~keep).sum()),
        "xlabel": label,
        "ylabel": f"{metric} (mean over seeds)",
        "title": f"{proxy}: Spearman {rho['spearman']:.3f}, Kendall {rho['kendall']:.3f}",
    }
