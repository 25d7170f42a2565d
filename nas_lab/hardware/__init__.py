"""Hardware-aware NAS: architectures judged by measured latency, not only by accuracy.

Measurement is the lower layer: this package measures, tables, predicts and models latency, and
imports no search method. What it holds, in the order lesson 09 teaches it:

1. ``timing``: :func:`measure_latency`, the median forward time of a model, measured properly
   with ``torch.utils.benchmark`` (warm-up calls first, a fixed thread count, blocks of calls long
   enough that the clock's own cost vanishes, the GPU synchronised before each clock read). The
   one latency timer of the library (:func:`time_forward` under it).
2. ``lookup``: :class:`LatencyTable`, a per-block latency lookup table, the predictor of
   ProxylessNAS (Cai, Zhu & Han, ICLR 2019, Section 3.3), FBNet (Wu et al., CVPR 2019) and
   Once-for-All (Cai et al., ICLR 2020, Section 3.4): measure each kind of block once, predict a
   network as the sum of its blocks, ``LAT(net) = LAT(stem) + sum_i LAT(block_i) + LAT(head)``.
3. ``predictor``: :class:`LearnedLatencyPredictor`, a ridge regression fitted to whole-network
   measurements, which can learn what the table's sum leaves out (a per-network overhead, caches
   shared by blocks).
4. ``roofline``: FLOPs against latency, :func:`conv_cost`, :func:`layer_costs` and
   :func:`conv_throughput` show why FLOPs are a poor proxy: a depthwise convolution does few FLOPs
   per byte it moves, so it runs far below the processor's peak. And :class:`DeviceProfile` and
   :func:`roofline_latency`: a roofline model (Williams, Waterman & Patterson, CACM 2009) for
   devices we cannot measure here. It is a *model*, not a measurement: each layer takes
   ``max(FLOPs / peak, bytes / bandwidth)`` plus a fixed launch cost.

The search methods of lesson 09 live with their kind: MnasNet's objective ``ACC * (LAT / T)^w``
(Tan et al., CVPR 2019, eq. 2; ``mnasnet_reward``, ``HARD``, ``MnasNetObjective``) in
:mod:`nas_lab.strategies.wrappers`; ProxylessNAS's differentiable expected latency and its
latency-aware supernet (``expected_latency``, ``LatencyAwareSupernet``, ``latency_aware_search``)
in :mod:`nas_lab.oneshot.proxylessnas`; the accuracy-latency front and the best architecture
under a limit (``latency_front``, ``pareto_pick``) in :mod:`nas_lab.pareto`.

``clock="cpu"`` (everywhere a latency is measured) times CPU time instead of wall time, for
machines shared with other jobs.
"""

from __future__ import annotations

from nas_lab.hardware.lookup import (
    BlockSpec,
    LatencyTable,
    block_specs,
    build_latency_table,
    measure_ends,
)
from nas_lab.hardware.predictor import (
    LearnedLatencyPredictor,
    block_features,
    measure_networks,
    prediction_errors,
)
from nas_lab.hardware.roofline import (
    BYTES_PER_VALUE,
    PROFILES,
    DeviceProfile,
    conv_cost,
    conv_throughput,
    layer_costs,
    layer_time_ms,
    roofline_latency,
)
from nas_lab.hardware.timing import (
    CLOCKS,
    MIN_BLOCK_SECONDS,
    measure_latency,
    time_forward,
    torch_threads,
)

__all__ = [
    "CLOCKS",
    "MIN_BLOCK_SECONDS",
    "torch_threads",
    "time_forward",
    "measure_latency",
    "BlockSpec",
    "LatencyTable",
    "block_specs",
    "measure_ends",
    "build_latency_table",
    "block_features",
    "LearnedLatencyPredictor",
    "prediction_errors",
    "measure_networks",
    "BYTES_PER_VALUE",
    "conv_cost",
    "layer_costs",
    "conv_throughput",
    "DeviceProfile",
    "PROFILES",
    "layer_time_ms",
    "roofline_latency",
]
