"""Once-for-All's elastic supernet: one network whose kernel, width and depth can all shrink.

After Cai, Gan, Wang, Zhang & Han, "Once-for-All: Train One Network and Specialize it for
Efficient Deployment", ICLR 2020, Section 3.3:

1. **Elastic kernel**: each depthwise layer keeps one 7x7 kernel. The 5x5 kernel is its centre,
   passed through a learned 25x25 *kernel transformation matrix*; the 3x3 kernel is the centre of
   that 5x5 kernel through a learned 9x9 matrix. The matrices are shared by all channels of a
   layer and start as the identity, so at first a smaller kernel is the centre crop.
2. **Elastic width**: a block with expansion ``e`` uses the first ``c_in * e`` of its hidden
   channels. Before width is shrunk, the channels are sorted by importance, the L1 norm of their
   weights in the projection convolution, so the first ones are the important ones.
3. **Elastic depth**: a stage of depth ``D`` runs its first ``D`` blocks.

The architectures are those of :class:`~nas_lab.spaces.mbconv.ChainSpace` (kernel 3/5/7,
expansion 3/4/6, depth 2/3/4 per stage); a subnet is a :class:`~nas_lab.spaces.mbconv.ChainArch`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.spaces.mbconv import ChainArch, ChainSpace, Stage, block_slots

# ---------------------------------------------------------------------------------------------
# 1. Elastic kernel: kernel transformation matrices
# ---------------------------------------------------------------------------------------------


def centre_crop(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    """The centre ``kernel x kernel`` window of a ``(C, 1, K, K)`` depthwise weight."""
    big = weight.shape[-1]
    if kernel > big or (big - kernel) % 2:
        raise ValueError(f"cannot crop a {kernel}x{kernel} centre out of a {big}x{big} kernel")
    start = (big - kernel) // 2
    return weight[..., start : start + kernel, start : start + kernel]


def transform_kernel(weight: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """One step of OFA's elastic kernel (Cai et al., ICLR 2020, Section 3.3, Figure 4).

    ``weight`` is a ``(C, 1, K, K)`` depthwise kernel and ``matrix`` a ``(k*k, k*k)``
    transformation matrix. Each channel's centre ``k x k`` window, flattened to a row vector
    ``w``, becomes ``w M^T`` (``F.linear(w, M)``, as in the authors' code). With ``M = I`` this
    is the plain centre crop.
    """
    if weight.dim() != 4 or weight.shape[1] != 1 or weight.shape[2] != weight.shape[3]:
        raise ValueError(
            f"expected a depthwise weight of shape (C, 1, K, K), got {tuple(weight.shape)}"
        )
    kernel = math.isqrt(matrix.shape[0])
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1] or kernel * kernel != len(matrix):
        raise ValueError(f"expected a (k*k, k*k) matrix, got shape {tuple(matrix.shape)}")
    crop = centre_crop(weight, kernel)
    flat = F.linear(crop.reshape(-1, kernel * kernel), matrix)
    return flat.reshape(weight.shape[0], 1, kernel, kernel)


# ---------------------------------------------------------------------------------------------
# 2. Elastic width: channels sorted by importance
# ---------------------------------------------------------------------------------------------


def channel_order(project_weight: torch.Tensor) -> torch.Tensor:
    """Hidden channels from most to least important (Cai et al., ICLR 2020, Section 3.3).

    ``project_weight`` is the ``(c_out, hidden, 1, 1)`` weight of a block's projection; channel
    ``j``'s importance is the L1 norm ``sum_i |W[i, j]|`` of the weights that read it. Ties keep
    their order (a stable sort), so the result is deterministic."""
    if project_weight.dim() != 4:
        raise ValueError(
            f"expected a (c_out, hidden, 1, 1) projection weight, got {tuple(project_weight.shape)}"
        )
    importance = project_weight.detach().abs().sum(dim=(0, 2, 3))
    return torch.sort(importance, descending=True, stable=True).indices


def _conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act=True):
    """Conv -> BatchNorm -> ReLU6, laid out as ``mbconv._conv_bn`` so weights copy across."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


def _sliced_bn(x: torch.Tensor, bn: nn.BatchNorm2d, channels: int, training: bool):
    """BatchNorm on the first ``channels`` channels: the running statistics are updated in
    place through the slices (views), so each width trains its own prefix of them."""
    return F.batch_norm(
        x,
        bn.running_mean[:channels],
        bn.running_var[:channels],
        bn.weight[:channels],
        bn.bias[:channels],
        training,
        bn.momentum,
        bn.eps,
    )


class ElasticMBConv(nn.Module):
    """An MBConv block (Sandler et al., CVPR 2018) with elastic kernel and expansion.

    It holds the largest block (kernel ``max(kernels)``, expansion ``max(expansions)``) and runs
    the one chosen by :attr:`active`, a ``(kernel, expansion)`` pair, with the first
    ``c_in * expansion`` hidden channels and the kernel from :meth:`kernel_weight`.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        kernels: Sequence[int] = (3, 5, 7),
        expansions: Sequence[int] = (3, 4, 6),
    ) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.kernels, self.expansions = tuple(sorted(kernels)), tuple(sorted(expansions))
        big, hidden = self.kernels[-1], c_in * self.expansions[-1]
        self.expand = _conv_bn_act(c_in, hidden, 1)
        self.depthwise = _conv_bn_act(hidden, hidden, big, stride, groups=hidden)
        self.project = _conv_bn_act(hidden, c_out, 1, act=False)  # the linear bottleneck
        # One matrix per step down (7 -> 5: 25x25, 5 -> 3: 9x9), identity at the start.
        self.transforms = nn.ParameterDict(
            {f"{a}to{b}": nn.Parameter(torch.eye(b * b)) for a, b in self.kernel_steps()}
        )
        self.use_residual = stride == 1 and c_in == c_out
        self.active = (big, self.expansions[-1])

    def kernel_steps(self) -> list[tuple[int, int]]:
        """The steps down from the biggest kernel, e.g. ``[(7, 5), (5, 3)]``."""
        ks = self.kernels
        return list(zip(ks[:0:-1], ks[-2::-1], strict=True))

    def kernel_weight(self, kernel: int, channels: int | None = None) -> torch.Tensor:
        """The ``kernel x kernel`` depthwise weight of the first ``channels`` channels: the big
        kernel transformed step by step (7 -> 5 -> 3) down to the asked size."""
        if kernel not in self.kernels:
            raise ValueError(f"kernel {kernel} is not one of this block's {self.kernels}")
        weight = self.depthwise[0].weight[:channels]
        for a, b in self.kernel_steps():
            if a == kernel:
                break
            weight = transform_kernel(weight, self.transforms[f"{a}to{b}"])
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, expansion = self.active
        hidden = self.c_in * expansion
        out = F.conv2d(x, self.expand[0].weight[:hidden])
        out = F.relu6(_sliced_bn(out, self.expand[1], hidden, self.training))
        weight = self.kernel_weight(kernel, hidden)
        out = F.conv2d(out, weight, None, self.stride, kernel // 2, groups=hidden)
        out = F.relu6(_sliced_bn(out, self.depthwise[1], hidden, self.training))
        out = F.conv2d(out, self.project[0].weight[:, :hidden])
        out = self.project[1](out)
        return x + out if self.use_residual else out

    @torch.no_grad()
    def permute_channels(self, order: torch.Tensor) -> None:
        """Renumber the hidden channels: new channel ``i`` is old channel ``order[i]``, everywhere
        it appears (expand conv and BN, depthwise conv and BN, the projection's input). The
        matrices are shared by all channels, so at full width the function does not change."""
        order = torch.as_tensor(order, dtype=torch.long)
        if sorted(order.tolist()) != list(range(self.depthwise[0].out_channels)):
            raise ValueError("order must be a permutation of the hidden channels")
        self.expand[0].weight.copy_(self.expand[0].weight[order])
        self.depthwise[0].weight.copy_(self.depthwise[0].weight[order])
        for bn in (self.expand[1], self.depthwise[1]):
            for name in ("weight", "bias", "running_mean", "running_var"):
                tensor = getattr(bn, name)
                tensor.copy_(tensor[order])
        self.project[0].weight.copy_(self.project[0].weight[:, order])

    def sort_channels(self) -> torch.Tensor:
        """Sort the hidden channels by :func:`channel_order` (most important first), so that a
        narrower width keeps the most important ones. Returns the order used."""
        order = channel_order(self.project[0].weight)
        self.permute_channels(order)
        return order


# ---------------------------------------------------------------------------------------------
# 3. Elastic depth: the supernet
# ---------------------------------------------------------------------------------------------


def extreme_arch(space: ChainSpace, pick: Callable = max) -> ChainArch:
    """The subnet with every choice at ``pick`` (``max``: the largest, ``min``: the smallest)."""
    depth = pick(space.depths)
    stage = Stage((pick(space.kernels),) * depth, (pick(space.expansions),) * depth)
    return ChainArch((stage,) * space.num_stages)


class OFASupernet(nn.Module):
    """The elastic network of a :class:`ChainSpace`: stem, stages of ``max(depths)``
    :class:`ElasticMBConv` blocks, head. :meth:`set_active` picks a subnet (a ChainArch); a stage
    of depth ``d`` runs its first ``d`` blocks (elastic depth)."""

    def __init__(self, space: ChainSpace | None = None) -> None:
        super().__init__()
        space = ChainSpace() if space is None else space
        if space.se_ratio or space.activation != "relu6" or space.stem_stride != 1:
            raise ValueError(
                "OFASupernet supports the plain MobileNetV2 block: build the ChainSpace with "
                "activation='relu6', se_ratio=0 and stem_stride=1"
            )
        self.space = space
        stem, head, widths = space.scaled_widths(1.0)
        self.stem = _conv_bn_act(space.in_channels, stem, 3)
        stages: list[list[nn.Module]] = [[] for _ in widths]
        depths = (space.max_depth,) * space.num_stages  # every slot: elastic depth shrinks it
        for slot in block_slots(stem, widths, space.strides, depths):
            stages[slot.stage].append(
                ElasticMBConv(slot.c_in, slot.c_out, slot.stride, space.kernels, space.expansions)
            )
        self.stages = nn.ModuleList(nn.ModuleList(blocks) for blocks in stages)
        self.head = _conv_bn_act(widths[-1], head, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head, space.num_classes)
        self.set_active(self.largest())

    def largest(self) -> ChainArch:
        """Every choice at its maximum: the network trained first, and the teacher."""
        return extreme_arch(self.space, max)

    def smallest(self) -> ChainArch:
        return extreme_arch(self.space, min)

    def set_active(self, arch: ChainArch | str) -> None:
        """Make ``arch`` the subnet that :meth:`forward` runs."""
        if isinstance(arch, str):
            arch = ChainArch.from_string(arch)
        self.active = self.space.validate(arch)
        for stage, blocks in zip(arch.stages, self.stages, strict=True):
            for block, choice in zip(blocks, stage.blocks, strict=False):
                block.active = choice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.space.in_channels:
            raise ValueError(
                f"OFASupernet expects a (batch, {self.space.in_channels}, height, width) "
                f"tensor, got shape {tuple(x.shape)}"
            )
        x = self.stem(x)
        for stage, blocks in zip(self.active.stages, self.stages, strict=True):
            for block in blocks[: stage.depth]:  # elastic depth: the first d blocks
                x = block(x)
        return self.classifier(self.pool(self.head(x)).flatten(1))

    def sort_channels(self) -> None:
        """Sort every block's hidden channels by importance (before the expansion phase)."""
        for blocks in self.stages:
            for block in blocks:
                block.sort_channels()
