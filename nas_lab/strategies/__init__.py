"""Black-box search strategies, one module per method family, behind one ask-and-tell interface.

As in NNI, the search space, the strategy and the evaluator are separate objects: a strategy
proposes (``ask``) and learns from the answer (``tell``); ``run`` connects it to the benchmark's
simulated clock, so every strategy is charged the same recorded training time for what it tries,
and is told what a search may see: the result without its test accuracy (``searchable``).

    from nas_lab import bench
    from nas_lab.strategies import run
    from nas_lab.strategies.evolution import RegularizedEvolution
    clock = run(RegularizedEvolution(seed=0), bench.load(), budget=600, seed=0)

``REGISTRY`` names the strategies ``nas-lab compare`` knows; adding one there is all it takes.
"""

from __future__ import annotations

import dataclasses
import importlib
from contextlib import suppress
from typing import Protocol

import numpy as np

from nas_lab.bench import Benchmark, BudgetExhausted, Result, SimulatedClock
from nas_lab.spaces import as_rng, nb201


class Strategy(Protocol):
    """What every search strategy offers: propose a cell, learn from its result.

    ``run`` tells a strategy what a search may see (``searchable``): the result without its test
    accuracy, which is for reporting only."""

    def ask(self) -> nb201.Cell: ...

    def tell(self, cell: nb201.Cell, result: Result) -> None: ...


def run(
    strategy: Strategy,
    bench: Benchmark,
    budget: float,
    seed: int | np.random.Generator,
    max_steps: int | None = None,
    upfront: float = 0.0,
) -> SimulatedClock:
    """Ask, query the table through a fresh simulated clock, tell, until the budget is spent.

    The run sees one recorded training per architecture (a table seed drawn from ``seed``), noise
    and all, as a real search would. Every ask is a training, charged in full even when the
    strategy proposed that cell before (a converged controller keeps proposing one cell: free
    repeats would never spend the budget). The query that spends the budget completes, the next
    ask is not answered. ``upfront`` seconds are charged before the first ask (work the strategy
    does before it trains anything, such as scoring a pool with a proxy). The strategy is told
    ``searchable(result)``, the result without its test accuracy: a search chooses on what it
    can see (validation accuracy, costs) and the test set only reports its choice, as in
    NAS-Bench-201's searches (Dong & Yang, ICLR 2020, Table 5). Returns the clock: its
    trajectory, which keeps the test accuracy for reporting, is the run's record."""
    if not budget > 0:
        raise ValueError(f"budget must be a positive number of simulated seconds, got {budget!r}")
    rng = as_rng(seed)
    clock = bench.clock(budget, seed=bench.seeds[int(rng.integers(len(bench.seeds)))], resume=False)
    clock.charge(upfront)
    steps = 0
    with suppress(BudgetExhausted):
        while max_steps is None or steps < max_steps:
            if clock.exhausted:
                break
            cell = strategy.ask()
            strategy.tell(cell, searchable(clock.query(cell)))
            steps += 1
    return clock


def searchable(result: Result) -> Result:
    """``result`` as a search may see it: its test accuracy hidden (``None``)."""
    return dataclasses.replace(result, test_acc=None)


# Short name -> "module:Class" under nas_lab.strategies; the class takes ``seed=``. Imported only
# when made, so listing the names costs nothing.
REGISTRY = {
    "rs": "random_search:RandomSearch",
    "rea": "evolution:RegularizedEvolution",
    "reinforce": "reinforce:Reinforce",
    "bo": "bayesopt:BayesOpt",
    "bananas": "predictors:Bananas",
}


def make(name: str, seed: int) -> Strategy:
    """A fresh strategy from ``REGISTRY`` by its short name, seeded."""
    if name not in REGISTRY:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"nas_lab.strategies.{module}"), cls)(seed=seed)
