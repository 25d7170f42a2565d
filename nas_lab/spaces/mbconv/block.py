"""The MBConv block: MobileNetV2's inverted residual, its squeeze-and-excitation, and where
each block of a chain sits.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018, Section 3.3
and Table 1 (the block); Hu, Shen & Sun, "Squeeze-and-Excitation Networks", CVPR 2018 (the SE
module MnasNet and EfficientNet add); ``block_slots`` is the one place the course works out a
chain's geometry (Table 2's rule: the first block of a stage strides and changes width).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nas_lab.arguments import check_int, check_positive, check_probability

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
    bn_eps: float = 1e-5,
    bn_momentum: float = 0.1,
) -> nn.Sequential:
    """Conv (no bias: BatchNorm's shift replaces it) -> BatchNorm -> optional activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=bn_eps, momentum=bn_momentum),
    ]
    if act:
        layers.append(_activation(activation))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu, Shen & Sun, CVPR 2018, Section 3): pool each channel to one
    number (squeeze), pass the vector through a bottleneck of two 1x1 convolutions ending in a
    sigmoid (excitation), and rescale the channels by the result. MnasNet, MobileNetV3 and
    EfficientNet put it after the depthwise convolution of the MBConv block. This is
    EfficientNet's form (torchvision's ``SqueezeExcitation`` with a sigmoid gate); MobileNetV3's
    gates with a hard sigmoid and uses ReLU inside, and is not offered here."""

    def __init__(self, channels: int, squeeze: int, activation: str = "relu6") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = _activation(activation)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(scale))))


def _check_kernel(name: str, value: object) -> int:
    kernel = check_int(name, value)
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

    Options turn it into EfficientNet's block (Tan & Le, ICML 2019; torchvision's ``MBConv``):
    ``activation`` (``"relu6"``, ``"hswish"`` or ``"swish"``, see ``ACTIVATIONS``); ``se_ratio``:
    when positive, a :class:`SqueezeExcite` with ``max(1, int(c_in * se_ratio))`` squeeze channels
    follows the depthwise convolution (EfficientNet uses 0.25 of the block's *input* channels);
    ``bn_eps`` and ``bn_momentum`` of every BatchNorm (PyTorch's defaults 1e-5 and 0.1; the
    paper's TensorFlow code, ``efficientnet_builder.py``, uses 1e-3 and decay 0.99, which is
    PyTorch's momentum 0.01); and ``drop_path``,
    stochastic depth (Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016): in
    training, each sample's residual branch is zeroed with probability ``drop_path`` and the
    survivors scaled by ``1 / (1 - drop_path)``, drawn as torchvision's ``stochastic_depth(...,
    "row")`` draws it; in evaluation it is the identity, and a block without a residual ignores it.

    These options give MobileNetV2 and EfficientNet blocks, not MobileNetV3's (Howard et al., ICCV
    2019, Table 1): those choose the activation per block, size the squeeze-excite from the
    *hidden* channels (rounded to a multiple of 8) with a hard-sigmoid gate, and use fractional
    expansions (200 / 80 = 2.5, 184 / 80 = 2.3); hard-swish is available here as an activation only.
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
        *,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        c_in, c_out = check_int("c_in", c_in), check_int("c_out", c_out)
        kernel, expansion = _check_kernel("kernel", kernel), check_int("expansion", expansion)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        se_ratio = _check_se_ratio(se_ratio)
        drop_path = check_probability("drop_path", drop_path)
        bn = {"bn_eps": check_positive("bn_eps", bn_eps)}
        bn["bn_momentum"] = check_probability("bn_momentum", bn_momentum)
        hidden = c_in * expansion
        self.c_in, self.c_out, self.hidden = c_in, c_out, hidden
        self.kernel, self.expansion, self.stride = kernel, expansion, stride
        self.activation, self.se_ratio, self.drop_path = activation, se_ratio, drop_path
        self.expand = (
            _conv_bn(c_in, hidden, 1, activation=activation, **bn) if expansion != 1 else None
        )
        self.depthwise = _conv_bn(
            hidden, hidden, kernel, stride, hidden, activation=activation, **bn
        )
        squeeze = max(1, int(c_in * se_ratio))
        self.se = SqueezeExcite(hidden, squeeze, activation) if se_ratio > 0 else None
        self.project = _conv_bn(hidden, c_out, 1, act=False, **bn)  # linear bottleneck
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        if not self.use_residual:
            return out
        if self.training and self.drop_path > 0:
            survival = 1.0 - self.drop_path
            keep = torch.empty((out.shape[0], 1, 1, 1), dtype=out.dtype, device=out.device)
            keep = keep.bernoulli_(survival)
            out = out * (keep / survival if survival > 0 else keep)
        return x + out

    def extra_repr(self) -> str:
        extra = f", activation={self.activation}" if self.activation != "relu6" else ""
        extra += f", se_ratio={self.se_ratio}" if self.se_ratio else ""
        extra += f", drop_path={self.drop_path:.4g}" if self.drop_path else ""
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
