"""Regularized (aging) evolution, with mutation and, as a variant, crossover.

Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture Search",
AAAI 2019, Algorithm 1 (P = population size, S = sample size, C = cycles):

    population <- empty queue                   # youngest on the right
    while |population| < P:                     # a random start
        child <- a random architecture, trained
        add child to the right of population, and to history
    while |history| < C:                        # evolution
        sample <- S members drawn at random from population (they stay in it)
        parent <- the member of sample with the highest accuracy      # tournament selection
        child <- mutate(parent), trained
        add child to the right of population, and to history
        remove the leftmost member of population                       # aging: the OLDEST dies

The one change from classic tournament evolution is the last line: the oldest member dies, not
the worst. Every architecture is thus judged again and again through its descendants, and a
lucky one (noisy accuracy) cannot stay forever; the paper calls it regularization. With
``aging=False`` the worst member dies instead: the paper's non-regularized baseline (NRE), kept
here so that a lesson can measure the difference.

Here the loop is cut into ``ask`` (the next child) and ``tell`` (add it, the oldest dies) so that
``nas_lab.strategies.run`` drives it on the benchmark's clock. The defaults, P = 10 and S = 3, are
those NAS-Bench-201 used for REA (Dong & Yang, ICLR 2020).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from nas_lab.bench import Result
from nas_lab.spaces import as_rng, nb201

Mutation = Callable[[nb201.Cell, np.random.Generator], nb201.Cell]


class Member(NamedTuple):
    """One trained architecture in the population: the cell and its validation accuracy."""

    cell: nb201.Cell
    val_acc: float


def tournament(population: Sequence[Member], k: int, rng: np.random.Generator) -> Member:
    """Tournament selection, Algorithm 1's sample and parent: draw ``k`` members uniformly, with
    replacement (a drawn member stays in the population), and return the most accurate of them.
    Of equally accurate members, the one drawn first wins."""
    if len(population) == 0:
        raise ValueError("tournament needs a non-empty population; tell the strategy some results")
    if k < 1:
        raise ValueError(f"the tournament size k must be at least 1, got {k}")
    drawn = rng.integers(len(population), size=k)
    return max((population[int(i)] for i in drawn), key=lambda member: member.val_acc)


def crossover(a: nb201.Cell, b: nb201.Cell, rng: np.random.Generator) -> nb201.Cell:
    """Uniform crossover: each edge takes its operation from parent ``a`` or ``b`` with
    probability 1/2 (Syswerda, "Uniform Crossover in Genetic Algorithms", ICGA 1989). Edges are
    the genes; a child can only combine what its parents already had."""
    a, b = nb201.as_cell(a), nb201.as_cell(b)
    from_a = rng.random(len(nb201.EDGES)) < 0.5
    genes = zip(a.ops, b.ops, from_a, strict=True)
    return nb201.Cell(tuple(x if take_a else y for x, y, take_a in genes))


class RegularizedEvolution:
    """Aging evolution as an ask-and-tell strategy.

    ``ask`` returns a random cell until the population is full, then a mutated tournament winner
    (with ``crossover=True``: the uniform crossover of two tournament winners, then mutated).
    ``tell`` appends the cell with its validation accuracy and removes the oldest member (with
    ``aging=False``: the least accurate, the oldest of equals). ``history`` keeps every member
    ever told, in order.
    """

    def __init__(
        self,
        population_size: int = 10,
        sample_size: int = 3,
        seed: int | np.random.Generator = 0,
        crossover: bool = False,
        mutation: Mutation = nb201.mutate,
        aging: bool = True,
    ):
        if int(population_size) != population_size or population_size < 1:
            raise ValueError(f"population_size must be an integer >= 1, got {population_size!r}")
        if int(sample_size) != sample_size or not 1 <= sample_size <= population_size:
            raise ValueError(
                f"sample_size must be an integer between 1 and population_size "
                f"({population_size}), got {sample_size!r}"
            )
        if not callable(mutation):
            raise ValueError(
                "mutation must be a function (cell, rng) -> cell, such as nb201.mutate; "
                f"got {mutation!r}"
            )
        self.population_size, self.sample_size = int(population_size), int(sample_size)
        self.crossover, self.mutation, self.aging = bool(crossover), mutation, bool(aging)
        self.rng = as_rng(seed)
        self.population: deque[Member] = deque()  # oldest on the left
        self.history: list[Member] = []

    def ask(self) -> nb201.Cell:
        if len(self.population) < self.population_size:  # Algorithm 1's random start
            return nb201.sample(self.rng)
        parent = tournament(self.population, self.sample_size, self.rng)
        if not self.crossover:
            return self.mutation(parent.cell, self.rng)
        other = tournament(self.population, self.sample_size, self.rng)
        return self.mutation(crossover(parent.cell, other.cell, self.rng), self.rng)

    def tell(self, cell: nb201.Cell, result: Result) -> None:
        member = Member(nb201.as_cell(cell), float(result.val_acc))
        self.population.append(member)
        self.history.append(member)
        if len(self.population) > self.population_size:
            if self.aging:
                self.population.popleft()  # aging: the oldest dies, however good it is
            else:  # non-regularized: the worst dies, so a lucky member can live forever
                self.population.remove(min(self.population, key=lambda m: m.val_acc))

    @property
    def best(self) -> Member:
        """The most accurate member ever told (it may have died of old age since)."""
        if not self.history:
            raise ValueError("nothing told yet: run the strategy first")
        return max(self.history, key=lambda member: member.val_acc)

    def __repr__(self) -> str:
        return (
            f"RegularizedEvolution(population_size={self.population_size}, "
            f"sample_size={self.sample_size}, crossover={self.crossover}, aging={self.aging})"
        )
