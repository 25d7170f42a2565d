"""ProxylessNAS (Cai, Zhu & Han, "ProxylessNAS: Direct Neural Architecture Search on Target Task
and Hardware", ICLR 2019): a shared-weights search of the MBConv chain space with latency in the
loss (lesson 09, step 6).

:func:`expected_latency` is ProxylessNAS's differentiable latency, ``E[LAT] = sum_j p_j LAT_j``
per block (eq. 4), with each candidate's ``LAT_j`` read from a per-block lookup table
(:class:`~nas_lab.hardware.LatencyTable`). It is added to the loss of a
:class:`LatencyAwareSupernet` by :func:`latency_aware_search`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas_lab.hardware.lookup import BlockSpec, LatencyTable
from nas_lab.spaces.mbconv import MBConvBlock, block_slots

__all__ = ["expected_latency", "MixedBlock", "LatencyAwareSupernet", "latency_aware_search"]


def expected_latency(logits: torch.Tensor, latencies: torch.Tensor) -> torch.Tensor:
    """Cai, Zhu & Han (ProxylessNAS, ICLR 2019), eq. 4: each searchable block ``i`` picks
    candidate ``j`` with probability ``p_ij = softmax(logits_i)_j``, so its expected latency is
    ``sum_j p_ij LAT_ij`` and the network's is the sum over blocks (plus fixed ends, which do not
    depend on the choice). Differentiable in ``logits``: ``dE/dlogit_ij = p_ij (LAT_ij - E_i)``,
    so the gradient pushes probability towards the candidates faster than the block's average.

    ``logits`` and ``latencies`` are ``(blocks, candidates)`` tensors."""
    if logits.shape != latencies.shape or logits.dim() != 2:
        raise ValueError(
            "logits and latencies must both be (blocks, candidates) tensors; "
            f"got {tuple(logits.shape)} and {tuple(latencies.shape)}"
        )
    return (torch.softmax(logits, dim=-1) * latencies).sum()


class MixedBlock(nn.Module):
    """One searchable position: every candidate MBConv block, weighted by the softmax of the
    architecture logits (the continuous relaxation of DARTS, Liu et al., ICLR 2019, and FBNet)."""

    def __init__(self, candidates: Sequence[nn.Module]) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(candidates)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.candidates, strict=True))


class LatencyAwareSupernet(nn.Module):
    """A ChainNet whose every block is a :class:`MixedBlock` over ``choices`` (``(kernel,
    expansion)`` pairs), with one row of architecture logits per block. Its latency table
    ``latencies[i, j]`` is the lookup-table latency of candidate ``j`` at position ``i``."""

    def __init__(self, space, choices: Sequence[tuple[int, int]], table: LatencyTable) -> None:
        super().__init__()
        stem, head, widths = space.scaled_widths(1.0)
        depth = max(space.depths)
        probe = space.build(space.sample(0))
        self.stem, self.head = probe.stem, probe.head
        self.pool, self.classifier = probe.pool, probe.classifier
        self.choices = [tuple(c) for c in choices]
        blocks, rows = [], []
        for slot in block_slots(stem, widths, space.strides, [depth] * len(widths), side=8):
            c_in, width, s = slot.c_in, slot.c_out, slot.stride
            specs = [BlockSpec(c_in, width, k, e, s, slot.side) for k, e in self.choices]
            blocks.append(MixedBlock([MBConvBlock(c_in, width, k, e, s) for k, e in choices]))
            rows.append([table.block(spec) for spec in specs])
        self.blocks = nn.ModuleList(blocks)
        self.register_buffer("latencies", torch.tensor(rows, dtype=torch.float32))
        self.arch_logits = nn.Parameter(torch.zeros(len(blocks), len(self.choices)))
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.arch_logits, dim=-1)
        x = self.stem(x)
        for block, w in zip(self.blocks, weights, strict=True):
            x = block(x, w)
        return self.classifier(self.pool(self.head(x)).flatten(1))

    def expected_latency(self) -> torch.Tensor:
        return expected_latency(self.arch_logits, self.latencies)

    def derived(self) -> list[tuple[int, int]]:
        """The most likely candidate of each block, as ProxylessNAS derives the final network."""
        return [self.choices[int(j)] for j in self.arch_logits.argmax(dim=-1)]


def latency_aware_search(
    space,
    splits,
    table: LatencyTable,
    choices: Sequence[tuple[int, int]],
    latency_weight: float,
    epochs: int = 4,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> dict:
    """Train a :class:`LatencyAwareSupernet` on ``loss = CE + latency_weight * E[LAT] / LAT_0``
    (ProxylessNAS, Section 3.3; ``LAT_0`` is the expected latency of the uniform distribution,
    so ``latency_weight`` is unit-free). Weights (SGD) and architecture logits (Adam) are updated
    together on each training batch, a one-level simplification of the paper's alternating
    updates. Returns the derived blocks, their probabilities and the expected latency."""
    from nas_lab.device import default_device
    from nas_lab.train import batches, evaluate, seed_everything

    seed_everything(seed)
    device = torch.device(device) if device is not None else default_device()
    net = LatencyAwareSupernet(space, choices, table).to(device)
    reference = float(net.expected_latency().detach())
    weights = [p for n, p in net.named_parameters() if n != "arch_logits"]
    opt_w = torch.optim.SGD(weights, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    opt_a = torch.optim.Adam([net.arch_logits], lr=0.05)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for x, y in batches(splits.train, batch_size, generator, device):
            loss = nn.functional.cross_entropy(net(x), y)
            loss = loss + latency_weight * net.expected_latency() / reference
            opt_w.zero_grad()
            opt_a.zero_grad()
            loss.backward()
            opt_w.step()
            opt_a.step()
    probs = torch.softmax(net.arch_logits.detach(), dim=-1).cpu().numpy()
    expected = float(net.expected_latency().detach())
    return {
        "derived": net.derived(),
        "probs": probs,
        "expected_latency_ms": expected + table.ends.get("default", 0.0),
        "uniform_latency_ms": reference + table.ends.get("default", 0.0),
        "supernet_val_acc": evaluate(net, splits.val, device=device),
    }
