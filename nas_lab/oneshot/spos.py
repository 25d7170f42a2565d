"""SPOS: Single Path One-Shot NAS with Uniform Sampling (Guo, Zhang, Mu, Heng, Liu, Wei & Sun,
ECCV 2020).

SPOS separates the two things DARTS learns together. First the supernet's weights are trained
alone, each step on ONE path drawn uniformly at random (eq. 4 with a uniform prior Gamma):

    W* = argmin_W  E_{a ~ Uniform(A)} [ L_train(N(a, W(a))) ]

so that every architecture's path is trained about equally and no architecture parameter can
favour one path early. Then the weights are frozen and a plain evolutionary search looks for the
architecture whose path, with the inherited weights, scores best on held-out data (eq. 2):

    a* = argmax_a  ACC_val(N(a, W*(a)))

The evolution (the paper's Algorithm 1): a random population; each generation keeps the top k
of all candidates seen so far and makes new ones from them by crossover and by mutation, each
edge of a mutant resampled with probability 0.1; every candidate is scored by its supernet
accuracy (``supernet.path_accuracy``) on the held-out half, never by training.

The same trained supernet gives the weight-sharing estimate of any cell:
``weight_sharing_ranking`` scores >= 200 architectures for comparison with the benchmark.
"""

from __future__ import annotations

import numpy as np

from nas_lab.oneshot import supernet as sn
from nas_lab.spaces import nb201
from nas_lab.strategies.evolution import crossover


def mutate_edges(cell: nb201.Cell, prob: float, rng: np.random.Generator) -> nb201.Cell:
    """SPOS' mutation: each edge, with probability ``prob``, takes an operation drawn uniformly
    from all 5 (it may draw the one it had)."""
    ops = [
        nb201.OPS[int(rng.integers(len(nb201.OPS)))] if rng.random() < prob else op
        for op in cell.ops
    ]
    return nb201.Cell(tuple(ops))


class SPOS(sn.OneShotSearch):
    """Single-path one-shot NAS: ``SPOS(seed=0).search()`` trains the supernet, runs the
    evolution, and returns the best cell.

    Weights: SGD (momentum 0.9, learning rate ``lr`` cosine-annealed, weight decay 3e-4, the
    supernet helpers' defaults), one uniformly sampled path per batch. Evolution: the paper's
    population 50, top k 10, 25 crossovers and 25 mutations per generation, mutation
    probability 0.1; ``iterations`` generations (20, as in the paper). ``fast`` shortens training
    and evolution; the other options are ``supernet.OneShotSearch``'s."""

    name = "SPOS"
    full_epochs, fast_epochs, default_lr = 250, 40, 0.05

    def __init__(
        self,
        iterations: int | None = None,
        population: int = 50,
        top_k: int = 10,
        mutation_prob: float = 0.1,
        **options,
    ) -> None:
        fast = options.get("fast", False)
        self.iterations = sn.check_epochs(iterations, fast, 20, 3, "iterations")
        if not 1 <= top_k <= population:
            raise ValueError(f"need 1 <= top_k <= population, got {top_k} and {population}")
        if not 0 <= mutation_prob <= 1:
            raise ValueError(f"mutation_prob is a probability, got {mutation_prob!r}")
        self.population, self.top_k, self.mutation_prob = population, top_k, mutation_prob
        super().__init__(**options)
        self.scores: dict[nb201.Cell, float] = {}  # every candidate the evolution scored
        self.top: list[nb201.Cell] = []  # the best k candidates scored so far
        self.generations: list[float] = []  # the best score after each generation

    def sample(self) -> nb201.Cell:
        """A path drawn uniformly: each edge's operation uniform over all 5."""
        return nb201.sample(self.rng)

    def train_supernet(self) -> None:
        """Uniform single-path training of the supernet's weights (the paper's eq. 4)."""
        opt, schedule = self.weight_optimizer()
        bar = self.bar(desc=f"{self.name} supernet")
        for epoch in bar:
            loss = self.path_epoch(self.sample, opt, schedule)
            self.history.append(sn.Epoch(epoch + 1, loss, float("nan"), None, None))
            bar.set_postfix(loss=f"{loss:.3f}")

    def score(self, cell: nb201.Cell) -> float:
        """The supernet accuracy of ``cell`` on the held-out half (cached)."""
        if cell not in self.scores:
            self.scores[cell] = sn.path_accuracy(self.net, cell, self.data.arch)
        return self.scores[cell]

    def _new(self, make, count: int) -> list[nb201.Cell]:
        """Up to ``count`` candidates from ``make()`` that were never scored (50 tries each)."""
        found: list[nb201.Cell] = []
        for _ in range(50 * count):
            if len(found) == count:
                break
            cell = make()
            if cell not in self.scores and cell not in found:
                found.append(cell)
        return found

    def _pick(self) -> nb201.Cell:
        """A parent drawn uniformly from the current top k."""
        return self.top[int(self.rng.integers(len(self.top)))]

    def evolve(self) -> nb201.Cell:
        """The evolutionary search of the paper's Algorithm 1, with supernet accuracy as fitness."""
        for cell in self._new(self.sample, self.population):
            self.score(cell)
        half = self.population // 2
        bar = self.bar(self.iterations, f"{self.name} evolution")
        for _ in bar:
            self.top = sorted(self.scores, key=self.scores.get, reverse=True)[: self.top_k]
            children = self._new(lambda: crossover(self._pick(), self._pick(), self.rng), half)
            mutant = lambda: mutate_edges(self._pick(), self.mutation_prob, self.rng)  # noqa: E731
            children += self._new(mutant, half)
            for cell in children:
                self.score(cell)
            self.generations.append(max(self.scores.values()))
            bar.set_postfix(best=f"{self.generations[-1]:.3f}", scored=len(self.scores))
        return max(self.scores, key=self.scores.get)

    def run(self) -> nb201.Cell:
        """Train the supernet, then run the evolution; the best cell it scored."""
        self.train_supernet()
        return self.evolve()


def search(seed: int = 0, fast: bool = False, **options) -> nb201.Cell:
    """Run SPOS and return the cell it finds; ``options`` go to ``SPOS``."""
    return SPOS(seed=seed, fast=fast, **options).search()


def weight_sharing_ranking(
    n: int = 200,
    seed: int = 0,
    fast: bool = False,
    cells: list[nb201.Cell] | None = None,
    searcher: SPOS | None = None,
) -> dict[str, float]:
    """The supernet's estimate of ``n`` architectures: {cell string: supernet accuracy}.

    The cells are ``cells`` when given, else ``n`` different isomorphism-class representatives
    drawn with ``seed`` (so each can be looked up in the benchmark). The supernet is
    ``searcher``'s when given (a trained ``SPOS``), else a fresh SPOS supernet trained with
    ``seed`` and ``fast``. Correlate the result with the table's accuracies (lesson 07)."""
    if cells is None:
        unique = nb201.unique_cells()
        if not 1 <= n <= len(unique):
            raise ValueError(f"n must be between 1 and {len(unique)} (the unique cells), got {n}")
        chosen = np.random.default_rng(seed).choice(len(unique), size=n, replace=False)
        cells = [unique[int(i)] for i in chosen]
    if searcher is None:
        searcher = SPOS(seed=seed, fast=fast)
        with sn.WallClock("SPOS supernet training") as clock:
            searcher.train_supernet()
        print(f"{clock.name}: {clock.seconds:.1f} s wall time")
    cells = [nb201.as_cell(c) for c in cells]
    return {str(c): searcher.score(c) for c in cells}
