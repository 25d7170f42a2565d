"""Proxies in search: regularized evolution warm-started from a proxy-ranked pool.

Abdelfattah et al.'s zero-cost warm-up (ICLR 2021): score a pool of random cells with a proxy (a
table look-up, no training), seed the search's first population with the best of them
(``proxy_pool``), and compare it with plain evolution at the same simulated budget
(``warmup_comparison``). A lesson module (11 and 12): it combines the proxy table of
:mod:`nas_lab.proxies` with the strategy ``WarmStartedEvolution`` of
:mod:`nas_lab.strategies.wrappers`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas_lab.proxies.report import ranked
from nas_lab.proxies.table import ProxyTable
from nas_lab.spaces import nb201
from nas_lab.strategies.wrappers import WarmStartedEvolution


def proxy_pool(
    table: ProxyTable,
    proxy: str,
    size: int,
    pool: int | None = 3000,
    seed: int | np.random.Generator = 0,
) -> list[nb201.Cell]:
    """Abdelfattah et al.'s zero-cost warm-up (ICLR 2021): draw ``pool`` cells
    uniformly from the 15,625 strings (``None``: every unique cell), score them with ``proxy``
    (a table look-up: no training) and return the ``size`` best, best first. Isomorphic draws
    count once, as they are one network. Ties keep the order of drawing."""
    from nas_lab.spaces import as_rng

    if int(size) != size or size < 1:
        raise ValueError(f"size must be an integer >= 1 (the population to seed); got {size!r}")
    if pool is None:
        drawn = nb201.unique_cells()
    else:
        rng = as_rng(seed)
        drawn = list(dict.fromkeys(nb201.canonical(nb201.sample(rng)) for _ in range(pool)))
    scores = ranked(table.column(proxy, drawn))
    order = np.argsort(-scores, kind="stable")  # stable: ties keep the order of drawing
    return [drawn[int(i)] for i in order[: int(size)]]


def warmup_comparison(
    bench,
    table: ProxyTable,
    proxy: str = "synflow",
    budget: float = 3000.0,
    seeds: int | Sequence[int] = 50,
    population_size: int = 10,
    sample_size: int = 3,
    pool: int | None = 3000,
    proxy_seconds: float = 0.0,
    grid: Sequence[float] | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Plain regularized evolution against the same evolution warm-started from the top
    ``population_size`` of a ``proxy``-ranked pool of ``pool`` random cells, at the same
    simulated budget, over ``seeds``: each one's test-regret curves (runs x grid), as
    ``estimation.compare`` returns them.

    ``proxy_seconds`` is charged per pool cell before the warm search starts (0: proxies are
    free, as when training is far dearer than one batch; the table's manifest records what one
    cell's scores cost)."""
    from nas_lab.estimation import compare
    from nas_lab.strategies import run

    size = len(nb201.unique_cells()) if pool is None else pool
    cost = float(proxy_seconds) * size
    if not 0 <= cost < budget:
        raise ValueError(
            f"scoring the pool costs {cost:.0f} s of the {budget:.0f} s budget; choose a smaller "
            "pool or a larger budget"
        )

    def plain(b, budget: float, seed: int):
        strategy = WarmStartedEvolution(
            [], population_size=population_size, sample_size=sample_size, seed=seed
        )
        return run(strategy, b, budget, seed)

    def warm(b, budget: float, seed: int):
        cells = proxy_pool(table, proxy, population_size, pool, np.random.default_rng([seed, 11]))
        strategy = WarmStartedEvolution(
            cells, population_size=population_size, sample_size=sample_size, seed=seed
        )
        return run(strategy, b, budget, seed, upfront=cost)

    return compare(
        {"evolution": plain, f"evolution + {proxy} warm-up": warm},
        bench,
        budget,
        seeds,
        grid=grid,
        progress=progress,
    )
