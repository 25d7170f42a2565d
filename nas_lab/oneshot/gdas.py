"""GDAS: Gradient-based search using Differentiable Architecture Sampler (Dong & Yang, "Searching
for a Robust Neural Architecture in Four GPU Hours", CVPR 2019).

DARTS runs all 5 operations on every edge at every step and lets their weights compete. GDAS
instead *samples* one operation per edge, so each step trains and runs a single path, like the
final network, and costs a fifth as much. The sample is made differentiable in alpha:

- Gumbel-max (eq. 3): with g_o ~ Gumbel(0, 1) drawn independently for each operation o,

      h = one_hot( argmax_o ( log p_o + g_o ) ),     p = softmax(alpha)

  draws operation o with probability exactly p_o;
- its relaxation (eq. 5), the Gumbel-softmax with temperature tau (Jang, Gu & Poole, ICLR 2017;
  Maddison, Mnih & Teh, ICLR 2017):

      h~_o = exp((log p_o + g_o) / tau) / sum_o' exp((log p_o' + g_o') / tau)

- the forward pass uses the hard h, the backward pass the gradient of the soft h~ (the
  straight-through estimator, Bengio, Leonard & Courville 2013): h_st = h - stop_grad(h~) + h~,
  whose value is h and whose gradient is that of h~. So the edge computes h_st[o*] * o*(x) for
  the sampled o* alone: exactly one operation runs per edge, and its output still carries a
  gradient to every alpha_o through h~.

tau falls linearly from 10 to 0.1 over the search (the setting of NAS-Bench-201's GDAS runs,
Dong & Yang, ICLR 2020). The loop, optimisers and discretisation are DARTS' (first order):
one Adam step on alpha with a fresh sample on the "validation" half, one SGD step on the
weights with another sample on the "training" half.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nas_lab.device import model_device
from nas_lab.oneshot.darts import DARTS
from nas_lab.spaces import nb201


def gumbel_softmax_sample(
    alpha: torch.Tensor, tau: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One hard sample per row of ``alpha`` (edges x operations), as GDAS' eq. 3 and 5.

    Returns (index, h_st): the sampled operation of each edge, and the straight-through weights
    h - h~.detach() + h~ whose value is the one-hot h and whose gradient is the soft h~'s."""
    if not tau > 0:
        raise ValueError(f"the temperature tau must be positive, got {tau!r}")
    log_p = F.log_softmax(alpha, dim=-1)
    while True:  # -log(E) with E ~ Exp(1) is Gumbel(0, 1); redraw in the rare case E = 0
        noise = torch.empty(alpha.shape, dtype=alpha.dtype).exponential_(generator=generator)
        gumbel = -noise.log().to(alpha.device)
        soft = F.softmax((log_p + gumbel) / tau, dim=-1)
        if torch.isfinite(soft).all():
            break
    index = soft.argmax(dim=-1)  # = argmax(log p + g): the Gumbel-max sample
    hard = torch.zeros_like(soft).scatter_(-1, index.unsqueeze(-1), 1.0)
    return index, hard - soft.detach() + soft


class GDAS(DARTS):
    """GDAS on the NAS-Bench-201 supernet: ``GDAS(seed=0).search()`` returns a cell.

    ``tau_max`` and ``tau_min`` bound the linear temperature schedule; the rest is ``DARTS``'
    (first order: a sampled forward pass cannot be unrolled consistently)."""

    name = "GDAS"
    full_epochs, fast_epochs, default_lr = 200, 30, 0.025

    def __init__(self, tau_max: float = 10.0, tau_min: float = 0.1, **options) -> None:
        if options.pop("order", 1) != 1:
            raise ValueError("GDAS updates alpha with the first-order gradient only (order=1)")
        if not tau_max >= tau_min > 0:
            raise ValueError(f"need tau_max >= tau_min > 0, got {tau_max} and {tau_min}")
        self.tau_max, self.tau_min = float(tau_max), float(tau_min)
        self.tau = self.tau_max
        super().__init__(order=1, **options)

    def start_epoch(self, epoch: int) -> None:
        """tau from tau_max at the first epoch down to tau_min at the last, linearly."""
        progress = epoch / max(1, self.epochs - 1)
        self.tau = self.tau_max - (self.tau_max - self.tau_min) * progress

    def sample(self) -> tuple[list[int], torch.Tensor]:
        """The sampled operation of each edge and its straight-through weight (value 1)."""
        index, h_st = gumbel_softmax_sample(self.alpha, self.tau, self.generator)
        gates = h_st.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        return index.tolist(), gates

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """One sampled forward pass; ``x`` is moved to the supernet's device (a batch made on
        the CPU runs on a supernet built on the GPU)."""
        ops, gates = self.sample()
        return self.net.gated(x.to(model_device(self.net)), ops, gates)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of one sampled forward pass, the labels on the logits' device."""
        x, y = batch
        logits = self.logits(x)
        return F.cross_entropy(logits, y.to(logits.device))


def search(seed: int = 0, fast: bool = False, **options) -> nb201.Cell:
    """Run GDAS and return the cell it finds; ``options`` go to ``GDAS``."""
    return GDAS(seed=seed, fast=fast, **options).search()
