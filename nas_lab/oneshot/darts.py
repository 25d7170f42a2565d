"""DARTS: Differentiable Architecture Search (Liu, Simonyan & Yang, ICLR 2019).

Relax the choice of an operation on each edge into a softmax over all of them (eq. 2; the
supernet's ``MixedEdge``), with one vector alpha of architecture parameters per edge, so that the
architecture can be learned by gradient descent. Architecture and weights make a bi-level
problem (eq. 3-4):

    min_alpha  L_val(w*(alpha), alpha)    s.t.   w*(alpha) = argmin_w L_train(w, alpha)

Training w to convergence for every alpha step is out of the question; DARTS replaces w* by a
single gradient step from the current w (eq. 5-6):

    w' = w - xi * grad_w L_train(w, alpha)                                              (eq. 6)
    d/d alpha L_val(w', alpha) = grad_alpha L_val(w', alpha)
                                 - xi * grad2_{alpha,w} L_train(w, alpha) . grad_w' L_val(w', alpha)
                                                                                          (eq. 7)

The second term holds a Hessian-vector product, which DARTS approximates by a central finite
difference along v = grad_w' L_val(w', alpha), with w+- = w +- eps * v (eq. 8):

    grad2_{alpha,w} L_train(w, alpha) . v  ~  ( grad_alpha L_train(w+, alpha)
                                              - grad_alpha L_train(w-, alpha) ) / (2 eps)

and eps = 0.01 / ||v||. With xi = 0 the second term vanishes: the *first-order* approximation,
cheaper and, in the paper, somewhat worse (Table 1). The search alternates one architecture
step (Adam on alpha, on a batch of the "validation" half) and one weight step (SGD on w, on a
batch of the "training" half); at the end each edge keeps its strongest non-zero operation
(Section 2.4; ``supernet.discretize``).

``DARTS`` below is also the base of ``GDAS`` and ``PCDARTS``: they change how the supernet is
run (``logits``) and which parameters are architecture parameters, not the loop.

On NAS-Bench-201 DARTS is known to fail: its cells fill up with skip connections (Dong & Yang,
ICLR 2020, Table 5: 54.30% on CIFAR-10, both orders). ``history`` records alpha after every
epoch, so the collapse can be watched as it happens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.oneshot import supernet as sn
from nas_lab.spaces import nb201
from nas_lab.train import batches

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[Batch], torch.Tensor]

# --------------------------------------------------------------------------------------------
# 1. The architecture gradient: first order, and second order with eq. 8's finite difference
# --------------------------------------------------------------------------------------------


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """d loss / d params, with zeros for parameters the loss does not use."""
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


@torch.no_grad()
def _add_(params: Sequence[torch.Tensor], vectors: Sequence[torch.Tensor], scale: float) -> None:
    """params += scale * vectors, in place."""
    for p, v in zip(params, vectors, strict=True):
        p.add_(v, alpha=scale)


@torch.no_grad()
def _restore_(params: Sequence[torch.Tensor], saved: Sequence[torch.Tensor]) -> None:
    """params = saved, in place: undo the moves to w', w+ and w- exactly (no rounding drift)."""
    for p, p0 in zip(params, saved, strict=True):
        p.copy_(p0)


def first_order_grad(arch: Sequence[torch.Tensor], loss_fn: LossFn, val: Batch):
    """grad_alpha L_val(w, alpha): eq. 7 with xi = 0. Returns (gradients, L_val)."""
    loss = loss_fn(val)
    return _grads(loss, arch), loss.detach()


def second_order_grad(
    weights: Sequence[torch.Tensor],
    arch: Sequence[torch.Tensor],
    loss_fn: LossFn,
    train: Batch,
    val: Batch,
    xi: float,
    eps: float = 0.01,
):
    """eq. 7 with the Hessian-vector product of eq. 8. ``loss_fn(batch)`` computes the loss
    with the current ``weights`` w and architecture parameters ``arch`` (alpha). The weights are
    moved to w', w+ and w- in turn and restored exactly; returns (gradients, L_val(w')).

    A caveat the paper does not dwell on: with ReLUs, grad_alpha L_train is only piecewise
    smooth in w, and a step of 0.01 in norm can cross kinks, so eq. 8 is a noisy estimate of the
    Hessian-vector product (the tests check it in the limit of small ``eps``)."""
    original = [w.detach().clone() for w in weights]
    # eq. 6: one virtual SGD step on the training loss, w' = w - xi * grad_w L_train(w, alpha).
    _add_(weights, _grads(loss_fn(train), weights), -xi)
    # At w': the first term of eq. 7, and v = grad_w' L_val(w', alpha).
    val_loss = loss_fn(val)
    grads = _grads(val_loss, [*arch, *weights])
    d_arch, v = grads[: len(arch)], grads[len(arch) :]
    norm = torch.sqrt(sum((g * g).sum() for g in v))
    r = eps / float(norm) if float(norm) > 0 else 0.0  # eps of eq. 8, relative to ||v||
    _restore_(weights, original)
    if r == 0.0:  # v = 0: the second term of eq. 7 is zero
        return d_arch, val_loss.detach()
    # eq. 8: grad_alpha L_train at w+ = w + r v and at w- = w - r v.
    _add_(weights, v, r)
    plus = _grads(loss_fn(train), arch)
    _add_(weights, v, -2 * r)
    minus = _grads(loss_fn(train), arch)
    _restore_(weights, original)
    hessian_v = [(p - m) / (2 * r) for p, m in zip(plus, minus, strict=True)]
    return [d - xi * h for d, h in zip(d_arch, hessian_v, strict=True)], val_loss.detach()


