"""The one-shot supernet: every NAS-Bench-201 cell inside one network, with shared weights.

Training 6,466 cells one by one is what the benchmark did; one-shot NAS trains ONE network that
contains them all and lets the cells share its weights (Pham et al., ICML 2018; Bender et al.,
ICML 2018). On each of the 6 edges of the cell sits a *mixed edge* that holds all 5 candidate
operations. A method then chooses, per step, how to combine them:

- a continuous mixture, DARTS' eq. 1 (Liu, Simonyan & Yang, ICLR 2019):

      o_bar(x) = sum_o w_o * o(x),   w = softmax(alpha) for this edge                (eq. 1)

  optionally on a 1/K share of the channels (PC-DARTS, Xu et al., ICLR 2020, eq. 2), and with
  each node's inputs weighted by edge weights (PC-DARTS' edge normalisation, eq. 4);
- a single path: one operation per edge (GDAS, ENAS, SPOS). A single path through the
  supernet computes exactly what ``nb201.CellNet`` computes for that cell, with shared weights.

The network around the cells is the benchmark's own skeleton (``nb201.CellNet``: stem, N cells
per stage, residual reductions, BN-ReLU, pooling, linear), built from ``nb201``'s modules, at
the benchmark recipe's width and depth (C=8, N=3), so an architecture found here is judged by
the table on the network it was searched in.

Two choices for weight sharing. The architecture parameters are shared by all cells, as in
NAS-Bench-201's own weight-sharing baselines: there is one cell to find, used everywhere. And
BatchNorm always normalises with the statistics of the current batch (no running averages): a
running average would mix the statistics of every path the supernet has run, and be wrong for
each of them.

The file also holds what every search shares: the data (two halves of the training split, one to
train the weights and one to judge architectures), the batch loop, discretisation, subnet
accuracy, the wall-clock report, and a peak-memory meter.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset
from tqdm.auto import trange

from nas_lab import data
from nas_lab.bench.recipe import RECIPE
from nas_lab.device import default_device
from nas_lab.spaces import as_rng, nb201
from nas_lab.train import batches, seed_everything, steps_per_epoch

OPS, EDGES = nb201.OPS, nb201.EDGES
NUM_EDGES, NUM_OPS = len(EDGES), len(OPS)
NONE = OPS.index("none")

# The benchmark's network (its recipe): the supernet has the same width and depth.
WIDTH, DEPTH = RECIPE.channels, RECIPE.cells_per_stage

# --------------------------------------------------------------------------------------------
# 1. The mixed edge
# --------------------------------------------------------------------------------------------


class Zero(nn.Module):
    """The ``none`` operation as a module (DARTS' ``Zero``): its output is all zeros."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def candidate_ops(channels: int) -> nn.ModuleList:
    """The 5 operations of ``OPS``, in that order, at ``channels`` channels."""
    return nn.ModuleList(Zero() if op == "none" else nb201.make_op(op, channels) for op in OPS)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle (Zhang et al., CVPR 2018): view the channels as a
    (groups, C/groups) grid and transpose it, so the channels that went through the operations
    in one cell are spread over the groups the next cell samples (PC-DARTS, Section 3.2)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MixedEdge(nn.Module):
    """One edge of the supernet: all 5 candidate operations, weighted or one at a time.

    With ``partial = K > 1`` (PC-DARTS, Xu et al., ICLR 2020, eq. 2) the mixture runs on the
    first C/K channels only; the other channels bypass the edge unchanged, and the result is
    channel-shuffled with K groups:

        f_PC(x) = shuffle( [ sum_o w_o * o(x[:C/K]) , x[C/K:] ] )                      (PC eq. 2)
    """

    def __init__(self, channels: int, partial: int = 1) -> None:
        super().__init__()
        if partial < 1 or channels % partial:
            raise ValueError(
                f"partial channels K must be a positive divisor of the width {channels} "
                f"(PC-DARTS uses K=4 at widths divisible by 4); got K={partial}"
            )
        self.channels, self.partial = channels, partial
        self.ops = candidate_ops(channels // partial)

    def mix(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """DARTS eq. 1 on ``x``: sum_o w_o * o(x). ``none`` adds w_none * 0, so it is not run."""
        return sum(
            w * op(x) for k, (w, op) in enumerate(zip(weights, self.ops, strict=True)) if k != NONE
        )

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.partial == 1:
            return self.mix(x, weights)
        share = self.channels // self.partial
        mixed = self.mix(x[:, :share], weights)
        return channel_shuffle(torch.cat([mixed, x[:, share:]], dim=1), self.partial)

    def single(self, x: torch.Tensor, index: int, gate: torch.Tensor | None = None) -> torch.Tensor:
        """Operation ``index`` alone, on all channels (single-path methods), times ``gate``
        when given (GDAS' straight-through weight, value 1, gradient to alpha)."""
        if self.partial != 1:
            raise ValueError(
                "a single path runs on all channels: build the supernet with partial=1"
            )
        out = self.ops[index](x)
        return out if gate is None else out * gate


# --------------------------------------------------------------------------------------------
# 2. The cell and the network
# --------------------------------------------------------------------------------------------


class SuperCell(nn.Module):
    """The NAS-Bench-201 cell with a ``MixedEdge`` on each edge: node_j = sum_{i<j} e_ij(node_i)."""

    def __init__(self, channels: int, partial: int = 1) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(channels, partial) for _ in EDGES)

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, edge_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The mixture: ``weights`` (6, 5) per edge and operation; ``edge_weights`` (6,), if
        given, scale each edge's output (PC-DARTS' edge normalisation, eq. 4)."""
        nodes = [x]
        for target in range(1, nb201.NUM_NODES):
            terms = []
            for e, (source, t) in enumerate(EDGES):
                if t == target:
                    out = self.edges[e](nodes[source], weights[e])
                    terms.append(out if edge_weights is None else edge_weights[e] * out)
            nodes.append(sum(terms))
        return nodes[-1]

    def path(
        self, x: torch.Tensor, ops: Sequence[int | None], gates: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A single path: edge e runs operation ``ops[e]`` alone, or nothing when it is None. A
        node no edge reaches is absent; when the output is absent the cell returns zeros, as
        ``nb201.CellModule`` does. ``gates`` (6,) multiply the edges' outputs (GDAS)."""
        nodes: dict[int, torch.Tensor] = {0: x}
        for e, ((source, target), index) in enumerate(zip(EDGES, ops, strict=True)):
            if index is None or source not in nodes:
                continue
            out = self.edges[e].single(nodes[source], index, None if gates is None else gates[e])
            nodes[target] = out if target not in nodes else nodes[target] + out
        return nodes.get(nb201.NUM_NODES - 1, torch.zeros_like(x))


def batch_statistics_only(module: nn.Module) -> nn.Module:
    """Make every BatchNorm of ``module`` normalise with the current batch's statistics, in
    training and in evaluation alike (NAS-Bench-201's weight-sharing setting)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None
    return module


def path_ops(cell: nb201.Cell | str) -> list[int | None]:
    """The operation index to run on each edge for ``cell``: None on the edges that cannot
    influence the output (``nb201.active_edges``), exactly those ``nb201.CellModule`` skips."""
    cell = nb201.as_cell(cell)
    active = set(nb201.active_edges(cell))
    return [
        OPS.index(op) if edge in active else None for edge, op in zip(EDGES, cell.ops, strict=True)
    ]


class Supernet(nn.Module):
    """All NAS-Bench-201 cells in one network: ``nb201.CellNet``'s skeleton with ``SuperCell``s.

    ``forward(x, weights, edge_weights)`` runs the continuous mixture (DARTS, PC-DARTS);
    ``path(x, cell)`` runs one cell's single path (ENAS, SPOS, ranking); ``gated(x, ops, gates)``
    runs one sampled operation on every edge, times a gate (GDAS). Every cell of the network
    uses the same architecture. ``partial = K`` builds PC-DARTS' partial-channel edges."""

    def __init__(
        self,
        C: int = WIDTH,
        N: int = DEPTH,
        num_classes: int = 10,
        in_channels: int = 1,
        partial: int = 1,
    ) -> None:
        super().__init__()
        # The benchmark's own network for an empty cell (it checks the arguments): keep its
        # stem, reductions, last activation and classifier; put a SuperCell where a cell was.
        empty = nb201.Cell(("none",) * NUM_EDGES)
        skeleton = nb201.CellNet(empty, C, N, num_classes, in_channels)
        self.in_channels, self.partial = in_channels, partial
        self.stem, self.lastact = skeleton.stem, skeleton.lastact
        self.classifier = skeleton.classifier
        layers: list[nn.Module] = []
        width = C
        for layer in skeleton.cells:
            if isinstance(layer, nb201.ResidualReduction):
                width *= 2
                layers.append(layer)
            else:
                layers.append(SuperCell(width, partial))
        self.layers = nn.ModuleList(layers)
        batch_statistics_only(self)

    def _run(self, x: torch.Tensor, cell_fn: Callable[[SuperCell, torch.Tensor], torch.Tensor]):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"the supernet expects images of shape (batch, {self.in_channels}, height, "
                f"width), got {tuple(x.shape)}; add a channel dimension with x.unsqueeze(1)"
            )
        x = self.stem(x)
        for layer in self.layers:
            x = cell_fn(layer, x) if isinstance(layer, SuperCell) else layer(x)
        return self.classifier(self.lastact(x).mean(dim=(2, 3)))

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, edge_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        if tuple(weights.shape) != (NUM_EDGES, NUM_OPS):
            raise ValueError(
                f"weights must have shape ({NUM_EDGES}, {NUM_OPS}): one row per edge in EDGES "
                f"order, one column per operation in OPS order; got {tuple(weights.shape)}"
            )
        return self._run(x, lambda cell, h: cell(h, weights, edge_weights))

    def path(self, x: torch.Tensor, cell: nb201.Cell | str) -> torch.Tensor:
        """The logits of ``cell``'s single path, with the supernet's shared weights."""
        ops = path_ops(cell)
        return self._run(x, lambda c, h: c.path(h, ops))

    def gated(self, x: torch.Tensor, ops: Sequence[int], gates: torch.Tensor) -> torch.Tensor:
        """Operation ``ops[e]`` on every edge e (``none`` included, run as zeros), times
        ``gates[e]``: GDAS' forward pass."""
        return self._run(x, lambda c, h: c.path(h, list(ops), gates))

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())


