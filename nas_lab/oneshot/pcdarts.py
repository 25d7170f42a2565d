"""PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture Search (Xu, Xie, Zhang,
Chen, Qi, Tian & Xiong, ICLR 2020).

DARTS keeps the outputs of all 5 operations of every edge in memory for the backward pass, so
its supernet costs about 5 networks' worth of activations. PC-DARTS sends only a 1/K share of
the channels through the mixed operation; the other channels bypass it, and a channel shuffle
mixes the two parts before the next cell (eq. 2; ``supernet.MixedEdge`` with ``partial=K``):

    f_PC(x) = shuffle( [ sum_o softmax(alpha)_o * o(x[:C/K]) ,  x[C/K:] ] )           (eq. 2)

Sampling channels makes the choice of *edges* noisy, so PC-DARTS adds edge normalisation: each
edge (i, j) gets a weight beta_ij, and node j sums its inputs weighted by a softmax over the
edges that enter it (eq. 4):

    x_j = sum_{i<j} ( exp(beta_ij) / sum_{i'<j} exp(beta_i'j) ) * f_PC_ij(x_i)          (eq. 4)

The architecture parameters are frozen for a warm-up at the start, so that they are not fitted
to untrained weights (the paper: the first 15 of 50 epochs; here the same 30%). NAS-Bench-201
keeps every edge, so discretisation picks the strongest non-zero operation per edge from alpha,
as DARTS does; beta shapes the search, not the choice.

``training_step_memory`` measures what partial channels save: the peak memory of one training
step of the DARTS supernet against the PC-DARTS one at the same width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.oneshot import supernet as sn
from nas_lab.oneshot.darts import DARTS
from nas_lab.spaces import nb201

INCOMING = [[e for e, (_, j) in enumerate(sn.EDGES) if j == node] for node in range(1, 4)]


def edge_weights(beta: torch.Tensor) -> torch.Tensor:
    """eq. 4's weights: for each node, a softmax of ``beta`` over the edges that enter it.
    Returns a tensor of 6 weights in ``EDGES`` order (node 1's single edge always gets 1)."""
    if tuple(beta.shape) != (sn.NUM_EDGES,):
        raise ValueError(
            f"beta holds one weight per edge: shape ({sn.NUM_EDGES},), got {beta.shape}"
        )
    weights = torch.empty_like(beta)
    for edges in INCOMING:
        weights[edges] = F.softmax(beta[edges], dim=0)
    return weights


# The paper's CIFAR-10 search settings, as keyword arguments: ``PCDARTS(**PAPER)``. Taken from
# the authors' code, github.com/yuhuixu1993/PC-DARTS at b74702f: train_search.py ("ts.py") and
# model_search.py ("ms.py"); momentum 0.9, weight decay 3e-4 and Adam's betas (0.5, 0.999) are
# the course's too, and so are the 50 epochs (ts.py:31).
PAPER = {
    "K": 4,  # ms.py:31 "self.k = 4": a quarter of the channels through the mixture
    "warmup": 0.3,  # ts.py:156 "if epoch>=15": alpha and beta frozen for 15 of 50 epochs
    "order": 1,  # ts.py:42 --unrolled defaults to False: first order
    "lr": 0.1,  # ts.py:25 --learning_rate
    "lr_min": 0.0,  # ts.py:26 --learning_rate_min
    "arch_lr": 6e-4,  # ts.py:43 --arch_learning_rate
    "arch_weight_decay": 1e-3,  # ts.py:44 --arch_weight_decay
    "batch_size": 256,  # ts.py:24 --batch_size
}


class PCDARTS(DARTS):
    """PC-DARTS on the NAS-Bench-201 supernet: ``PCDARTS(seed=0).search()`` returns a cell.

    ``K`` is the inverse channel share (the paper's K=4: a quarter of the channels); ``warmup``
    is the share of epochs before alpha and beta start to move (the paper's 15 of 50). First
    order by default, as in the authors' code (``order=2`` works too).

    The optimisers' defaults are DARTS' (``DARTS``), not PC-DARTS' own: the paper's code
    searches with batches of 256, a weight learning rate of 0.1 annealed to 0, and alpha's
    learning rate 6e-4 (``PCDARTS(**pcdarts.PAPER)``), where the course keeps DARTS' batches of
    64, 0.025 annealed to 0.001, and its raised ``arch_lr`` of 0.01. Two reasons: lesson 06
    sets PC-DARTS beside DARTS, and with one optimiser the difference it shows is the partial
    channels and the edge weights, nothing else; and a batch of 256 cuts the digits half into
    3 steps per epoch, 105 architecture steps after the warm-up, too few for alpha to move at
    6e-4 (the paper has 98 steps per epoch, 3,430 after its warm-up)."""

    name = "PC-DARTS"
    full_epochs, fast_epochs, default_lr = 50, 8, 0.025

    def __init__(self, K: int = 4, warmup: float = 0.3, order: int = 1, **options) -> None:
        if int(K) != K or K < 1:
            raise ValueError(f"K must be a positive integer (the paper uses 4), got {K!r}")
        if not 0 <= warmup < 1:
            raise ValueError(f"warmup is a share of the epochs, in [0, 1); got {warmup!r}")
        self.K, self.warmup = int(K), float(warmup)
        super().__init__(order=order, **options)

    def build_supernet(self, C: int, N: int) -> sn.Supernet:
        for width in (C, 2 * C, 4 * C):
            if width % self.K:
                raise ValueError(f"K={self.K} must divide every stage's width; C={C} does not")
        return sn.Supernet(C, N, partial=self.K)

    def make_arch(self) -> None:
        super().make_arch()
        self.beta: nn.Parameter = self.init_arch((sn.NUM_EDGES,))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha, self.beta]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.arch_weights(), edge_weights(self.beta))

    def arch_updates(self, epoch: int) -> bool:
        return epoch >= round(self.warmup * self.epochs)


def search(seed: int = 0, fast: bool = False, **options) -> nb201.Cell:
    """Run PC-DARTS and return the cell it finds; ``options`` go to ``PCDARTS``."""
    return PCDARTS(seed=seed, fast=fast, **options).search()


def training_step_memory(
    partial: int, C: int = sn.WIDTH, N: int = sn.DEPTH, batch_size: int = 64, seed: int = 0
) -> int:
    """Peak bytes of one training step (forward and backward) of the supernet's mixture, with
    ``partial=1`` (DARTS) or ``partial=K`` (PC-DARTS), on a batch of digits.

    Measured with ``supernet.peak_memory``: on the CPU, torch's profiler records every
    allocation and free, and the peak of their running sum is taken (on CUDA, the allocator's
    own peak counter). The supernet and the batch exist before the measurement, so the number
    is what the step itself adds: activations kept for the backward pass, and gradients."""
    torch.manual_seed(seed)
    net = sn.Supernet(C, N, partial=partial)
    alpha = (1e-3 * torch.randn(sn.NUM_EDGES, sn.NUM_OPS)).requires_grad_()
    x, y = sn.search_data(seed).weights.tensors
    x, y = x[:batch_size], y[:batch_size]

    def step() -> None:
        F.cross_entropy(net(x, F.softmax(alpha, dim=-1)), y).backward()

    step()  # a first step allocates the weights' .grad tensors; they are not the step's cost
    net.zero_grad(set_to_none=False)
    return sn.peak_memory(step)
