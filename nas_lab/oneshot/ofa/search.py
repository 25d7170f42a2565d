"""Once-for-All's search: an accuracy predictor, and evolution under a latency limit.

After Cai, Gan, Wang, Zhang & Han, "Once-for-All: Train One Network and Specialize it for
Efficient Deployment", ICLR 2020, Section 3.4: an MLP accuracy predictor on the architecture
encoding, and an evolutionary search for the best predicted subnet under a latency limit, the
latency read from a per-block lookup table (:class:`~nas_lab.hardware.LatencyTable`, fed by
:func:`arch_block_specs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.oneshot.ofa.elastic import extreme_arch
from nas_lab.spaces import as_rng
from nas_lab.spaces.mbconv import ChainArch, ChainSpace, Stage, block_slots


class AccuracyPredictor(nn.Module):
    """OFA's accuracy predictor (Section 3.4): an MLP on the subnet's encoding
    (:meth:`ChainSpace.encode`: one-hot kernel and expansion per block slot, empty slots zero)."""

    def __init__(self, space: ChainSpace, hidden: int = 128, layers: int = 3) -> None:
        super().__init__()
        self.space = space
        sizes = [space.encoding_length] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            body += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*body, nn.Linear(hidden, 1))
        self.register_buffer("offset", torch.zeros(()))

    def forward(self, encodings: torch.Tensor) -> torch.Tensor:
        return self.mlp(encodings).squeeze(-1) + self.offset

    @torch.no_grad()
    def predict(self, archs: Sequence[ChainArch]) -> np.ndarray:
        """Predicted accuracies of ``archs``."""
        x = torch.as_tensor(np.stack([self.space.encode(a) for a in archs]))
        return self.eval()(x).numpy().astype(float)


def fit_predictor(
    space: ChainSpace,
    archs: Sequence[ChainArch],
    accuracies: Sequence[float],
    epochs: int = 300,
    seed: int = 0,
) -> AccuracyPredictor:
    """Fit an :class:`AccuracyPredictor` by mean squared error (Adam, full batch). The output
    starts at the mean accuracy (``offset``), so the MLP learns the differences."""
    if len(archs) != len(accuracies) or len(archs) < 2:
        raise ValueError("need at least 2 architectures, one accuracy each")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AccuracyPredictor(space)
    x = torch.as_tensor(np.stack([space.encode(a) for a in archs]))
    y = torch.as_tensor(np.asarray(accuracies, dtype=np.float32))
    model.offset.fill_(float(y.mean()))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()
    for _ in range(epochs):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    return model.eval()


def arch_block_specs(space: ChainSpace, arch: ChainArch, input_size: int = 8) -> list:
    """The :class:`~nas_lab.hardware.BlockSpec` of every block of ``arch``, without building the
    network: what the latency lookup table needs (stem stride 1, as the supernet's)."""
    from nas_lab.hardware import BlockSpec

    stem, _, widths = space.scaled_widths(1.0)
    arch = space.validate(arch)
    specs = []
    for slot in block_slots(stem, widths, space.strides, arch.depths, input_size):
        kernel, expansion = arch.stages[slot.stage].blocks[slot.index]
        specs.append(BlockSpec(slot.c_in, slot.c_out, kernel, expansion, slot.stride, slot.side))
    return specs


def _genome(space: ChainSpace, arch: ChainArch) -> tuple[list[int], list[list[tuple[int, int]]]]:
    """OFA's fixed-length form of a subnet: a depth per stage and a (kernel, expansion) per
    block slot, ``max_depth`` slots per stage; the slots past a stage's depth are kept (unused)
    so that mutation and crossover work slot by slot."""
    slots = []
    for stage in arch.stages:
        pad = [(space.kernels[0], space.expansions[0])] * (space.max_depth - stage.depth)
        slots.append(list(stage.blocks) + pad)
    return list(arch.depths), slots


def _arch(depths: list[int], slots: list[list[tuple[int, int]]]) -> ChainArch:
    return ChainArch(
        tuple(
            Stage(tuple(k for k, _ in s[:d]), tuple(e for _, e in s[:d]))
            for d, s in zip(depths, slots, strict=True)
        )
    )


def mutate(space: ChainSpace, arch: ChainArch, prob: float, rng: np.random.Generator):
    """Resample each choice (every slot's kernel and expansion, every stage's depth) with
    probability ``prob``, as OFA's evolutionary search does."""
    depths, slots = _genome(space, arch)
    for s, stage_slots in enumerate(slots):
        for b, (kernel, expansion) in enumerate(stage_slots):
            if rng.random() < prob:
                kernel = int(rng.choice(space.kernels))
            if rng.random() < prob:
                expansion = int(rng.choice(space.expansions))
            stage_slots[b] = (kernel, expansion)
        if rng.random() < prob:
            depths[s] = int(rng.choice(space.depths))
    return _arch(depths, slots)


def crossover(space: ChainSpace, a: ChainArch, b: ChainArch, rng: np.random.Generator):
    """Each choice taken from one of the two parents, at random."""
    (da, sa), (db, sb) = _genome(space, a), _genome(space, b)
    depths = [x if rng.random() < 0.5 else y for x, y in zip(da, db, strict=True)]
    slots = [
        [x if rng.random() < 0.5 else y for x, y in zip(p, q, strict=True)]
        for p, q in zip(sa, sb, strict=True)
    ]
    return _arch(depths, slots)


@dataclass
class SearchResult:
    arch: ChainArch
    accuracy: float  # predicted
    latency_ms: float  # from the lookup table
    best_per_generation: list[float]


def evolutionary_search(
    space: ChainSpace,
    predict: Callable[[Sequence[ChainArch]], np.ndarray],
    latency: Callable[[ChainArch], float],
    limit_ms: float,
    population: int = 100,
    generations: int = 30,
    parent_ratio: float = 0.25,
    mutation_ratio: float = 0.5,
    mutate_prob: float = 0.1,
    seed: int = 0,
) -> SearchResult:
    """OFA's search (Cai et al., ICLR 2020, Section 3.4, and the authors' code): a population
    of subnets that meet the latency limit; each generation keeps the best ``parent_ratio`` by
    predicted accuracy, and refills the population with mutants (``mutation_ratio`` of it) and
    crossovers of random parents, each redrawn until it meets the limit."""
    rng = as_rng(seed)

    def feasible(make: Callable[[], ChainArch]) -> ChainArch:
        for _ in range(1000):
            arch = make()
            if latency(arch) <= limit_ms:
                return arch
        raise ValueError(
            f"no subnet found under {limit_ms:.3f} ms in 1000 draws; the smallest subnet needs "
            f"{latency(extreme_arch(space, min)):.3f} ms: raise the limit"
        )

    pop = [feasible(lambda: space.sample(rng)) for _ in range(population)]
    n_parents, n_mutants = max(2, int(parent_ratio * population)), int(mutation_ratio * population)
    history = []
    for _ in range(generations):
        scores = np.asarray(predict(pop))
        order = np.argsort(-scores, kind="stable")
        parents = [pop[i] for i in order[:n_parents]]
        history.append(float(scores[order[0]]))
        children = []
        for _ in range(n_mutants):
            parent = parents[rng.integers(n_parents)]
            children.append(feasible(lambda p=parent: mutate(space, p, mutate_prob, rng)))
        while len(parents) + len(children) < population:
            i, j = rng.integers(n_parents, size=2)
            a, b = parents[i], parents[j]
            children.append(feasible(lambda a=a, b=b: crossover(space, a, b, rng)))
        pop = parents + children
    scores = np.asarray(predict(pop))
    best = int(np.argmax(scores))
    return SearchResult(pop[best], float(scores[best]), float(latency(pop[best])), history)
