"""EfficientNet's compound scaling: grow depth, width and resolution together.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019.
A network is scaled by one coefficient ``phi`` (Section 3.3, eq. 3)::

    depth      d = alpha ** phi
    width      w = beta  ** phi
    resolution r = gamma ** phi
    subject to alpha * beta**2 * gamma**2 ~ 2,   alpha, beta, gamma >= 1

A convolution's FLOPs grow linearly with depth and with the square of width and of resolution,
so the constraint makes every step of ``phi`` double the FLOPs: ``(alpha beta^2 gamma^2)^phi ~
2^phi``. The recipe (Section 3.3): *step 1*, fix ``phi = 1`` (twice the resources) and grid-search
``alpha, beta, gamma`` on the small base network; *step 2*, keep them and scale to larger ``phi``.
The paper finds ``alpha = 1.2, beta = 1.1, gamma = 1.15`` for EfficientNet-B0.

The package: :mod:`~nas_lab.scaling.compound` (the rule, a base network of the course, the grid
search, the single-dimension baselines and the training study) and
:mod:`~nas_lab.scaling.efficientnet`, which builds EfficientNet-B0 to B7 from this library's
MBConv blocks and checks them against torchvision's multipliers (without downloading any weights).
"""

from __future__ import annotations

from nas_lab.scaling.compound import (
    DIMENSIONS,
    PAPER_COEFFICIENTS,
    BaseNet,
    GridResult,
    ScaledConfig,
    compound_multipliers,
    describe_phi,
    distinct_candidates,
    flops_factor,
    grid_candidates,
    grid_search,
    matched_configs,
    round_repeats,
    round_resolution,
    scale_arch,
    scaling_study,
    single_dimension_multiplier,
    train_scaled,
)
from nas_lab.scaling.efficientnet import (
    DROP_PATH,
    EFFICIENTNET_B0,
    VARIANT_SETTINGS,
    VARIANTS,
    StageConfig,
    VariantSettings,
    efficientnet,
    efficientnet_table,
    efficientnet_variant,
    implied_phi,
    load_torchvision_weights,
    scale_stages,
    torchvision_config,
    torchvision_names,
)

__all__ = [
    "PAPER_COEFFICIENTS",
    "compound_multipliers",
    "flops_factor",
    "round_repeats",
    "round_resolution",
    "scale_arch",
    "ScaledConfig",
    "BaseNet",
    "grid_candidates",
    "distinct_candidates",
    "GridResult",
    "grid_search",
    "DIMENSIONS",
    "single_dimension_multiplier",
    "matched_configs",
    "train_scaled",
    "scaling_study",
    "describe_phi",
    "StageConfig",
    "EFFICIENTNET_B0",
    "VARIANTS",
    "scale_stages",
    "efficientnet",
    "torchvision_config",
    "implied_phi",
    "efficientnet_table",
    "VariantSettings",
    "VARIANT_SETTINGS",
    "DROP_PATH",
    "efficientnet_variant",
    "torchvision_names",
    "load_torchvision_weights",
]