# --------------------------------------------------------------------------------------------
# 2. The search
# --------------------------------------------------------------------------------------------

# The paper's search settings on CIFAR-10, as keyword arguments: ``DARTS(**PAPER)``. What the
# course already shares with the paper (momentum 0.9, weight decay 3e-4, clipping at 5, Adam's
# betas (0.5, 0.999), 50 epochs) is fixed or the default; ``order`` is left to the caller, as
# the paper reports both. Sources: Liu et al., ICLR 2019, Appendix A.1.1 ("A.1.1"), and the
# authors' code, github.com/quark0/darts at f276dd3, cnn/train_search.py ("ts.py").
PAPER = {
    "arch_lr": 3e-4,  # A.1.1 "eta_alpha = 3e-4"; ts.py:42 --arch_learning_rate
    "arch_weight_decay": 1e-3,  # A.1.1; ts.py:43 --arch_weight_decay
    "lr": 0.025,  # A.1.1 "eta_w = 0.025"; ts.py:24 --learning_rate
    "lr_min": 0.001,  # ts.py:25 --learning_rate_min (A.1.1 says "annealed down to zero")
    "batch_size": 64,  # A.1.1 "batch size 64"; ts.py:23 --batch_size
}


class DARTS(sn.OneShotSearch):
    """DARTS on the NAS-Bench-201 supernet. ``DARTS(order=2, seed=0).search()`` returns a cell.

    Defaults follow the paper (Appendix A.1.1) and its code (``quark0/darts``, ``cnn/
    train_search.py``): weights by SGD (momentum 0.9, learning rate 0.025 cosine-annealed to
    ``lr_min`` = 0.001, weight decay 3e-4, gradient norm clipped at 5, batches of 64); alpha by
    Adam (betas 0.5, 0.999; weight decay 1e-3), initialised at 1e-3 times a standard normal; xi
    equal to the current weight learning rate. ``DARTS(**darts.PAPER)`` takes all of the
    paper's values. One default differs: alpha's learning rate ``arch_lr``, 0.01 here and 3e-4
    in the paper. The paper takes ~19,500 steps (50 epochs of 25,000 CIFAR-10 images in batches
    of 64, 391 a epoch); our halves of digits give 9 steps per epoch, 450 in all, so alpha's
    learning rate is raised for alpha to travel a comparable distance (lr times steps: 4.5
    here, 5.9 in the paper). ``fast`` shortens the search (fewer epochs), nothing else; the
    other options (``epochs``, ``seed``, ``C``, ``N``, ``batch_size``, ``lr``, ``device``,
    ``progress``) are ``supernet.OneShotSearch``'s.
    """

    name = "DARTS"
    full_epochs, fast_epochs, default_lr = 50, 8, 0.025

    def __init__(
        self,
        order: int = 2,
        arch_lr: float = 0.01,
        arch_weight_decay: float = 1e-3,
        lr_min: float = 1e-3,
        **options,
    ) -> None:
        if order not in (1, 2):
            raise ValueError(
                f"order must be 1 (first-order) or 2 (second-order, eq. 7-8); got {order!r}"
            )
        if not lr_min >= 0:
            raise ValueError(f"lr_min is the cosine schedule's floor, >= 0; got {lr_min!r}")
        self.order, self.lr_min = order, lr_min
        super().__init__(**options)
        self.make_arch()
        self.arch_optimizer = torch.optim.Adam(
            self.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999), weight_decay=arch_weight_decay
        )

    # -- what GDAS and PC-DARTS change ------------------------------------------------------

    def make_arch(self) -> None:
        """Create the architecture parameters: alpha, one row of 5 per edge."""
        self.alpha = self.init_arch((sn.NUM_EDGES, sn.NUM_OPS))

    def init_arch(self, shape: tuple[int, ...]) -> nn.Parameter:
        """1e-3 * N(0, 1), as in the paper's code: all operations start almost equal."""
        noise = torch.randn(shape, generator=self.generator, dtype=torch.float32)
        return nn.Parameter(1e-3 * noise.to(self.device))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def arch_weights(self) -> torch.Tensor:
        """The mixture weights per edge: softmax over the 5 operations (eq. 2)."""
        return F.softmax(self.alpha, dim=-1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.arch_weights())

    def cell(self) -> nb201.Cell:
        """The discretised cell: the strongest non-zero operation per edge."""
        return sn.discretize(self.alpha.detach().cpu())

    # -- the loop ---------------------------------------------------------------------------

    def loss(self, batch: Batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.logits(x), y)

    def arch_step(self, train: Batch, val: Batch, xi: float) -> float:
        """One Adam step on alpha along eq. 7 (second order) or its first-order version."""
        arch = self.arch_parameters()
        if self.order == 2:
            weights = [p for p in self.net.parameters()]
            grads, val_loss = second_order_grad(weights, arch, self.loss, train, val, xi)
        else:
            grads, val_loss = first_order_grad(arch, self.loss, val)
        for p, g in zip(arch, grads, strict=True):
            p.grad = g
        self.arch_optimizer.step()
        return float(val_loss)

    def weight_step(self, batch: Batch, opt: torch.optim.Optimizer) -> float:
        """One SGD step on the supernet's weights, alpha fixed."""
        loss = self.loss(batch)
        sn.supernet_step(self.net, loss, opt)
        for p in self.arch_parameters():
            p.grad = None  # the weight step's gradient on alpha is not alpha's update
        return float(loss.detach())

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch (0-based): GDAS lowers its temperature here."""

    def weight_optimizer(self):
        """The weights' SGD and cosine schedule, annealed to ``lr_min`` (DARTS' 0.001 unless
        told otherwise; PC-DARTS' code anneals to 0)."""
        opt, schedule = super().weight_optimizer()
        schedule.eta_min = self.lr_min  # read at every step; the first lr is the base lr
        return opt, schedule

    def arch_updates(self, epoch: int) -> bool:
        """Whether alpha is updated in ``epoch`` (0-based); PC-DARTS warms up first."""
        return True

    def run(self) -> nb201.Cell:
        """Alternate architecture and weight steps for ``epochs`` epochs; the discretised cell."""
        opt, schedule = self.weight_optimizer()
        val_batches = sn.endless_batches(self.data.arch, self.batch_size, self.generator)
        bar = self.bar()
        self.net.train()
        for epoch in bar:
            self.start_epoch(epoch)
            train_losses, arch_losses = [], []
            for train in batches(self.data.weights, self.batch_size, self.generator, self.device):
                if self.arch_updates(epoch):
                    xi = schedule.get_last_lr()[0]  # xi = the weights' learning rate
                    arch_losses.append(self.arch_step(train, next(val_batches), xi))
                train_losses.append(self.weight_step(train, opt))
                schedule.step()
            self.history.append(self.record(epoch, train_losses, arch_losses))
            bar.set_postfix(loss=f"{np.mean(train_losses):.3f}", cell=self.short_cell())
        return self.cell()

    def record(self, epoch: int, train_losses: list[float], arch_losses: list[float]) -> sn.Epoch:
        return sn.Epoch(
            epoch=epoch + 1,
            train_loss=float(np.mean(train_losses)),
            arch_loss=float(np.mean(arch_losses)) if arch_losses else float("nan"),
            weights=self.arch_weights().detach().cpu().numpy().copy(),
            cell=self.cell(),
        )

    def short_cell(self) -> str:
        """The current cell in brief, for the progress bar: one letter per edge."""
        letter = {"none": "0", "skip_connect": "s", "nor_conv_1x1": "1", "nor_conv_3x3": "3"}
        return "".join(letter.get(op, "p") for op in self.cell().ops)