# --------------------------------------------------------------------------------------------
# 3. What every search shares: data, batches, discretisation, subnet accuracy, timing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchData:
    """The search's data: two halves of the benchmark's training split (DARTS, Section 3.3
    splits CIFAR-10's training set the same way). ``weights`` trains the supernet's weights,
    ``arch`` judges architectures (DARTS' "validation" loss, SPOS' and ENAS' fitness). The
    benchmark's validation and test splits stay unseen, so the table judges the search fairly."""

    weights: TensorDataset
    arch: TensorDataset


def halves(dataset: TensorDataset, seed: int = 0, device: torch.device | str = "cpu") -> SearchData:
    """Split ``dataset`` in two stratified halves, seeded by ``seed``, on ``device``: one for the
    weights, one for the architecture."""
    x, y = dataset.tensors
    first, second = data.stratified_split(y.numpy(), (0.5,), seed)
    device = torch.device(device)
    half = lambda idx: TensorDataset(x[idx].to(device), y[idx].to(device))  # noqa: E731
    return SearchData(weights=half(first), arch=half(second))


def search_data(seed: int = 0, device: torch.device | str = "cpu") -> SearchData:
    """:func:`halves` of the benchmark recipe's training split (digits, the recipe's data seed)."""
    return halves(data.load(RECIPE.dataset, seed=RECIPE.data_seed).train, seed, device)


