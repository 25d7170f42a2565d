"""The NAS-Bench-201 network: the cell as a PyTorch module, stacked in the benchmark's skeleton.

Dong & Yang, ICLR 2020, Section 2.1 and Figure 1: a stem convolution, three stages of ``N`` cells
with ``C``, ``2C`` and ``4C`` channels joined by residual reduction blocks, global pooling and a
linear classifier. Each edge operation is the benchmark's own (``ReLUConvBN`` for the
convolutions), and a node sums its incoming edges.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas_lab.cost import count_flops, count_params
from nas_lab.spaces.nb201.cell import (
    NUM_NODES,
    Cell,
    _unknown_op_message,
    active_edges,
    as_cell,
)


class ReLUConvBN(nn.Sequential):
    """NAS-Bench-201's ``nor_conv_kxk``: ReLU, k x k convolution (no bias), BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(c_out, affine=True),
        )


def make_op(op: str, channels: int) -> nn.Module:
    """The module for one edge operation (``none`` has none: it is skipped, not computed)."""
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if op == "none":
        raise ValueError("`none` edges carry no module: the cell skips them")
    raise ValueError(_unknown_op_message("make_op", op))


def _edge_key(source: int, target: int) -> str:
    return f"{source}->{target}"


class CellModule(nn.Module):
    """One NAS-Bench-201 cell at ``C`` channels: node_j = sum_{i<j} op_ij(node_i).

    Only ``active_edges`` are built and run, so a cell's parameters and FLOPs are what it
    actually computes. A cell whose output receives nothing returns zeros."""

    def __init__(self, cell: Cell | str, C: int) -> None:
        super().__init__()
        self.cell = as_cell(cell)
        self.edges = nn.ModuleDict(
            {_edge_key(i, j): make_op(self.cell.op(i, j), C) for i, j in active_edges(self.cell)}
        )
        # For each node 1..3: the sources whose edges feed it.
        self.plan = [
            (j, [i for i, t in active_edges(self.cell) if t == j]) for j in range(1, NUM_NODES)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: dict[int, torch.Tensor] = {0: x}
        for target, sources in self.plan:
            if sources:
                out = self.edges[_edge_key(sources[0], target)](nodes[sources[0]])
                for source in sources[1:]:
                    out = out + self.edges[_edge_key(source, target)](nodes[source])
                nodes[target] = out
        return nodes.get(NUM_NODES - 1, torch.zeros_like(x))


class ResidualReduction(nn.Module):
    """NAS-Bench-201's reduction block, a ResNet basic block (He et al., CVPR 2016) with
    stride 2: ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN, plus a shortcut AvgPool2d(2) and
    Conv1x1 that match the new size and width."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class CellNet(nn.Module):
    """NAS-Bench-201's macro skeleton (Dong & Yang 2020, Figure 1), sized for 8x8 digits:

    stem (Conv3x3 + BN) -> N cells at C -> reduction to 2C -> N cells at 2C -> reduction to 4C
    -> N cells at 4C -> BN-ReLU -> global average pool -> linear.

    NAS-Bench-201 uses C=16, N=5 on 32x32 images; C=8, N=1 keeps an 8x8 input (8 -> 4 -> 2)
    trainable in well under a second per 1,000 images on a CPU."""

    def __init__(
        self,
        cell: Cell | str,
        C: int = 8,
        N: int = 1,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        for name, value in (("C", C), ("N", N), ("num_classes", num_classes)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if int(in_channels) < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels}")
        self.cell = as_cell(cell)
        self.in_channels = in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        layers: list[nn.Module] = []
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResidualReduction(width // 2, width))
            layers.extend(CellModule(self.cell, width) for _ in range(N))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"CellNet expects images of shape (batch, {self.in_channels}, height, width), "
                f"got {tuple(x.shape)}; add a channel dimension with x.unsqueeze(1) if needed"
            )
        features = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.pool(features).flatten(1))


def build_network(
    cell: Cell | str, device: torch.device | str | None = None, **kwargs: int
) -> CellNet:
    """A ``CellNet`` for ``cell`` (keyword arguments as ``CellNet``), moved to ``device``."""
    net = CellNet(cell, **kwargs)
    return net.to(device) if device is not None else net


def params_and_flops(
    cell: Cell | str, C: int = 8, N: int = 1, input_shape: Sequence[int] = (1, 1, 8, 8)
) -> tuple[int, int]:
    """Trainable parameters and forward FLOPs of ``CellNet(cell, C, N)`` on ``input_shape``.

    FLOPs come from ``torch.utils.flop_counter`` (via ``nas_lab.cost``), which counts matrix
    products only: convolutions (2 * k*k * C_in * C_out * H_out * W_out per image) and the
    linear layer (2 * in * out; its bias add is not counted). BatchNorm, ReLU, pooling and the
    additions at the nodes are not counted. Parameters include BatchNorm's weight and bias but
    not its running statistics (buffers)."""
    if len(input_shape) != 4:
        raise ValueError(f"input_shape must be (batch, channels, height, width), got {input_shape}")
    net = CellNet(cell, C=C, N=N, in_channels=int(input_shape[1]))
    return count_params(net), count_flops(net, input_shape)