def search(order: int = 2, seed: int = 0, fast: bool = False, **options) -> nb201.Cell:
    """Run DARTS (first- or second-order) and return the cell it finds; ``options`` go to
    ``DARTS`` (epochs, arch_lr, progress, ...)."""
    return DARTS(order=order, seed=seed, fast=fast, **options).search()


# --------------------------------------------------------------------------------------------
# 3. Watching the collapse, and stopping before it
# --------------------------------------------------------------------------------------------


def operation_weights(history: Sequence[sn.Epoch]) -> np.ndarray:
    """(epochs, 5): each operation's softmax weight, averaged over the 6 edges, after every
    epoch of a search (``DARTS.history``): how the operations' shares move as alpha learns."""
    rows = [epoch.weights for epoch in history if epoch.weights is not None]
    if not rows:
        raise ValueError("the history holds no architecture weights: run a DARTS-family search")
    return np.stack([w.mean(axis=0) for w in rows])


def early_stop(cells: Sequence[nb201.Cell | str], max_skips: int = 2) -> int:
    """DARTS+'s first stopping rule (Liang et al., arXiv:1909.06035, 2019, Section 3.2): stop
    the search at the first epoch whose discretised cell holds ``max_skips`` or more skip
    connections, and keep that epoch's cell. ``cells`` is the discretised cell after each epoch
    (``[e.cell for e in DARTS.history]``); returns the index of the epoch to keep (the last one
    when the rule never fires)."""
    if max_skips < 1:
        raise ValueError(f"max_skips must be at least 1, got {max_skips!r}")
    if not cells:
        raise ValueError("no epochs to stop in: pass the discretised cell of each epoch")
    for index, cell in enumerate(cells):
        if nb201.as_cell(cell).ops.count("skip_connect") >= max_skips:
            return index
    return len(cells) - 1