def endless_batches(
    dataset: TensorDataset, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled batches forever, epoch after epoch (the architecture step's data in DARTS)."""
    device = dataset.tensors[0].device
    while True:
        yield from batches(dataset, batch_size, generator, device)


def discretize(alpha: torch.Tensor | np.ndarray, exclude_none: bool = True) -> nb201.Cell:
    """The cell of the strongest operation per edge (DARTS, Section 2.4: the zero operation is
    excluded, so ``exclude_none=True`` by default). ``alpha`` is (6, 5), rows in ``EDGES`` order."""
    scores = torch.as_tensor(np.asarray(alpha, dtype=np.float64)).clone()
    if tuple(scores.shape) != (NUM_EDGES, NUM_OPS):
        raise ValueError(f"alpha must have shape ({NUM_EDGES}, {NUM_OPS}), got {scores.shape}")
    if exclude_none:
        scores[:, NONE] = -torch.inf
    return nb201.Cell(tuple(OPS[int(i)] for i in scores.argmax(dim=1)))


@torch.no_grad()
def path_accuracy(
    net: Supernet, cell: nb201.Cell | str, dataset: TensorDataset, batch_size: int = 1024
) -> float:
    """The accuracy of ``cell``'s single path on ``dataset``, with shared weights: the one-shot
    estimate of how good ``cell`` is (SPOS, ENAS and the weight-sharing ranking use it)."""
    correct = 0
    x_all, y_all = dataset.tensors
    for start in range(0, len(y_all), batch_size):
        x, y = x_all[start : start + batch_size], y_all[start : start + batch_size]
        correct += int((net.path(x, cell).argmax(dim=1) == y).sum())
    return correct / len(y_all)


def weight_optimizer(net: nn.Module, lr: float, steps: int, weight_decay: float = 3e-4):
    """DARTS' weight optimiser (Section 3.1.2): SGD, momentum 0.9, weight decay 3e-4, learning
    rate annealed from ``lr`` to 0.001 on a cosine schedule over ``steps`` steps."""
    opt = torch.optim.SGD(net.parameters(), lr, momentum=0.9, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps), eta_min=1e-3)
    return opt, schedule


def supernet_step(
    net: Supernet, loss: torch.Tensor, opt: torch.optim.Optimizer, clip: float = 5.0
) -> None:
    """One weight step with DARTS' gradient clipping (norm 5)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(net.parameters(), clip)
    opt.step()


def single_path_epoch(
    net: Supernet,
    dataset: TensorDataset,
    sample: Callable[[], nb201.Cell],
    opt: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One epoch of single-path training (ENAS, SPOS): each batch trains the path of a fresh
    ``sample()`` and only its weights. Returns the mean loss."""
    net.train()
    losses = []
    for x, y in batches(dataset, batch_size, generator, dataset.tensors[0].device):
        loss = F.cross_entropy(net.path(x, sample()), y)
        supernet_step(net, loss, opt)
        schedule.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def check_epochs(value: int | None, fast: bool, full: int, quick: int, name: str = "epochs") -> int:
    """``value`` when given, else the method's default for full or fast mode (``full`` or
    ``quick``): a positive integer of epochs, generations or samples, called ``name``."""
    value = (quick if fast else full) if value is None else value
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class WallClock:
    """Times a search and prints its wall time and result: ``with WallClock("DARTS") as w: ...``
    then ``w.report(cell)``."""

    def __init__(self, name: str) -> None:
        self.name, self.start, self.seconds = name, 0.0, 0.0

    def __enter__(self) -> WallClock:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start

    def report(self, cell: nb201.Cell) -> None:
        print(f"{self.name}: {self.seconds:.1f} s wall time; found {cell}")


@dataclass(frozen=True)
class Epoch:
    """One epoch of a one-shot search: mean training loss; mean architecture loss (DARTS'
    L_val, ENAS' 1 - mean reward; nan when alpha did not move); the architecture distribution
    (6 x 5: softmax of alpha, or the ENAS controller's) and the cell it points to, None for
    methods without them (SPOS)."""

    epoch: int
    train_loss: float
    arch_loss: float
    weights: np.ndarray | None
    cell: nb201.Cell | None


class OneShotSearch:
    """What every search shares: its options, the seed, the data halves, the supernet, the
    weights' optimiser, the record of epochs and the wall time.

    Options common to every method: ``epochs`` (default: the method's ``full_epochs``, or
    ``fast_epochs`` when ``fast``), ``seed``, the supernet's width ``C`` and cells per stage
    ``N`` (the benchmark's by default), ``batch_size``, the weights' learning rate ``lr``
    (default: the method's ``default_lr``), ``device`` (CUDA when present) and ``progress``
    (the tqdm bar). All randomness comes from ``seed``: torch's generator for the initial
    weights, ``rng`` and ``generator`` for the rest."""

    name = "one-shot"
    full_epochs, fast_epochs, default_lr = 50, 8, 0.025

    def __init__(
        self,
        epochs: int | None = None,
        fast: bool = False,
        seed: int = 0,
        C: int = WIDTH,
        N: int = DEPTH,
        batch_size: int = 64,
        lr: float | None = None,
        device: torch.device | str | None = None,
        progress: bool = True,
    ) -> None:
        self.epochs = check_epochs(epochs, fast, self.full_epochs, self.fast_epochs)
        self.fast, self.seed, self.batch_size, self.progress = fast, seed, batch_size, progress
        self.lr = self.default_lr if lr is None else lr
        self.device = torch.device(device) if device is not None else default_device()
        seed_everything(seed)  # the supernet's initial weights come from torch's generator
        self.rng = as_rng(seed)
        self.generator = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
        self.data = search_data(seed, self.device)
        self.net = self.build_supernet(C, N).to(self.device)
        self.history: list[Epoch] = []
        self.seconds = 0.0

    def build_supernet(self, C: int, N: int) -> Supernet:
        return Supernet(C, N)

    def weight_optimizer(self):
        """The weights' SGD and cosine schedule (``weight_optimizer``) over all epochs."""
        steps = self.epochs * steps_per_epoch(self.data.weights, self.batch_size)
        return weight_optimizer(self.net, self.lr, steps)

    def path_epoch(self, sample: Callable[[], nb201.Cell], opt, schedule) -> float:
        """One epoch of single-path training on the weights' half (``single_path_epoch``)."""
        data, size, generator = self.data.weights, self.batch_size, self.generator
        return single_path_epoch(self.net, data, sample, opt, schedule, size, generator)

    def search(self) -> nb201.Cell:
        """Run the search (``run``), print its wall time, return the cell it found."""
        with WallClock(self.name) as clock:
            found = self.run()
        self.seconds = clock.seconds
        clock.report(found)
        return found

    def run(self) -> nb201.Cell:
        raise NotImplementedError("each method defines its search loop in run()")

    def bar(self, steps: int | None = None, desc: str | None = None):
        """A tqdm bar over ``steps`` (default: the epochs)."""
        steps = self.epochs if steps is None else steps
        return trange(steps, desc=desc or self.name, disable=not self.progress, leave=False)


# --------------------------------------------------------------------------------------------
# 4. Measuring peak memory on any device
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a while: the profiler's C++ backend (Kineto) writes its
    start/stop notices there, below Python, where ``sys.stderr`` cannot catch them, and a
    notebook would show them as warnings. Python's own errors still raise as usual."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory(fn: Callable[[], object], device: torch.device | str = "cpu") -> int:
    """Peak bytes allocated by torch while ``fn()`` runs, above what was allocated before.

    On CUDA: ``torch.cuda.max_memory_allocated``. On the CPU torch keeps no such counter, so
    the profiler records every allocation and free of torch's CPU allocator (``profile_memory``),
    and we replay them in time order: the running sum's maximum is the peak. Only tensors count
    (not Python objects or the allocator's caches), which is what a training step's activations
    and gradients are."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # Kineto's raw record: one "[memory]" event per allocation (+bytes) and free (-bytes).
    events = prof.profiler.kineto_results.events()
    changes = [
        (event.start_ns(), event.nbytes())
        for event in events
        if event.name() == "[memory]" and event.device_type() == torch.autograd.DeviceType.CPU
    ]
    changes.sort(key=lambda change: change[0])  # stable: simultaneous events keep their order
    running, peak = 0, 0
    for _, delta in changes:
        running += delta
        peak = max(peak, running)
    return int(peak)
