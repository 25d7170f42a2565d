"""A chain space of MBConv blocks: the search space of MnasNet, ProxylessNAS, OFA and EfficientNet.

The building block is MobileNetV2's inverted residual with a linear bottleneck (Sandler, Howard,
Zhu, Zhmoginov & Chen, "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018,
Section 3.3 and Table 1): a 1x1 convolution *expands* the channels by a ratio ``e``, a depthwise
``k x k`` convolution filters each channel on its own, and a 1x1 convolution *projects* back down
with no activation after it (the linear bottleneck). When the block keeps both the resolution and
the channel count, its input is added to its output (the inverted residual).

A network is a chain of stages. Each stage has a fixed output width and stride (its first block
downsamples), and the search chooses, per stage, how many blocks it has (its depth) and, per block,
the kernel size and the expansion ratio. This is the factorised hierarchical space of MnasNet (Tan
et al., CVPR 2019, Section 4.1) in the form that Once-for-All (Cai et al., ICLR 2020)
made standard (Section 3.2): kernel 3/5/7, expansion 3/4/6, depth 2/3/4 per stage.

An architecture is written as a compact string, one group per stage separated by ``|``, one
``k<kernel>e<expansion>`` token per block separated by ``-``::

    k3e6-k5e4|k7e3-k3e3-k5e6|k3e4-k3e4

is three stages of depth 2, 3 and 2 whose first block has kernel 3 and expansion 6.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.spaces import as_rng

__all__ = [
    "ACTIVATIONS",
    "MBConvBlock",
    "SqueezeExcite",
    "Stage",
    "ChainArch",
    "ChainNet",
    "ChainSpace",
    "make_divisible",
]


# ---------------------------------------------------------------------------------------------
# The block
# ---------------------------------------------------------------------------------------------


# The activations of the family: ReLU6 (MobileNetV2, Sandler et al., CVPR 2018), hard-swish
# x * ReLU6(x + 3) / 6 (MobileNetV3, Howard et al., ICCV 2019, Section 5.2) and swish x * sigmoid(x)
# (Ramachandran, Zoph & Le, 2017; used by EfficientNet, Tan & Le, ICML 2019).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "swish": nn.SiLU,
}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=True)


def _conv_bn(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    act: bool = True,
    activation: str = "relu6",
) -> nn.Sequential:
    """Conv (no bias: BatchNorm's shift replaces it) -> BatchNorm -> optional activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(_activation(activation))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu, Shen & Sun, CVPR 2018, Section 3): pool each channel to one
    number (squeeze), pass the vector through a bottleneck of two 1x1 convolutions ending in a
    sigmoid (excitation), and rescale the channels by the result. MnasNet, MobileNetV3 and
    EfficientNet put it after the depthwise convolution of the MBConv block."""

    def __init__(self, channels: int, squeeze: int, activation: str = "relu6") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = _activation(activation)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(scale))))


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_kernel(name: str, value: object) -> int:
    kernel = _check_int(name, value)
    if kernel % 2 == 0:
        raise ValueError(f"{name} must be odd (3, 5, 7, ...) for 'same' padding, got {kernel}")
    return kernel


class MBConvBlock(nn.Module):
    """MobileNetV2's inverted residual block (Sandler et al., CVPR 2018, Table 1).

    ``1x1 expand (c_in -> e * c_in) -> depthwise k x k (stride s) -> 1x1 project (-> c_out)``,
    with BatchNorm after each convolution and ReLU6 after the first two. The projection has no
    activation: the paper's linear bottleneck (Section 3.2), because a ReLU in the narrow
    representation destroys information. With ``expansion == 1`` the expand convolution would be
    an identity-sized 1x1, so it is left out (as in the paper's first bottleneck).

    The residual ``x + block(x)`` is used exactly when ``stride == 1 and c_in == c_out``, the only
    case where the shapes agree.

    The MobileNetV3 / EfficientNet variants of the block differ in two options: ``activation``
    (``"relu6"``, ``"hswish"`` or ``"swish"``, see ``ACTIVATIONS``) and ``se_ratio``: when
    positive, a :class:`SqueezeExcite` with ``max(1, int(c_in * se_ratio))`` squeeze channels
    follows the depthwise convolution (EfficientNet uses 0.25 of the block's *input* channels).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        expansion: int,
        stride: int,
        activation: str = "relu6",
        se_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        c_in, c_out = _check_int("c_in", c_in), _check_int("c_out", c_out)
        kernel, expansion = _check_kernel("kernel", kernel), _check_int("expansion", expansion)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        se_ratio = _check_se_ratio(se_ratio)
        hidden = c_in * expansion
        self.c_in, self.c_out, self.hidden = c_in, c_out, hidden
        self.kernel, self.expansion, self.stride = kernel, expansion, stride
        self.activation, self.se_ratio = activation, se_ratio
        self.expand = _conv_bn(c_in, hidden, 1, activation=activation) if expansion != 1 else None
        self.depthwise = _conv_bn(hidden, hidden, kernel, stride, hidden, activation=activation)
        squeeze = max(1, int(c_in * se_ratio))
        self.se = SqueezeExcite(hidden, squeeze, activation) if se_ratio > 0 else None
        self.project = _conv_bn(hidden, c_out, 1, act=False)  # linear bottleneck
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        return x + out if self.use_residual else out

    def extra_repr(self) -> str:
        extra = f", activation={self.activation}" if self.activation != "relu6" else ""
        extra += f", se_ratio={self.se_ratio}" if self.se_ratio else ""
        return (
            f"c_in={self.c_in}, c_out={self.c_out}, kernel={self.kernel}, "
            f"expansion={self.expansion}, stride={self.stride}, residual={self.use_residual}"
            + extra
        )


def _check_se_ratio(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(
            f"se_ratio must be a number in [0, 1] (0: no squeeze-excite), got {value!r}"
        )
    return float(value)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` (at least ``divisor``), going
    one step up if rounding lost more than 10%.

    This is the ``_make_divisible`` rule of MobileNetV2's reference code (TensorFlow
    ``models/research/slim/nets/mobilenet``), used by every MobileNet/EfficientNet width
    multiplier: hardware prefers channel counts that are multiples of 8. Examples:
    ``make_divisible(8.0) == 8``, ``make_divisible(12.0) == 16``, ``make_divisible(18.0) == 24``
    (16 would lose 11%), ``make_divisible(44.8) == 48``.
    """
    if value <= 0:
        raise ValueError(f"a channel count must be positive, got {value}")
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


# ---------------------------------------------------------------------------------------------
# Architectures: immutable, hashable, printable
# ---------------------------------------------------------------------------------------------

_BLOCK_TOKEN = re.compile(r"k(\d+)e(\d+)")


def out_side(side: int, stride: int) -> int:
    """Side of a feature map after a 'same'-padded convolution of this stride."""
    return (side + stride - 1) // stride


@dataclass(frozen=True)
class BlockSlot:
    """Where one block of a chain sits: its stage, its place in the stage, its channels in and
    out, its stride and the side of the feature map it reads."""

    stage: int
    index: int
    c_in: int
    c_out: int
    stride: int
    side: int


def block_slots(
    c_in: int, widths: Sequence[int], strides: Sequence[int], depths: Sequence[int], side: int = 8
) -> list[BlockSlot]:
    """The geometry of every block of a chain, stage by stage: the first block of a stage takes
    the stage's stride and width, the others keep both (MobileNetV2's rule, Sandler et al., CVPR
    2018, Table 2). The one place the course works this out: networks, supernets and latency
    tables all read it from here."""
    if not len(widths) == len(strides) == len(depths):
        raise ValueError(
            f"need one width, stride and depth per stage: {len(widths)} widths, "
            f"{len(strides)} strides, {len(depths)} depths"
        )
    slots = []
    for stage, (width, stride, depth) in enumerate(zip(widths, strides, depths, strict=True)):
        for index in range(depth):
            s = stride if index == 0 else 1
            slots.append(BlockSlot(stage, index, c_in, width, s, side))
            c_in, side = width, out_side(side, s)
    return slots


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
        expansions = tuple(_check_int(f"expansions[{i}]", e) for i, e in enumerate(self.expansions))
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


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------


class ChainNet(nn.Module):
    """stem conv3x3 -> stages of MBConv blocks -> 1x1 head conv -> global average pool -> linear.

    The first block of each stage applies the stage's stride and changes the width; the others
    keep both and so are residual. With ``resolution`` set, the input is first resized
    (bilinearly) to ``resolution x resolution``: that is how EfficientNet's resolution scaling
    (Tan & Le, ICML 2019, Section 3.2) reaches a dataset whose images are 8x8.

    ``activation``, ``se_ratio`` (see :class:`MBConvBlock`) and ``stem_stride`` (2 in every
    ImageNet network, 1 for 8x8 digits) turn the same class into MobileNetV3- and
    EfficientNet-style networks: ``nas_lab.scaling.efficientnet`` builds EfficientNet-B0 to B7
    with it, parameter for parameter as torchvision does.
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
    ) -> None:
        super().__init__()
        if not len(arch.stages) == len(widths) == len(strides):
            raise ValueError(
                f"need one width and one stride per stage: {len(arch.stages)} stages, "
                f"{len(widths)} widths, {len(strides)} strides"
            )
        if resolution is not None:
            _check_int("resolution", resolution)
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        self.arch, self.in_channels, self.resolution = arch, in_channels, resolution
        self.stem = _conv_bn(in_channels, stem_channels, 3, stem_stride, activation=activation)
        depths = [len(stage.blocks) for stage in arch.stages]
        stages = [nn.Sequential() for _ in arch.stages]
        for slot in block_slots(stem_channels, widths, strides, depths):
            kernel, expansion = arch.stages[slot.stage].blocks[slot.index]
            stages[slot.stage].append(
                MBConvBlock(
                    slot.c_in, slot.c_out, kernel, expansion, slot.stride, activation, se_ratio
                )
            )
        self.stages = nn.ModuleList(stages)
        self.head = _conv_bn(widths[-1], head_channels, 1, activation=activation)
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
        return self.classifier(x)


# ---------------------------------------------------------------------------------------------
# The search space
# ---------------------------------------------------------------------------------------------


def seeded_init(seed: int | None, make: Callable[[], nn.Module]) -> nn.Module:
    """Call ``make``; with a seed, initialise its weights from that seed and leave torch's global
    random state as it was (without one, draw from the global state as torch always does)."""
    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def _check_choices(
    name: str, values: Sequence[int], check: Callable[[str, object], int] = _check_int
) -> tuple[int, ...]:
    values = tuple(check(f"{name}[{i}]", v) for i, v in enumerate(values))
    if not values or len(set(values)) != len(values):
        raise ValueError(f"{name} must be a non-empty sequence of distinct values, got {values}")
    return values


class ChainSpace:
    """The space of chain networks: per stage a depth, per block a kernel and an expansion.

    The defaults fit 8x8 digits: three stages of widths 16/24/32 and strides 1/2/2 (8x8 -> 8x8 ->
    4x4 -> 2x2), so a forward pass is cheap, with the choices of Once-for-All (Cai et al., ICLR
    2020): kernels 3/5/7, expansions 3/4/6, depths 2/3/4. ``activation``, ``se_ratio`` and
    ``stem_stride`` give MobileNetV3-style members (``activation="hswish", se_ratio=0.25``).
    """

    def __init__(
        self,
        kernels: Sequence[int] = (3, 5, 7),
        expansions: Sequence[int] = (3, 4, 6),
        depths: Sequence[int] = (2, 3, 4),
        widths: Sequence[int] = (16, 24, 32),
        strides: Sequence[int] = (1, 2, 2),
        stem_channels: int = 16,
        head_channels: int = 64,
        num_classes: int = 10,
        in_channels: int = 1,
        activation: str = "relu6",
        se_ratio: float = 0.0,
        stem_stride: int = 1,
    ) -> None:
        self.kernels = _check_choices("kernels", kernels, _check_kernel)
        self.expansions = _check_choices("expansions", expansions)
        self.depths = _check_choices("depths", depths)
        self.widths = tuple(_check_int(f"widths[{i}]", w) for i, w in enumerate(widths))
        self.strides = tuple(strides)
        if not self.widths or len(self.widths) != len(self.strides):
            raise ValueError(
                f"need one stride per stage width: got {len(self.widths)} widths "
                f"and {len(self.strides)} strides"
            )
        for i, stride in enumerate(self.strides):
            if stride not in (1, 2):
                raise ValueError(f"strides[{i}] must be 1 or 2, got {stride!r}")
        self.stem_channels = _check_int("stem_channels", stem_channels)
        self.head_channels = _check_int("head_channels", head_channels)
        self.num_classes = _check_int("num_classes", num_classes)
        self.in_channels = _check_int("in_channels", in_channels)
        _activation(activation)  # fail now, with the list of choices, not at build time
        self.activation, self.se_ratio = activation, _check_se_ratio(se_ratio)
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        self.stem_stride = stem_stride

    @property
    def num_stages(self) -> int:
        return len(self.widths)

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    def __repr__(self) -> str:
        return (
            f"ChainSpace(kernels={self.kernels}, expansions={self.expansions}, "
            f"depths={self.depths}, widths={self.widths}, strides={self.strides})"
        )

    # -- counting ------------------------------------------------------------------------------

    def size(self) -> int:
        """Number of architectures: ``prod over stages of sum over depths d of (|K| |E|)^d``.

        A stage of depth ``d`` has ``|K| |E|`` choices in each of its ``d`` blocks, and the
        stages choose independently. The default space has ``(9^2 + 9^3 + 9^4)^3 = 7371^3``,
        about 4 * 10^11 architectures.
        """
        per_block = len(self.kernels) * len(self.expansions)
        per_stage = sum(per_block**d for d in self.depths)
        return per_stage**self.num_stages

    # -- checking ------------------------------------------------------------------------------

    def validate(self, arch: ChainArch) -> ChainArch:
        """Return ``arch`` if every choice is one of this space's, else raise a ValueError that
        names the offending stage and block."""
        if not isinstance(arch, ChainArch):
            raise ValueError(
                f"expected a ChainArch (use ChainArch.from_string), got {type(arch).__name__}"
            )
        if len(arch.stages) != self.num_stages:
            raise ValueError(f"this space has {self.num_stages} stages, got {len(arch.stages)}")
        for s, stage in enumerate(arch.stages):
            if stage.depth not in self.depths:
                raise ValueError(f"stages[{s}] has depth {stage.depth}, not one of {self.depths}")
            for b, (kernel, expansion) in enumerate(stage.blocks):
                if kernel not in self.kernels:
                    raise ValueError(
                        f"stages[{s}].kernels[{b}] = {kernel} is not one of {self.kernels}"
                    )
                if expansion not in self.expansions:
                    raise ValueError(
                        f"stages[{s}].expansions[{b}] = {expansion} is not one of {self.expansions}"
                    )
        return arch

    def from_string(self, text: str) -> ChainArch:
        """Parse an architecture string and check it belongs to this space."""
        return self.validate(ChainArch.from_string(text))

    # -- sampling and mutation -----------------------------------------------------------------

    def _random_stage(self, depth: int, rng: np.random.Generator) -> Stage:
        kernels = tuple(int(k) for k in rng.choice(self.kernels, size=depth))
        expansions = tuple(int(e) for e in rng.choice(self.expansions, size=depth))
        return Stage(kernels, expansions)

    def sample(self, rng: np.random.Generator | int) -> ChainArch:
        """Draw each choice uniformly and independently: a depth per stage, then a kernel and an
        expansion per block. As in OFA and single-path one-shot NAS, this is uniform per
        *choice*, not over architectures: a shallow stage is as likely as a deep one although
        the deep ones are far more numerous."""
        rng = as_rng(rng)
        depths = [int(rng.choice(self.depths)) for _ in range(self.num_stages)]
        return ChainArch(tuple(self._random_stage(d, rng) for d in depths))

    def mutate(self, arch: ChainArch, rng: np.random.Generator | int) -> ChainArch:
        """Change exactly one choice, picked uniformly among all of them: one block's kernel, one
        block's expansion, or one stage's depth, each to a different value.

        A deeper stage keeps its blocks and appends new ones with random choices; a shallower one
        drops its last blocks (as OFA's elastic depth keeps the first ``d`` blocks). This is the
        mutation of regularized evolution (Real et al., AAAI 2019, Section 2) for this space.
        """
        self.validate(arch)
        rng = as_rng(rng)
        sites = [("depth", s, 0) for s in range(self.num_stages) if len(self.depths) > 1]
        for s, stage in enumerate(arch.stages):
            sites += [("kernel", s, b) for b in range(stage.depth) if len(self.kernels) > 1]
            sites += [("expansion", s, b) for b in range(stage.depth) if len(self.expansions) > 1]
        if not sites:
            raise ValueError("this space has a single architecture: there is nothing to mutate")
        what, s, b = sites[rng.integers(len(sites))]
        stage = arch.stages[s]
        kernels, expansions = list(stage.kernels), list(stage.expansions)
        if what == "kernel":
            kernels[b] = int(rng.choice([k for k in self.kernels if k != kernels[b]]))
        elif what == "expansion":
            expansions[b] = int(rng.choice([e for e in self.expansions if e != expansions[b]]))
        else:
            depth = int(rng.choice([d for d in self.depths if d != stage.depth]))
            extra = self._random_stage(depth, rng)  # choices for any new blocks
            kernels = (kernels + list(extra.kernels))[:depth]
            expansions = (expansions + list(extra.expansions))[:depth]
        stages = list(arch.stages)
        stages[s] = Stage(tuple(kernels), tuple(expansions))
        return ChainArch(tuple(stages))

    # -- encoding ------------------------------------------------------------------------------

    @property
    def encoding_length(self) -> int:
        return self.num_stages * self.max_depth * (len(self.kernels) + len(self.expansions))

    def encode(self, arch: ChainArch) -> np.ndarray:
        """A fixed-length 0/1 vector: for each stage, ``max_depth`` block slots, each holding a
        one-hot kernel followed by a one-hot expansion; the slots beyond the stage's depth stay
        zero, so the depth is read off as the number of filled slots (the encoding of OFA's
        accuracy predictor, Cai et al., ICLR 2020, Section 3.4)."""
        self.validate(arch)
        n_k, n_e = len(self.kernels), len(self.expansions)
        slots = np.zeros((self.num_stages, self.max_depth, n_k + n_e), dtype=np.float32)
        for s, stage in enumerate(arch.stages):
            for b, (kernel, expansion) in enumerate(stage.blocks):
                slots[s, b, self.kernels.index(kernel)] = 1.0
                slots[s, b, n_k + self.expansions.index(expansion)] = 1.0
        return slots.reshape(-1)

    def decode(self, vector: np.ndarray) -> ChainArch:
        """Inverse of :meth:`encode`."""
        vector = np.asarray(vector)
        if vector.shape != (self.encoding_length,):
            raise ValueError(
                f"expected a vector of length {self.encoding_length}, got shape {vector.shape}"
            )
        n_k = len(self.kernels)
        slots = vector.reshape(self.num_stages, self.max_depth, -1)
        stages = []
        for s in range(self.num_stages):
            filled = [slot for slot in slots[s] if slot.any()]
            if not filled:
                raise ValueError(f"stage {s} of the vector has no block: not an encoding")
            kernels = tuple(self.kernels[int(np.argmax(slot[:n_k]))] for slot in filled)
            expansions = tuple(self.expansions[int(np.argmax(slot[n_k:]))] for slot in filled)
            stages.append(Stage(kernels, expansions))
        return self.validate(ChainArch(tuple(stages)))

    # -- enumeration ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ChainArch]:
        """Every architecture of the space, in a fixed order (only sensible for tiny spaces)."""
        blocks = list(itertools.product(self.kernels, self.expansions))
        per_stage = [
            Stage(tuple(k for k, _ in combo), tuple(e for _, e in combo))
            for d in self.depths
            for combo in itertools.product(blocks, repeat=d)
        ]
        for stages in itertools.product(per_stage, repeat=self.num_stages):
            yield ChainArch(stages)

    # -- building ------------------------------------------------------------------------------

    def scaled_widths(self, width_mult: float = 1.0) -> tuple[int, int, tuple[int, ...]]:
        """``(stem, head, stage widths)`` after the width multiplier: every channel count ``c``
        becomes ``make_divisible(c * width_mult)``, a multiple of 8, as in MobileNetV2."""
        finite = isinstance(width_mult, (int, float)) and math.isfinite(width_mult)
        if not finite or width_mult <= 0:
            raise ValueError(f"width_mult must be a positive number, got {width_mult!r}")
        stem, head, *widths = (
            make_divisible(c * width_mult)
            for c in (self.stem_channels, self.head_channels, *self.widths)
        )
        return stem, head, tuple(widths)

    def build(
        self,
        arch: ChainArch | str,
        width_mult: float = 1.0,
        resolution: int | None = None,
        seed: int | None = None,
    ) -> ChainNet:
        """The network of ``arch``, with channels scaled by ``width_mult`` (see
        :meth:`scaled_widths`) and inputs resized to ``resolution`` when given. ``seed`` fixes the
        weight initialisation without touching torch's global random state."""
        if isinstance(arch, str):
            arch = self.from_string(arch)
        self.validate(arch)
        stem, head, widths = self.scaled_widths(width_mult)
        return seeded_init(
            seed,
            lambda: ChainNet(
                arch,
                widths,
                self.strides,
                stem_channels=stem,
                head_channels=head,
                num_classes=self.num_classes,
                in_channels=self.in_channels,
                resolution=resolution,
                activation=self.activation,
                se_ratio=self.se_ratio,
                stem_stride=self.stem_stride,
            ),
        )
