"""EfficientNet-B0 to B7 rebuilt from the course's MBConv blocks, and checked against torchvision.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019,
Table 1 (B0's stages) and the released multipliers of B1-B7; :func:`torchvision_config` reads
torchvision's own multipliers (no weights are downloaded), so that the compound rule of
:mod:`nas_lab.scaling.compound` can be checked against the networks torchvision ships.

:func:`efficientnet_variant` builds B0 ... B7 exactly as torchvision's ``efficientnet_b0`` ...
``efficientnet_b7`` do: the same parameters, and with :func:`load_torchvision_weights` the same
logits (in training mode too: dropout, stochastic depth and BatchNorm's running statistics
follow torchvision's). One difference from the paper's TensorFlow code (``efficientnet_builder.py``
in ``tensorflow/tpu``) is torchvision's, kept here: that code uses BatchNorm eps 1e-3 and decay
0.99 (PyTorch momentum 0.01) in every variant, torchvision only in B5-B7, whose weights were ported
from the TensorFlow release; B0-B4's weights were trained in PyTorch (timm) with PyTorch's default
eps 1e-5 and momentum 0.1. Both use 'same' padding ``k // 2`` where TensorFlow pads stride-2
convolutions asymmetrically, and both initialise weights differently from ``ChainNet``'s PyTorch
defaults (which changes training from scratch, not the network).
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


@dataclass(frozen=True)
class VariantSettings:
    """What torchvision's builder of one EfficientNet variant passes to its network."""

    width_mult: float
    depth_mult: float
    dropout: float
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1


# The paper's multipliers and dropout rates (its code's ``efficientnet_params``: width, depth,
# resolution, dropout), as torchvision's ``efficientnet_b0`` ... ``efficientnet_b7`` pass them,
# with torchvision's BatchNorm: PyTorch's defaults in B0-B4, the TensorFlow code's in B5-B7.
# ``test_scaling.py`` reads each value back from torchvision.
VARIANT_SETTINGS = {
    "b0": VariantSettings(1.0, 1.0, 0.2),
    "b1": VariantSettings(1.0, 1.1, 0.2),
    "b2": VariantSettings(1.1, 1.2, 0.3),
    "b3": VariantSettings(1.2, 1.4, 0.3),
    "b4": VariantSettings(1.4, 1.8, 0.4),
    "b5": VariantSettings(1.6, 2.2, 0.4, bn_eps=1e-3, bn_momentum=0.01),
    "b6": VariantSettings(1.8, 2.6, 0.5, bn_eps=1e-3, bn_momentum=0.01),
    "b7": VariantSettings(2.0, 3.1, 0.5, bn_eps=1e-3, bn_momentum=0.01),
}

