"""Performance predictors, and predictor-guided search in the manner of BANANAS (lesson 05).

A performance predictor is a regression model from an architecture to its accuracy, fitted on the
architectures trained so far. With an estimate of its own uncertainty it can drive a Bayesian
optimisation loop in place of a Gaussian process: White, Neiswanger & Savani, "BANANAS: Bayesian
Optimization with Neural Architectures for Neural Architecture Search", AAAI 2021. The file
reads top to bottom:

1. ``BatchedLinear``: one linear layer for every member of an ensemble at once;
2. ``Predictor``: fit / predict for an ensemble trained from different initialisations (Deep
   Ensembles, Lakshminarayanan, Pritzel & Blundell, NeurIPS 2017): the members' mean is the
   prediction and their spread the uncertainty;
3. ``MLPPredictor``: a multilayer perceptron on the path encoding (BANANAS, Section 4);
4. ``GCNPredictor``: a graph convolutional network over the cell (Kipf & Welling, ICLR 2017), as
   in the neural predictor of Wen et al. (ECCV 2020);
5. ``Bananas``: the ask-and-tell strategy (mutations of the best as candidates, independent
   Thompson sampling or UCB as the acquisition).

Predictors train on the CPU: a few hundred 84-bit vectors or 8-node graphs are far too small to
pay for moving to a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import stats
from torch import nn

from nas_lab.bench import Result
from nas_lab.spaces import as_rng, nb201
from nas_lab.strategies.bayesopt import candidates

# --------------------------------------------------------------------------------------------
# 1. An ensemble's linear layer
# --------------------------------------------------------------------------------------------


class BatchedLinear(nn.Module):
    """``members`` independent linear layers applied at once: x (members, n, d_in) ->
    (members, n, d_out). Five small networks trained together cost about what one does, since at
    this size the time goes into per-operation overhead, not arithmetic."""

    def __init__(self, members: int, d_in: int, d_out: int, generator: torch.Generator) -> None:
        super().__init__()
        bound = 1 / math.sqrt(d_in)  # PyTorch's nn.Linear default (Kaiming-uniform) range
        self.weight = nn.Parameter(
            torch.empty(members, d_in, d_out).uniform_(-bound, bound, generator=generator)
        )
        self.bias = nn.Parameter(
            torch.empty(members, 1, d_out).uniform_(-bound, bound, generator=generator)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


# --------------------------------------------------------------------------------------------
# 2. The predictor interface: fit on (cells, scores), predict for cells
# --------------------------------------------------------------------------------------------


def squared_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean squared error, over members and cells."""
    return ((prediction - target) ** 2).mean()


def absolute_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean absolute error (an L1 loss), over members and cells: BANANAS' choice."""
    return (prediction - target).abs().mean()


LOSSES = {"mse": squared_error, "mae": absolute_error}


