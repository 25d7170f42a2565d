"""Random search, the baseline every NAS method must beat.

Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture Search", UAI 2019;
Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 2012. Each step
proposes a cell drawn uniformly from the 15,625 strings and learns nothing from the answer:

    from nas_lab.strategies import run
    clock = run(RandomSearch(seed=0), bench, budget=600, seed=0)

The library has two random searches, over two distributions:

- this one, random search over *strings*: uniform over the 15,625 cell strings, with
  replacement. An isomorphism class comes up in proportion to its number of strings, and a
  string drawn twice is trained, and paid for, twice (``strategies.run`` charges every ask).
  It is the ask-and-tell baseline of lessons 03 (RL controller), 04 (evolution), 05 (BO and
  predictors) and 12 (capstone), and of ``nas-lab compare``: the strategies it is compared
  with propose strings too;
- ``estimation.random_search``, random search over *classes*: uniform over the table's
  isomorphism classes (one row each), without replacement. Lesson 02 uses it, with the
  multi-fidelity searches built on the same draw (``estimation._start``).
"""

from __future__ import annotations

import numpy as np

from nas_lab.bench import Result
from nas_lab.spaces import as_rng, nb201


class RandomSearch:
    """Random search over strings. Ask: a cell string drawn uniformly from the 15,625
    (``nb201.sample``), with replacement. Tell: nothing to learn."""

    def __init__(self, seed: int | np.random.Generator = 0):
        self.rng = as_rng(seed)

    def ask(self) -> nb201.Cell:
        return nb201.sample(self.rng)

    def tell(self, cell: nb201.Cell, result: Result) -> None:
        """Random search ignores what it learns: that is what makes it the baseline."""

    def __repr__(self) -> str:
        return "RandomSearch()"
