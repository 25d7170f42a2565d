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

The package: ``block`` (the MBConv block and a chain's geometry), ``chain`` (architectures and
``ChainNet``), ``space`` (``ChainSpace``); every name is available here, as ``mbconv.ChainSpace``.
"""

from __future__ import annotations

from nas_lab.spaces.mbconv.block import (
    BlockSlot,
    MBConvBlock,
    SqueezeExcite,
    block_slots,
    make_divisible,
    out_side,
)
from nas_lab.spaces.mbconv.chain import (
    ChainArch,
    ChainNet,
    Stage,
)
from nas_lab.spaces.mbconv.space import (
    ChainSpace,
    seeded_init,
)

__all__ = [
    "SqueezeExcite",
    "MBConvBlock",
    "make_divisible",
    "out_side",
    "BlockSlot",
    "block_slots",
    "Stage",
    "ChainArch",
    "ChainNet",
    "seeded_init",
    "ChainSpace",
]