class Predictor:
    """An ensemble of ``members`` networks regressing the (standardised) score of a cell.

    Subclasses say how to encode cells (``features``) and which network to build (``build``);
    this class trains it: Adam for ``epochs`` passes on the ``loss`` (``"mse"``, the mean
    squared error, or ``"mae"``, the mean absolute error), full-batch unless ``batch_size`` is
    given (then shuffled minibatches, from the same seed), every member on the same data from
    its own random initialisation. ``predict`` gives the ensemble mean, ``predict_members``
    every member's prediction, ``predict_with_std`` mean and spread."""

    def __init__(
        self,
        members: int = 1,
        hidden: int = 32,
        epochs: int = 200,
        lr: float = 0.01,
        weight_decay: float = 1e-4,
        seed: int | np.random.Generator = 0,
        loss: str = "mse",
        batch_size: int | None = None,
    ) -> None:
        if members < 1 or hidden < 1 or epochs < 1:
            raise ValueError(
                f"members, hidden and epochs must be positive, got {members}, {hidden}, {epochs}"
            )
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, or None for full batches: {batch_size!r}")
        self.members, self.hidden, self.epochs = members, hidden, epochs
        self.lr, self.weight_decay = lr, weight_decay
        self.loss, self.batch_size = loss, batch_size
        self.rng = as_rng(seed)
        self.network: nn.Module | None = None

    def features(self, cells: Sequence[nb201.Cell]) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def build(self, generator: torch.Generator) -> nn.Module:
        """A module mapping ``features`` to predictions of shape (members, n)."""
        raise NotImplementedError

    def fit(self, cells: Sequence[nb201.Cell | str], scores: Sequence[float]) -> Predictor:
        cells = [nb201.as_cell(c) for c in cells]
        y = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(cells) != len(y) or len(y) < 2:
            raise ValueError(
                f"fit needs one score per cell and at least 2 cells, got {len(cells)} cells and "
                f"{len(y)} scores"
            )
        # Standardised targets: one learning rate suits any range of accuracies.
        self.mean, self.scale = float(y.mean()), float(y.std()) or 1.0
        target = torch.tensor((y - self.mean) / self.scale, dtype=torch.float32)
        generator = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
        self.network = self.build(generator)
        optimizer = torch.optim.Adam(
            self.network.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        inputs, loss_fn = self.features(cells), LOSSES[self.loss]
        for _ in range(self.epochs):
            for rows in self._batches(len(y), generator):
                optimizer.zero_grad()
                if rows is None:  # the whole training set at once
                    loss = loss_fn(self.network(*inputs), target)
                else:
                    loss = loss_fn(self.network(*(x[rows] for x in inputs)), target[rows])
                loss.backward()
                optimizer.step()
        return self

    def _batches(self, n: int, generator: torch.Generator) -> list[torch.Tensor | None]:
        """One epoch's batches: ``[None]`` (all rows) or a shuffled split into ``batch_size``."""
        if self.batch_size is None:
            return [None]
        return list(torch.randperm(n, generator=generator).split(self.batch_size))

    @torch.no_grad()
    def predict_members(self, cells: Sequence[nb201.Cell | str]) -> np.ndarray:
        """Every member's predicted score for each cell: (members, n)."""
        if self.network is None:
            raise RuntimeError("call fit(cells, scores) before predicting")
        out = self.network(*self.features([nb201.as_cell(c) for c in cells]))
        return out.double().numpy() * self.scale + self.mean

    def predict(self, cells: Sequence[nb201.Cell | str]) -> np.ndarray:
        """The ensemble's mean predicted score for each cell: (n,)."""
        return self.predict_members(cells).mean(axis=0)

    def predict_with_std(self, cells: Sequence[nb201.Cell | str]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the members (0 for a single network)."""
        members = self.predict_members(cells)
        return members.mean(axis=0), members.std(axis=0)


# --------------------------------------------------------------------------------------------
# 3. An MLP on the path encoding (BANANAS)
# --------------------------------------------------------------------------------------------


class _MLP(nn.Module):
    def __init__(self, members: int, d_in: int, hidden: int, layers: int, generator) -> None:
        super().__init__()
        sizes = [d_in] + [hidden] * layers
        self.layers = nn.ModuleList(
            BatchedLinear(members, a, b, generator) for a, b in zip(sizes, sizes[1:], strict=False)
        )
        self.out = BatchedLinear(members, hidden, 1, generator)
        self.members = members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.expand(self.members, *x.shape)  # every member sees the same inputs
        for layer in self.layers:
            h = torch.relu(layer(h))
        return self.out(h).squeeze(-1)


class MLPPredictor(Predictor):
    """A ReLU MLP on BANANAS' path encoding (84 bits: which operation sequences run from input
    to output; ``nb201.path_encoding``). White et al. show the path encoding makes the
    predictor's job easier than the adjacency matrix does (AAAI 2021, Section 4)."""

    def __init__(self, *args, layers: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.layers = layers

    def features(self, cells: Sequence[nb201.Cell]) -> tuple[torch.Tensor, ...]:
        return (torch.tensor(np.stack([nb201.path_encoding(c) for c in cells])),)

    def build(self, generator: torch.Generator) -> nn.Module:
        return _MLP(self.members, len(nb201.PATHS), self.hidden, self.layers, generator)


# --------------------------------------------------------------------------------------------
# 4. A graph convolutional network over the cell (Kipf & Welling 2017)
# --------------------------------------------------------------------------------------------

NODE_TYPES = ("input", *nb201.OPS, "output")


def graph(cell: nb201.Cell) -> tuple[np.ndarray, np.ndarray]:
    """The cell as a graph with operations on nodes (``nb201.adjacency``, 8 nodes): the
    normalised adjacency D^-1/2 (A + A^T + I) D^-1/2 (Kipf & Welling, eq. 2; edges made
    two-way so information flows both ways), and one-hot node types (8 x 7)."""
    matrix, labels = nb201.adjacency(cell)
    a = matrix + matrix.T + np.eye(len(matrix))
    d = 1 / np.sqrt(a.sum(axis=1))
    types = np.eye(len(NODE_TYPES), dtype=np.float32)[[NODE_TYPES.index(x) for x in labels]]
    return (a * d[:, None] * d[None, :]).astype(np.float32), types


class _GCN(nn.Module):
    """H^(l+1) = ReLU(A_hat H^(l) W^(l)) for each layer (Kipf & Welling 2017, eq. 2), then the
    mean over nodes and a linear read-out."""

    def __init__(self, members: int, hidden: int, layers: int, generator) -> None:
        super().__init__()
        sizes = [len(NODE_TYPES)] + [hidden] * layers
        self.layers = nn.ModuleList(
            BatchedLinear(members, a, b, generator) for a, b in zip(sizes, sizes[1:], strict=False)
        )
        self.out = BatchedLinear(members, hidden, 1, generator)
        self.members = members

    def forward(self, adjacency: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        n, nodes, _ = types.shape
        h = types.expand(self.members, n, nodes, types.shape[-1])
        for layer in self.layers:
            h = torch.matmul(adjacency, h)  # mix each node with its neighbours: A_hat H
            h = torch.relu(
                layer(h.reshape(self.members, n * nodes, -1)).reshape(self.members, n, nodes, -1)
            )
        return self.out(h.mean(dim=2)).squeeze(-1)


class GCNPredictor(Predictor):
    """A graph convolutional network on the cell with operations on nodes (``graph``): node
    features start as the operation's one-hot, are mixed along the cell's wiring for ``layers``
    rounds, then averaged into one vector per cell and read out (Wen et al., "Neural Predictor
    for Neural Architecture Search", ECCV 2020, use this on NAS-Bench-101)."""

    def __init__(self, *args, layers: int = 3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.layers = layers

    def features(self, cells: Sequence[nb201.Cell]) -> tuple[torch.Tensor, ...]:
        adjacency, types = zip(*(graph(c) for c in cells), strict=True)
        return torch.tensor(np.stack(adjacency)), torch.tensor(np.stack(types))

    def build(self, generator: torch.Generator) -> nn.Module:
        return _GCN(self.members, self.hidden, self.layers, generator)


PREDICTORS = {"mlp": MLPPredictor, "gcn": GCNPredictor}


def rank_learning_curve(
    make: Callable[[np.random.Generator], object],
    cells: Sequence[nb201.Cell | str],
    scores: Sequence[float],
    sizes: Sequence[int],
    n_test: int,
    repeats: int,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """How well a predictor trained on N cells ranks cells it has not seen: Spearman's rho
    between predicted and true scores on ``n_test`` held-out cells, for each training-set size N
    in ``sizes`` and each of ``repeats`` random splits; shape (repeats, len(sizes)). Within a
    repeat the test cells are fixed and the training sets nested (the first N of one random
    order), so the sizes differ only in how much the predictor saw, as in the predictor
    comparisons of White et al. (NeurIPS 2021, "How Powerful are Performance Predictors in
    NAS?"). ``make(rng)`` returns an unfitted object with ``fit(cells, scores)`` and
    ``predict(cells)``."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(cells) != len(scores):
        raise ValueError(f"give one score per cell: {len(cells)} cells, {len(scores)} scores")
    if max(sizes) + n_test > len(cells):
        raise ValueError(
            f"{max(sizes)} training plus {n_test} test cells need more than the {len(cells)} given"
        )
    rng = as_rng(seed)
    rho = np.empty((repeats, len(sizes)))
    for r in range(repeats):
        order = rng.permutation(len(cells))
        test = order[:n_test]
        test_cells = [cells[i] for i in test]
        for j, n in enumerate(sizes):
            train = order[n_test : n_test + n]
            model = make(rng).fit([cells[i] for i in train], scores[train])
            rho[r, j] = stats.spearmanr(model.predict(test_cells), scores[test]).statistic
    return rho


# --------------------------------------------------------------------------------------------
# 5. BANANAS: the ensemble drives the search
# --------------------------------------------------------------------------------------------

ACQUISITIONS = ("its", "ucb")

# BANANAS' settings on NAS-Bench-201, as keyword arguments: ``Bananas(**PAPER)``. From the
# authors' code, github.com/naszilla/bananas at e2c12ad: nas_algorithms.py ("na.py", the
# defaults of ``bananas``), params.py ("params.py", the 'nasbench_201_cifar10' predictor
# settings) and data.py (``get_candidates``).
PAPER = {
    "ensemble": 5,  # na.py:137 num_ensemble=5
    "layers": 10,  # params.py:64 'num_layers':10
    "hidden": 20,  # params.py:64 'layer_width':20
    "loss": "mae",  # params.py:64 'loss':'mae'
    "lr": 0.01,  # params.py:65 'lr':.01 (Adam with betas (0.9, 0.99): meta_neural_net.py:83)
    "epochs": 150,  # params.py:65 'epochs':150 (MetaNeuralnet.fit's own default is 200)
    "batch_size": 32,  # params.py:65 'batch_size':32
    "weight_decay": 0.0,  # params.py:65 'regularization':0
    "n_init": 10,  # na.py:133 num_init=10
    "refit_every": 10,  # na.py:134 k=10: the model is refitted after every 10 queries
    "n_candidates": 100,  # data.py:156 num=100 candidates
    "top": 1,  # na.py:139 num_arches_to_mutate=1: mutations of the best architecture
    "n_random": 0,  # na.py:138 acq_opt_type='mutation': no random candidates
    "acquisition": "its",  # na.py:140 explore_type='its'
    "predictor": "mlp",  # na.py:141 a path encoding ('trunc_path')
}


class Bananas:
    """BANANAS (White et al., AAAI 2021, Algorithm 1) as an ask-and-tell strategy.

    The first ``n_init`` asks are uniform samples. Then, every ``refit_every`` new observations,
    an ensemble of ``ensemble`` predictors is refitted to all of them (``predictor``, with
    ``layers`` layers of width ``hidden``, trained by Adam at ``lr`` for ``epochs`` on the
    ``loss``; see ``Predictor``). Each ask mutates the ``top`` best cells seen, plus
    ``n_random`` random cells (default: a tenth), into ``n_candidates`` candidates and
    proposes the one of highest acquisition, computed from the ensemble mean mu and spread
    sigma:

    - ``"its"``, independent Thompson sampling (as in BANANAS): draw one value per
      candidate from N(mu, sigma^2), independently, and take the largest draw;
    - ``"ucb"``: mu + kappa * sigma.

    Cells are handled as canonical representatives and never asked twice.

    ``Bananas(**predictors.PAPER)`` takes the authors' settings on NAS-Bench-201: five MLPs of
    10 layers of width 20, trained on the mean absolute error in minibatches of 32 for 150
    epochs without weight decay, refitted after every 10 trainings, with 100 candidates that
    are all mutations of the best cell. The course's defaults differ: MLPs of 2 layers of width
    32 on the squared error, full-batch for 200 epochs with weight decay 1e-4, refitted every 5
    trainings, with a tenth of the candidates random and the rest mutations of the best 10.
    The course's networks are smaller and trained full-batch because every refit costs a fit,
    on a CPU, in a comparison of 20 seeds: on 100 cells the paper's ensemble took about five
    times as long to fit on one CPU thread (minibatches make its cost grow with the data); the
    random candidates and the wider set of parents are the course's choice, to keep the
    acquisition from looking only next to the incumbent. Three differences the preset
    cannot remove: BANANAS queries the 10 best candidates of one acquisition at once where we
    propose one per ask; its mutation changes each edge with probability 1/4 (so sometimes
    none) where ours changes one or two; and on NAS-Bench-201 it encodes a cell by the first 40
    of its 155 path bits (paths through ``none`` included), ours by the 84 paths without it.
    """

    def __init__(
        self,
        seed: int | np.random.Generator = 0,
        ensemble: int = 5,
        n_init: int = 10,
        n_candidates: int = 100,
        acquisition: str = "its",
        refit_every: int = 5,
        predictor: str = "mlp",
        kappa: float = 1.0,
        epochs: int = 200,
        hidden: int = 32,
        layers: int | None = None,
        loss: str = "mse",
        lr: float = 0.01,
        weight_decay: float = 1e-4,
        batch_size: int | None = None,
        top: int = 10,
        n_random: int | None = None,
    ) -> None:
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {tuple(PREDICTORS)}, got {predictor!r}")
        if n_init < 2 or refit_every < 1 or n_candidates < 1 or ensemble < 1 or top < 1:
            raise ValueError(
                "need n_init >= 2 (a predictor fits at least two points), refit_every >= 1, "
                "n_candidates >= 1, ensemble >= 1 and top >= 1"
            )
        n_random = n_candidates // 10 if n_random is None else n_random
        if not 0 <= n_random <= n_candidates:
            raise ValueError(f"n_random must be in 0..n_candidates ({n_candidates}): {n_random}")
        self.rng = as_rng(seed)
        shape = {} if layers is None else {"layers": layers}  # else the predictor's default
        self.model = PREDICTORS[predictor](
            members=ensemble,
            hidden=hidden,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            seed=self.rng,
            loss=loss,
            batch_size=batch_size,
            **shape,
        )
        self.n_init, self.n_candidates, self.refit_every = n_init, n_candidates, refit_every
        self.top, self.n_random = top, n_random
        self.acquisition, self.kappa = acquisition, kappa
        self.observed: list[tuple[nb201.Cell, float]] = []  # (canonical cell, val acc)
        self.fitted_on = 0  # how many observations the model last saw

    def ask(self) -> nb201.Cell:
        if len(self.observed) < self.n_init:
            return self._random_unseen()
        if self.fitted_on == 0 or len(self.observed) - self.fitted_on >= self.refit_every:
            cells, scores = zip(*self.observed, strict=True)
            self.model.fit(cells, scores)
            self.fitted_on = len(self.observed)
        n_mutations = self.n_candidates - self.n_random
        pool = candidates(self.rng, self.observed, self.n_random, n_mutations, top=self.top)
        if not pool:
            return self._random_unseen()
        mu, sigma = self.model.predict_with_std(pool)
        if self.acquisition == "its":
            score = self.rng.normal(mu, sigma)
        else:
            score = mu + self.kappa * sigma
        return pool[int(np.argmax(score))]

    def _random_unseen(self) -> nb201.Cell:
        seen = {cell for cell, _ in self.observed}
        for _ in range(100):
            cell = nb201.sample(self.rng).canonical()
            if cell not in seen:
                break
        return cell

    def tell(self, cell: nb201.Cell, result: Result) -> None:
        self.observed.append((nb201.as_cell(cell).canonical(), float(result.val_acc)))
