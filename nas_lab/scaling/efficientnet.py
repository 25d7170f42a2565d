"""EfficientNet-B0 to B7 rebuilt from the course's MBConv blocks, and checked against torchvision.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019,
Table 1 (B0's stages) and the released multipliers of B1-B7; :func:`torchvision_config` reads
torchvision's own multipliers (no weights are downloaded), so that the compound rule of
:mod:`nas_lab.scaling.compound` can be checked against the networks torchvision ships.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from nas_lab.cost import count_flops, count_params
from nas_lab.scaling.compound import (
    PAPER_COEFFICIENTS,
    check_multiplier,
    flops_factor,
    round_repeats,
)
from nas_lab.spaces.mbconv import ChainArch, ChainNet, Stage, make_divisible


@dataclass(frozen=True)
class StageConfig:
    """One row of EfficientNet-B0's Table 1: an MBConv stage."""

    expansion: int
    kernel: int
    stride: int
    c_in: int
    c_out: int
    repeats: int


# Tan & Le, ICML 2019, Table 1 (the same rows as torchvision's ``_efficientnet_conf``). The stem
# is a stride-2 3x3 convolution to 32 channels; the head a 1x1 convolution to 1280 = 4 x 320.
EFFICIENTNET_B0 = (
    StageConfig(1, 3, 1, 32, 16, 1),
    StageConfig(6, 3, 2, 16, 24, 2),
    StageConfig(6, 5, 2, 24, 40, 2),
    StageConfig(6, 3, 2, 40, 80, 3),
    StageConfig(6, 5, 1, 80, 112, 3),
    StageConfig(6, 5, 2, 112, 192, 4),
    StageConfig(6, 3, 1, 192, 320, 1),
)

VARIANTS = tuple(f"b{i}" for i in range(8))


def scale_stages(
    stages: Sequence[StageConfig], width_mult: float, depth_mult: float
) -> list[StageConfig]:
    """EfficientNet's stage table scaled: channels by :func:`make_divisible` of ``c * width``,
    repeats by :func:`round_repeats`."""
    return [
        replace(
            s,
            c_in=make_divisible(s.c_in * width_mult),
            c_out=make_divisible(s.c_out * width_mult),
            repeats=round_repeats(s.repeats, depth_mult),
        )
        for s in stages
    ]


def efficientnet(
    width_mult: float = 1.0, depth_mult: float = 1.0, num_classes: int = 1000
) -> ChainNet:
    """EfficientNet built from this library's MBConv blocks: swish, squeeze-excite with 0.25 of
    each block's input channels, a stride-2 stem, and the stage table scaled by the multipliers.
    ``efficientnet(*torchvision_config("b3")[:2])`` has exactly torchvision's B3 parameters.
    Build it under ``torch.device("meta")`` to count parameters and FLOPs without memory."""
    stages = scale_stages(EFFICIENTNET_B0, width_mult, depth_mult)
    arch = ChainArch(
        tuple(Stage((s.kernel,) * s.repeats, (s.expansion,) * s.repeats) for s in stages)
    )
    return ChainNet(
        arch,
        [s.c_out for s in stages],
        [s.stride for s in stages],
        stem_channels=stages[0].c_in,
        head_channels=4 * stages[-1].c_out,
        num_classes=num_classes,
        in_channels=3,
        activation="swish",
        se_ratio=0.25,
        stem_stride=2,
    )


def torchvision_config(variant: str) -> dict:
    """What torchvision ships for EfficientNet-``variant`` (``"b0"`` ... ``"b7"``), read from
    torchvision itself, no weights downloaded: the width and depth multipliers its builder passes
    (spied on, not copied), the evaluation crop size of its weights' transforms, and its
    weights' recorded parameter count and GFLOPs (``_ops``, counted as multiply-adds)."""
    from unittest import mock

    import torchvision.models.efficientnet as tv

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    builder = getattr(tv, f"efficientnet_{variant}")
    weights = getattr(tv, f"EfficientNet_{variant.upper()}_Weights").IMAGENET1K_V1
    with (
        mock.patch.object(tv, "_efficientnet_conf", wraps=tv._efficientnet_conf) as spy,
        torch.device("meta"),
    ):
        model = builder(weights=None)
    kwargs = spy.call_args.kwargs
    return {
        "variant": variant,
        "width_mult": float(kwargs["width_mult"]),
        "depth_mult": float(kwargs["depth_mult"]),
        "resolution": int(weights.transforms.keywords["crop_size"]),
        "params": sum(p.numel() for p in model.parameters()),
        "meta_params": int(weights.meta["num_params"]),
        "gmacs": float(weights.meta["_ops"]),
        "top1": float(weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]),
    }


def implied_phi(multiplier: float, coefficient: float) -> float:
    """The ``phi`` at which ``coefficient ** phi`` equals ``multiplier``: ``log m / log c``."""
    return math.log(check_multiplier("multiplier", multiplier)) / math.log(
        check_multiplier("coefficient", coefficient, minimum=1.0)
    )


def efficientnet_table(coefficients: Sequence[float] = PAPER_COEFFICIENTS) -> list[dict]:
    """B0 to B7: torchvision's multipliers and resolutions, the ``phi`` each one implies under
    the paper's coefficients, our rebuild's parameters and multiply-adds (counted on the meta
    device), and the FLOPs growth the rule predicts, ``d w^2 r^2``, against the counted one."""
    alpha, beta, gamma = coefficients
    rows, base_macs = [], None
    for variant in VARIANTS:
        tv = torchvision_config(variant)
        with torch.device("meta"):
            net = efficientnet(tv["width_mult"], tv["depth_mult"])
        side = tv["resolution"]
        macs = count_flops(net, (1, 3, side, side)) // 2
        base_macs = base_macs or macs
        r = side / 224
        rows.append(
            {
                **tv,
                "ours_params": count_params(net),
                "ours_gmacs": macs / 1e9,
                "phi_depth": implied_phi(tv["depth_mult"], alpha) if tv["depth_mult"] > 1 else 0.0,
                "phi_width": implied_phi(tv["width_mult"], beta) if tv["width_mult"] > 1 else 0.0,
                "phi_resolution": implied_phi(r, gamma) if r > 1 else 0.0,
                "rule_growth": flops_factor(tv["depth_mult"], tv["width_mult"], r),
                "counted_growth": macs / base_macs,
            }
        )
    return rows
