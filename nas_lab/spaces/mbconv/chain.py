"""Chain architectures and their network: a depth per stage, a kernel and an expansion per block.

The factorised hierarchical space of MnasNet (Tan et al., CVPR 2019, Section 4.1): ``Stage`` and
``ChainArch`` are immutable, hashable and printable in the compact string form; ``ChainNet`` is
the network a ``ChainArch`` describes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.arguments import check_int, check_positive, check_probability
from nas_lab.spaces.mbconv.block import (
    MBConvBlock,
    _check_kernel,
    _conv_bn,
    block_slots,
)

_BLOCK_TOKEN = re.compile(r"k(\d+)e(\d+)")


@dataclass(frozen=True)
class Stage:
    """One stage's choices: the kernel and expansion of each block; its depth is their number."""

    kernels: tuple[int, ...]
    expansions: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("kernels", "expansions"):
            if isinstance(getattr(self, name), (str, Integral)):
                raise ValueError(f"Stage.{name} must be a tuple of integers, one per block")
        kernels = tuple(_check_kernel(f"kernels[{i}]", k) for i, k in enumerate(self.kernels))
        expansions = tuple(check_int(f"expansions[{i}]", e) for i, e in enumerate(self.expansions))
        if len(kernels) != len(expansions):
            raise ValueError(
                f"a stage needs one expansion per kernel: got {len(kernels)} kernels "
                f"and {len(expansions)} expansions"
            )
        if not kernels:
            raise ValueError("a stage needs at least one block")
        # Normalise lists and numpy integers to tuples of int, so equal stages hash equally.
        object.__setattr__(self, "kernels", kernels)
        object.__setattr__(self, "expansions", expansions)

    @property
    def depth(self) -> int:
        return len(self.kernels)

    @property
    def blocks(self) -> tuple[tuple[int, int], ...]:
        """``(kernel, expansion)`` of each block, in order."""
        return tuple(zip(self.kernels, self.expansions, strict=True))

    def __str__(self) -> str:
        return "-".join(f"k{k}e{e}" for k, e in self.blocks)


@dataclass(frozen=True)
class ChainArch:
    """A chain architecture: one :class:`Stage` per stage of the network."""

    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        stages = tuple(self.stages)
        if not stages or not all(isinstance(s, Stage) for s in stages):
            raise ValueError("ChainArch needs a non-empty sequence of Stage objects")
        object.__setattr__(self, "stages", stages)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.stages)

    def __str__(self) -> str:
        return "|".join(str(s) for s in self.stages)

    @classmethod
    def from_string(cls, text: str) -> ChainArch:
        """Parse the format of :meth:`__str__`, e.g. ``"k3e6-k5e4|k7e3-k3e3-k5e6"``."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"expected a string like 'k3e6-k5e4|k7e3-k3e3', got {text!r}")
        stages = []
        for s, group in enumerate(text.strip().split("|")):
            kernels, expansions = [], []
            for b, token in enumerate(group.split("-")):
                match = _BLOCK_TOKEN.fullmatch(token.strip())
                if match is None:
                    raise ValueError(
                        f"stage {s}, block {b}: {token!r} is not of the form "
                        "k<kernel>e<expansion> (e.g. 'k3e6'); blocks are separated by '-', "
                        "stages by '|'"
                    )
                kernels.append(int(match.group(1)))
                expansions.append(int(match.group(2)))
            try:
                stages.append(Stage(tuple(kernels), tuple(expansions)))
            except ValueError as error:
                raise ValueError(f"stage {s}: {error}") from None
        return cls(tuple(stages))


class ChainNet(nn.Module):
    """stem conv3x3 -> stages of MBConv blocks -> 1x1 head conv -> global average pool -> linear.

    The first block of each stage applies the stage's stride and changes the width; the others
    keep both and so are residual. With ``resolution`` set, the input is first resized
    (bilinearly) to ``resolution x resolution``: that is how EfficientNet's resolution scaling
    (Tan & Le, ICML 2019, Section 3.2) reaches a dataset whose images are 8x8.

    ``activation``, ``se_ratio``, ``bn_eps``, ``bn_momentum`` (see :class:`MBConvBlock`, they
    apply to the stem and head too), ``stem_stride`` (2 in every ImageNet network, 1 for 8x8
    digits), ``dropout`` (before the classifier, as torchvision's EfficientNet) and
    ``drop_path`` (stochastic depth: block ``i`` of ``n`` drops its residual branch with
    probability ``drop_path * i / n``, torchvision's schedule) turn the same class into
    EfficientNet: ``nas_lab.scaling.efficientnet`` builds B0 to B7 with it, with torchvision's
    parameters and, given torchvision's weights, its logits. MobileNetV3 is not one of its
    members (see :class:`MBConvBlock`); its hard-swish is available as ``activation="hswish"``.
    """

    def __init__(
        self,
        arch: ChainArch,
        widths: Sequence[int],
        strides: Sequence[int],
        *,
        stem_channels: int,
        head_channels: int,
        num_classes: int,
        in_channels: int = 1,
        resolution: int | None = None,
        activation: str = "relu6",
        se_ratio: float = 0.0,
        stem_stride: int = 1,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if not len(arch.stages) == len(widths) == len(strides):
            raise ValueError(
                f"need one width and one stride per stage: {len(arch.stages)} stages, "
                f"{len(widths)} widths, {len(strides)} strides"
            )
        if resolution is not None:
            check_int("resolution", resolution)
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        self.dropout = check_probability("dropout", dropout)
        drop_path = check_probability("drop_path", drop_path)
        self.arch, self.in_channels, self.resolution = arch, in_channels, resolution
        bn = {"bn_eps": check_positive("bn_eps", bn_eps)}
        bn["bn_momentum"] = check_probability("bn_momentum", bn_momentum)
        self.stem = _conv_bn(
            in_channels, stem_channels, 3, stem_stride, activation=activation, **bn
        )
        depths = [len(stage.blocks) for stage in arch.stages]
        stages = [nn.Sequential() for _ in arch.stages]
        slots = block_slots(stem_channels, widths, strides, depths)
        for i, slot in enumerate(slots):
            kernel, expansion = arch.stages[slot.stage].blocks[slot.index]
            stages[slot.stage].append(
                MBConvBlock(
                    slot.c_in,
                    slot.c_out,
                    kernel,
                    expansion,
                    slot.stride,
                    activation,
                    se_ratio,
                    drop_path=drop_path * i / len(slots),
                    **bn,
                )
            )
        self.stages = nn.ModuleList(stages)
        self.head = _conv_bn(widths[-1], head_channels, 1, activation=activation, **bn)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head_channels, num_classes)

    def blocks(self) -> list[MBConvBlock]:
        """All MBConv blocks, stage by stage."""
        return [block for stage in self.stages for block in stage]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"ChainNet expects a (batch, {self.in_channels}, height, width) tensor, "
                f"got shape {tuple(x.shape)}"
            )
        if self.resolution is not None and tuple(x.shape[-2:]) != (self.resolution,) * 2:
            x = F.interpolate(x, size=(self.resolution,) * 2, mode="bilinear", align_corners=False)
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = self.pool(self.head(x)).flatten(1)
        x = F.dropout(x, self.dropout, self.training)
        return self.classifier(x)
