"""Once-for-All: train one elastic supernet, then deploy many subnets without retraining.

After Cai, Gan, Wang, Zhang & Han, "Once-for-All: Train One Network and Specialize it for
Efficient Deployment", ICLR 2020. The modules read in the paper's order:

1. ``elastic``: **elastic kernel**, **width** and **depth** (Section 3.3): kernel transformation
   matrices, hidden channels sorted by importance, a stage running its first ``D`` blocks; the
   supernet, :class:`OFASupernet`.
2. ``shrinking``: **progressive shrinking** (Section 3.2, Figure 3): train the largest network,
   then let the kernel, then the depth, then the expansion shrink, each phase sampling subnets and
   distilling from the largest network's soft targets (Hinton, Vinyals & Dean, "Distilling the
   Knowledge in a Neural Network", NIPS Deep Learning Workshop 2014).
3. ``subnets``: **subnets without retraining**: :func:`extract_subnet` copies a subnet's weights
   into a stand-alone :class:`~nas_lab.spaces.mbconv.ChainNet`; :func:`recalibrate_bn`
   re-estimates its BatchNorm statistics on a few batches (the supernet's running statistics mix
   all subnets).
4. ``search``: **search** (Section 3.4): an MLP accuracy predictor on the architecture encoding,
   and an evolutionary search for the best predicted subnet under a latency limit, the latency
   read from a per-block lookup table (:class:`~nas_lab.hardware.LatencyTable`).
5. ``store``: **shipping**: ``nas-lab ofa build`` trains the supernet and the lesson's
   from-scratch baselines and saves them with a manifest; :func:`load_supernet` checks the sha256
   and loads it.

The architectures are those of :class:`~nas_lab.spaces.mbconv.ChainSpace` (kernel 3/5/7,
expansion 3/4/6, depth 2/3/4 per stage); a subnet is a :class:`~nas_lab.spaces.mbconv.ChainArch`.
The accuracy-latency front and the best subnet under a limit are ``nas_lab.pareto``'s; the
lesson's figure and slider are ``nas_lab.widgets``'.

    from nas_lab.oneshot import ofa
    supernet, manifest = ofa.load_supernet()
"""

from __future__ import annotations

from nas_lab.oneshot.ofa.elastic import (
    ElasticMBConv,
    OFASupernet,
    centre_crop,
    channel_order,
    extreme_arch,
    transform_kernel,
)
from nas_lab.oneshot.ofa.search import (
    AccuracyPredictor,
    SearchResult,
    arch_block_specs,
    crossover,
    evolutionary_search,
    fit_predictor,
    mutate,
)
from nas_lab.oneshot.ofa.shrinking import (
    PHASES,
    ShrinkingRecipe,
    distillation_loss,
    phase_space,
    train_phase,
    train_supernet,
)
from nas_lab.oneshot.ofa.store import (
    BUILD_COMMAND,
    SUPERNET,
    build,
    load_supernet,
    reference_subnets,
    save_supernet,
    space_config,
    train_from_scratch,
)
from nas_lab.oneshot.ofa.subnets import calibration_images, extract_subnet, subnet_accuracy
from nas_lab.train import recalibrate_bn  # Section 3.4's step, shared with ProxylessNAS

__all__ = [
    # elastic: kernel, width and depth
    "centre_crop",
    "transform_kernel",
    "channel_order",
    "ElasticMBConv",
    "extreme_arch",
    "OFASupernet",
    # shrinking: progressive shrinking with distillation
    "PHASES",
    "distillation_loss",
    "phase_space",
    "ShrinkingRecipe",
    "train_phase",
    "train_supernet",
    # subnets: without retraining
    "extract_subnet",
    "recalibrate_bn",
    "calibration_images",
    "subnet_accuracy",
    # search: predictor and evolution under a latency limit
    "AccuracyPredictor",
    "fit_predictor",
    "arch_block_specs",
    "mutate",
    "crossover",
    "SearchResult",
    "evolutionary_search",
    # store: build, save, verify, load
    "SUPERNET",
    "BUILD_COMMAND",
    "space_config",
    "save_supernet",
    "load_supernet",
    "reference_subnets",
    "train_from_scratch",
    "build",
]