# Stochastic depth's largest drop rate, torchvision's ``stochastic_depth_prob`` default (the
# paper's code: ``drop_connect_rate`` 0.2, i.e. ``survival_prob`` 0.8); block i of n uses 0.2 i / n.
DROP_PATH = 0.2


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
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    num_classes: int = 1000,
    *,
    dropout: float = 0.2,
    drop_path: float = DROP_PATH,
    bn_eps: float = 1e-5,
    bn_momentum: float = 0.1,
) -> ChainNet:
    """EfficientNet built from this library's MBConv blocks: swish, squeeze-excite with 0.25 of
    each block's input channels, a stride-2 stem, and the stage table scaled by the multipliers;
    ``dropout`` before the classifier, stochastic depth up to ``drop_path`` and the BatchNorm
    settings as torchvision's ``EfficientNet`` takes them (the defaults are B0's). For a named
    variant with all of torchvision's settings, use :func:`efficientnet_variant`.
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
        bn_eps=bn_eps,
        bn_momentum=bn_momentum,
        dropout=dropout,
        drop_path=drop_path,
    )


def efficientnet_variant(variant: str, num_classes: int = 1000) -> ChainNet:
    """EfficientNet-``variant`` (``"b0"`` ... ``"b7"``) as torchvision's ``efficientnet_b*``
    builds it (:data:`VARIANT_SETTINGS`): the same parameters, and, loaded with
    :func:`load_torchvision_weights`, the same logits."""
    if variant not in VARIANT_SETTINGS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    v = VARIANT_SETTINGS[variant]
    return efficientnet(
        v.width_mult,
        v.depth_mult,
        num_classes,
        dropout=v.dropout,
        bn_eps=v.bn_eps,
        bn_momentum=v.bn_momentum,
    )


def torchvision_names(net: ChainNet) -> dict[str, str]:
    """Each module of our EfficientNet that holds weights, named as torchvision names its twin:
    ``stem.*`` is ``features.0.*``; block ``b`` of stage ``s`` is ``features.{s+1}.{b}.block``,
    whose parts are numbered in order (expand if present, depthwise, squeeze-excite with
    ``fc1``/``fc2`` for our ``reduce``/``expand``, project); the head is the last ``features``
    entry and the classifier is ``classifier.1`` (after its dropout)."""
    names = {"stem.0": "features.0.0", "stem.1": "features.0.1"}
    for s, stage in enumerate(net.stages):
        for b, block in enumerate(stage):
            if block.se is None:
                raise ValueError("torchvision's EfficientNet blocks all have squeeze-excite")
            ours, theirs = f"stages.{s}.{b}", f"features.{s + 1}.{b}.block"
            parts = ["expand"] if block.expand is not None else []
            parts += ["depthwise", "se", "project"]
            for i, part in enumerate(parts):
                if part == "se":
                    names[f"{ours}.se.reduce"] = f"{theirs}.{i}.fc1"
                    names[f"{ours}.se.expand"] = f"{theirs}.{i}.fc2"
                else:
                    names[f"{ours}.{part}.0"] = f"{theirs}.{i}.0"
                    names[f"{ours}.{part}.1"] = f"{theirs}.{i}.1"
    last = len(net.stages) + 1
    names.update({"head.0": f"features.{last}.0", "head.1": f"features.{last}.1"})
    names["classifier"] = "classifier.1"
    return names


def load_torchvision_weights(net: ChainNet, state_dict: dict[str, torch.Tensor]) -> ChainNet:
    """Load a torchvision EfficientNet ``state_dict`` (for instance
    ``EfficientNet_B5_Weights.IMAGENET1K_V1.get_state_dict()``, or a model's own) into ``net``,
    an :func:`efficientnet_variant` of the same variant; every tensor must find its place."""
    names = torchvision_names(net)
    mapped, used = {}, set()
    for key in net.state_dict():
        module, _, leaf = key.rpartition(".")
        theirs = f"{names[module]}.{leaf}"
        if theirs not in state_dict:
            raise ValueError(
                f"the state_dict has no {theirs!r} (our {key!r}): is it torchvision's "
                "EfficientNet of the same variant?"
            )
        mapped[key] = state_dict[theirs]
        used.add(theirs)
    extra = set(state_dict) - used
    if extra:
        raise ValueError(
            f"{len(extra)} tensors of the state_dict have no place in this network, e.g. "
            f"{sorted(extra)[0]!r}: is it torchvision's EfficientNet of the same variant?"
        )
    net.load_state_dict(mapped)
    return net


def torchvision_config(variant: str) -> dict:
    """What torchvision ships for EfficientNet-``variant`` (``"b0"`` ... ``"b7"``), read from
    torchvision itself, no weights downloaded: the width and depth multipliers its builder passes
    (spied on, not copied), the evaluation crop size of its weights' transforms, its
    weights' recorded parameter count and GFLOPs (``_ops``, counted as multiply-adds), and what
    its network does in training: the classifier's dropout, every BatchNorm's eps and momentum,
    and each block's stochastic-depth rate."""
    from unittest import mock

    import torchvision.models.efficientnet as tv
    from torchvision.ops import StochasticDepth

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
    norms = {(m.eps, m.momentum) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    ((bn_eps, bn_momentum),) = norms  # one setting for the whole network
    return {
        "variant": variant,
        "width_mult": float(kwargs["width_mult"]),
        "depth_mult": float(kwargs["depth_mult"]),
        "resolution": int(weights.transforms.keywords["crop_size"]),
        "params": sum(p.numel() for p in model.parameters()),
        "meta_params": int(weights.meta["num_params"]),
        "gmacs": float(weights.meta["_ops"]),
        "top1": float(weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]),
        "dropout": float(model.classifier[0].p),
        "bn_eps": float(bn_eps),
        "bn_momentum": float(bn_momentum),
        "drop_path": tuple(m.p for m in model.modules() if isinstance(m, StochasticDepth)),
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
            net = efficientnet_variant(variant)
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
