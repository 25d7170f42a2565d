"""Random search, the baseline every NAS method must beat.

Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture Search", UAI 2019;
Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 2012. Each step
proposes a cell drawn uniformly from the 15,625 strings and learns nothing from the answer:

    from nas_lab.strategies import run
    clock = run(RandomSearch(seed=0), bench, budget=600, seed=0)
"""

from __future__ import annotations

import numpy as np

from nas_lab.bench import Result
from nas_lab.spaces import as_rng, nb201


class RandomSearch:
    """Ask: a uniformly random cell (``nb201.sample``). Tell: nothing to learn."""

    def __init__(self, seed: int | np.random.Generator = 0):
        self.rng = as_rng(seed)

    def ask(self) -> nb201.Cell:
        return nb201.sample(self.rng)

    def tell(self, cell: nb201.Cell, result: Result) -> None:
        """Random search ignores what it learns: that is what makes it the baseline."""

    def __repr__(self) -> str:
        return "RandomSearch()"
