"""Hardware-aware NAS: architectures judged by measured latency, not only by accuracy.

What this module builds, in the order lesson 09 teaches it:

1. :func:`measure_latency`: the median forward time of a model, measured properly with
   ``torch.utils.benchmark`` (warm-up calls first, a fixed thread count, blocks of calls long
   enough that the clock's own cost vanishes, the GPU synchronised before each clock read).
2. :class:`LatencyTable`: a per-block latency lookup table, the predictor of ProxylessNAS (Cai,
   Zhu & Han, ICLR 2019, Section 3.3), FBNet (Wu et al., CVPR 2019) and Once-for-All (Cai et al.,
   ICLR 2020, Section 3.4): measure each kind of block once, predict a network as the sum of its
   blocks, ``LAT(net) = LAT(stem) + sum_i LAT(block_i) + LAT(head)``.
3. :class:`LearnedLatencyPredictor`: a ridge regression fitted to whole-network measurements, which
   can learn what the table's sum leaves out (a per-network overhead, caches shared by blocks).
4. FLOPs against latency: :func:`conv_cost`, :func:`layer_costs` and :func:`conv_throughput` show
   why FLOPs are a poor proxy: a depthwise convolution does few FLOPs per byte it moves, so it runs
   far below the processor's peak.
5. :func:`mnasnet_reward`: MnasNet's objective ``ACC * (LAT / T)^w`` (Tan et al., CVPR 2019,
   eq. 2), soft (``w = -0.07`` on both sides of the target) and hard (``0`` below, ``-1`` above).
6. :func:`expected_latency`: ProxylessNAS's differentiable latency, ``E[LAT] = sum_j p_j LAT_j``
   per block (Cai, Zhu & Han, ICLR 2019, eq. 4), added to the loss of a
   :class:`LatencyAwareSupernet` by :func:`latency_aware_search`.
7. :class:`DeviceProfile` and :func:`roofline_latency`: a roofline model (Williams, Waterman &
   Patterson, CACM 2009) for devices we cannot measure here. It is a *model*, not a measurement:
   each layer takes ``max(FLOPs / peak, bytes / bandwidth)`` plus a fixed launch cost.
8. :func:`pareto_pick`: the accuracy-latency front and the best architecture under a limit.

``clock="cpu"`` (everywhere a latency is measured) times CPU time instead of wall time, for
machines shared with other jobs.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nas_lab.device import model_device
from nas_lab.pareto import latency_front, pareto_pick  # noqa: F401  (re-exported for lesson 09)
from nas_lab.strategies.wrappers import HARD, MnasNetObjective, mnasnet_reward  # noqa: F401

__all__ = [
    "measure_latency",
    "BlockSpec",
    "LatencyTable",
    "build_latency_table",
    "block_features",
    "LearnedLatencyPredictor",
    "prediction_errors",
    "measure_networks",
    "conv_cost",
    "layer_costs",
    "conv_throughput",
    "mnasnet_reward",
    "HARD",
    "MnasNetObjective",
    "expected_latency",
    "LatencyAwareSupernet",
    "latency_aware_search",
    "DeviceProfile",
    "PROFILES",
    "roofline_latency",
    "latency_front",
    "pareto_pick",
]


# ---------------------------------------------------------------------------------------------
# 1. Measuring latency
# ---------------------------------------------------------------------------------------------

MIN_BLOCK_SECONDS = 1e-3  # one timed block lasts at least this long (see measure_latency)


def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the body with ``threads`` intra-op CPU threads, then restore the previous count.

    A latency is only meaningful with its thread count: the same network on 1 and on 4 threads
    can differ several-fold, and tiny networks often run *faster* on one thread."""
    threads = _check_positive_int("threads", threads)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


CLOCKS = ("wall", "cpu")


def _clock(device: torch.device, kind: str = "wall") -> Callable[[], float]:
    """A wall clock that first waits for the GPU: CUDA kernels run asynchronously, so without
    ``torch.cuda.synchronize`` the clock would time the kernel *launches*, not the work.

    ``kind="cpu"`` (CPU only) reads the process's CPU time instead (``time.process_time``): on a
    machine shared with other jobs, the wall clock also counts the time the OS gave to someone
    else, the CPU clock only the time spent computing this model."""
    if kind not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, got {kind!r}")
    if kind == "cpu":
        if device.type != "cpu":
            raise ValueError("clock='cpu' times CPU work only; use clock='wall' on a GPU")
        return time.process_time
    if device.type == "cuda":

        def clock() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()

        return clock
    return time.perf_counter


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    threads: int = 1,
    device: str | torch.device | None = None,
    warmup: int = 5,
    repeats: int = 15,
    clock: str = "wall",
) -> float:
    """Median forward latency of ``model`` in **milliseconds**, on an input of ``input_shape``
    (batch dimension included, e.g. ``(1, 1, 8, 8)``).

    The protocol, and why:

    - eval mode and ``torch.no_grad()``: deployment latency, no autograd bookkeeping (the
      model's train/eval mode is restored afterwards);
    - ``threads`` CPU threads, fixed (see :func:`torch_threads`);
    - ``device``: where to run; ``None`` runs where the model's parameters already are. A model on
      another device is copied there, so the caller's model is never moved;
    - ``warmup`` untimed calls: the first calls allocate memory, pick kernels (cuDNN) and fill
      caches, and would otherwise be counted;
    - then ``repeats`` timed blocks with ``torch.utils.benchmark.Timer``; each block runs the model
      enough times to last at least 1 ms, so the clock's own cost is negligible, and yields the
      mean time of one call. The median over blocks ignores the odd block slowed down by another
      process. On CUDA the clock synchronises the GPU before each read;
    - ``clock="cpu"`` times CPU time instead of wall time (see :func:`_clock`): use it when
      other jobs share the machine and the wall clock would count their time too.
    """
    from torch.utils.benchmark import Timer

    shape = tuple(input_shape)
    if len(shape) < 2 or not all(isinstance(s, Integral) and s >= 1 for s in shape):
        raise ValueError(
            "input_shape must be positive integers with the batch dimension first, "
            f"e.g. (1, 1, 8, 8); got {tuple(input_shape)!r}"
        )
    threads = _check_positive_int("threads", threads)
    warmup = _check_positive_int("warmup", warmup, minimum=0)
    repeats = _check_positive_int("repeats", repeats)
    target = torch.device(device) if device is not None else model_device(model)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for, but no GPU is visible; use device='cpu'")
    net = model if model_device(model) == target else copy.deepcopy(model).to(target)
    # Random, not zero, input: some kernels take shortcuts on zeros or denormals.
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=generator).to(target)
    clock = _clock(target, clock)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), torch_threads(threads):
            for _ in range(warmup):
                net(x)
            start = clock()
            net(x)
            once = max(clock() - start, 1e-7)
            number = max(1, math.ceil(MIN_BLOCK_SECONDS / once))
            timer = Timer("net(x)", globals={"net": net, "x": x}, timer=clock, num_threads=threads)
            times = [timer.timeit(number).mean for _ in range(repeats)]
    finally:
        net.train(was_training)
    return statistics.median(times) * 1e3


# ---------------------------------------------------------------------------------------------
# 2. A per-block latency lookup table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class BlockSpec:
    """Everything that decides an MBConv block's latency: its channels, kernel, expansion,
    stride, and the side of the (square) feature map it reads. Two blocks with equal specs do
    the same work, so the lookup table measures each spec once."""

    c_in: int
    c_out: int
    kernel: int
    expansion: int
    stride: int
    size: int

    def __str__(self) -> str:
        return (
            f"{self.c_in}>{self.c_out} k{self.kernel}e{self.expansion} s{self.stride} @{self.size}"
        )

    def build(self, seed: int = 0) -> nn.Module:
        """The block itself, with seeded weights (latency does not depend on the values, but a
        seeded build repeats exactly)."""
        from nas_lab.spaces.mbconv import MBConvBlock

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return MBConvBlock(self.c_in, self.c_out, self.kernel, self.expansion, self.stride)


def _out_size(size: int, stride: int) -> int:
    """Side of a feature map after a 'same'-padded convolution of this stride."""
    return (size + stride - 1) // stride


@dataclass
class LatencyTable:
    """Measured latency (ms) of every block spec a network can use, plus its fixed ends.

    ``stem`` is the input resize (if any) and the first convolution; ``head`` is the 1x1 head
    convolution, pooling and classifier. :meth:`predict` adds them up:
    ``LAT(net) ~ stem + sum over blocks of blocks[spec] + head`` (ProxylessNAS, Section 3.3).

    With ``measure_missing=True`` a spec not yet in the table is measured on first use (with the
    table's own ``threads``, ``batch`` and ``device``), so one table serves any network whose
    blocks are MBConv blocks (an elastic supernet's subnets included).
    """

    blocks: dict[BlockSpec, float] = field(default_factory=dict)
    ends: dict[str, float] = field(default_factory=dict)
    threads: int = 1
    batch: int = 1
    device: str = "cpu"
    measure_missing: bool = True
    warmup: int = 5
    repeats: int = 15
    clock: str = "wall"

    def block(self, spec: BlockSpec) -> float:
        """The latency of one block spec, measured now if the table lacks it."""
        if spec not in self.blocks:
            if not self.measure_missing:
                raise KeyError(
                    f"block {spec} is not in the latency table; build the table for this space "
                    "(build_latency_table) or set measure_missing=True"
                )
            self.blocks[spec] = measure_latency(
                spec.build(),
                (self.batch, spec.c_in, spec.size, spec.size),
                threads=self.threads,
                device=self.device,
                warmup=self.warmup,
                repeats=self.repeats,
                clock=self.clock,
            )
        return self.blocks[spec]

    def predict_specs(self, specs: Sequence[BlockSpec], ends: str = "default") -> float:
        """The table's prediction for a network made of ``specs`` between the ends ``ends``."""
        if ends not in self.ends:
            known = ", ".join(sorted(self.ends)) or "none yet"
            raise KeyError(f"the table has no measured ends {ends!r} (it has: {known})")
        return self.ends[ends] + sum(self.block(spec) for spec in specs)

    def predict(self, net: nn.Module, ends: str = "default", input_size: int = 8) -> float:
        """Predicted latency (ms) of a built :class:`~nas_lab.spaces.mbconv.ChainNet` fed
        ``input_size`` images (8 for digits)."""
        return self.predict_specs(block_specs(net, input_size), ends)

    # -- saving --------------------------------------------------------------------------------

    def to_json(self, path: str | Path) -> None:
        """Save as JSON: a table is measured once per machine and reused."""
        payload = {
            "blocks": [[*asdict(spec).values(), ms] for spec, ms in sorted(self.blocks.items())],
            "ends": self.ends,
            "threads": self.threads,
            "batch": self.batch,
            "device": self.device,
            "clock": self.clock,
        }
        Path(path).write_text(json.dumps(payload, indent=1))

    @classmethod
    def from_json(cls, path: str | Path) -> LatencyTable:
        payload = json.loads(Path(path).read_text())
        blocks = {BlockSpec(*row[:6]): float(row[6]) for row in payload["blocks"]}
        return cls(
            blocks,
            dict(payload["ends"]),
            payload["threads"],
            payload["batch"],
            payload["device"],
            clock=payload.get("clock", "wall"),
        )


def block_specs(net: nn.Module, input_size: int = 8) -> list[BlockSpec]:
    """The spec of every MBConv block of a ChainNet, in order, following the feature map's side
    from the input (``net.resolution`` when set, else ``input_size``) through the strides."""
    size = _out_size(net.resolution or input_size, net.stem[0].stride[0])
    specs = []
    for block in net.blocks():
        specs.append(
            BlockSpec(block.c_in, block.c_out, block.kernel, block.expansion, block.stride, size)
        )
        size = _out_size(size, block.stride)
    return specs


class _Stem(nn.Module):
    """A ChainNet's input end: the resize (when the net has a resolution) and the stem conv."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.net.resolution
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            x = nn.functional.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False
            )
        return self.net.stem(x)


class _Head(nn.Module):
    """A ChainNet's output end: 1x1 head conv, global average pool, classifier."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.classifier(self.net.pool(self.net.head(x)).flatten(1))


def measure_ends(
    net: nn.Module,
    batch: int = 1,
    threads: int = 1,
    device: str = "cpu",
    input_size: int = 8,
    clock: str = "wall",
) -> float:
    """Latency (ms) of a ChainNet's fixed part, the two ends measured on their own: resize and
    stem on the input images, head, pool and classifier on the last stage's feature map."""
    last = block_specs(net, input_size)[-1]
    side = _out_size(last.size, last.stride)
    shape = (batch, net.in_channels, input_size, input_size)
    stem = measure_latency(_Stem(net), shape, threads, device, clock=clock)
    head = measure_latency(
        _Head(net), (batch, last.c_out, side, side), threads, device, clock=clock
    )
    return stem + head


def build_latency_table(
    space,
    width_mult: float = 1.0,
    resolution: int | None = None,
    batch: int = 1,
    threads: int = 1,
    device: str = "cpu",
    input_size: int = 8,
    clock: str = "wall",
) -> LatencyTable:
    """Measure every block spec a :class:`~nas_lab.spaces.mbconv.ChainSpace` can use at this width
    multiplier and resolution, and its fixed ends: ``stages x 2 positions (first block, the
    rest) x kernels x expansions`` specs (45 distinct ones in the default space, whose first
    stage keeps 16 channels at stride 1, so its first block is like the others).

    ``input_size`` is the side of the images fed to the network (8 for digits); ``resolution``,
    when set, is the side the network resizes them to. ``clock``: see :func:`measure_latency`.
    """
    stem, _, widths = space.scaled_widths(width_mult)
    table = LatencyTable(threads=threads, batch=batch, device=str(device), clock=clock)
    size, c_in = resolution or input_size, stem  # the stem keeps the side (stride 1)
    for width, stride in zip(widths, space.strides, strict=True):
        after = _out_size(size, stride)
        for kernel in space.kernels:
            for expansion in space.expansions:
                table.block(BlockSpec(c_in, width, kernel, expansion, stride, size))
                if max(space.depths) > 1:
                    table.block(BlockSpec(width, width, kernel, expansion, 1, after))
        c_in, size = width, after
    probe = space.build(space.sample(0), width_mult, resolution, seed=0)
    table.ends["default"] = measure_ends(probe, batch, threads, device, input_size, clock)
    return table


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------------------------------------
# 3. A learned latency predictor
# ---------------------------------------------------------------------------------------------


def block_features(space, arch) -> np.ndarray:
    """The features of a learned latency predictor for a :class:`ChainSpace` architecture: per
    stage, a one-hot ``(kernel, expansion)`` of its first block (the one that downsamples and
    changes the width) and the *counts* of each ``(kernel, expansion)`` among its other blocks.

    These are exactly the table's terms, so a linear model on them is a lookup table learned
    from whole-network measurements; its intercept absorbs the fixed ends and whatever per-network
    overhead the block-by-block measurement misses."""
    space.validate(arch)
    choices = [(k, e) for k in space.kernels for e in space.expansions]
    index = {choice: i for i, choice in enumerate(choices)}
    out = np.zeros((space.num_stages, 2, len(choices)))
    for s, stage in enumerate(arch.stages):
        for b, choice in enumerate(stage.blocks):
            out[s, min(b, 1), index[choice]] += 1.0
    return out.reshape(-1)


@dataclass
class LearnedLatencyPredictor:
    """Ridge regression from features of an architecture to its measured latency (ms).

    ``fit`` solves ``min_w ||X w + b - y||^2 + ridge ||w||^2`` in closed form (the intercept
    ``b`` is not penalised); the course's counterpart of the latency predictors of FBNet (Wu et
    al., CVPR 2019) and Once-for-All (Cai et al., ICLR 2020, Section 3.4), which fit a model to
    measurements instead of adding up a table."""

    ridge: float = 1e-3
    weights: np.ndarray | None = None
    intercept: float = 0.0

    def fit(self, features: np.ndarray, latencies: Sequence[float]) -> LearnedLatencyPredictor:
        x = np.asarray(features, dtype=float)
        y = np.asarray(latencies, dtype=float)
        if x.ndim != 2 or len(x) != len(y) or len(y) < 2:
            raise ValueError(
                "fit needs a 2-D feature matrix with one row per measured latency (at least 2); "
                f"got features {x.shape} and {y.shape} latencies"
            )
        if not _is_real(self.ridge) or self.ridge < 0:
            raise ValueError(f"ridge must be a number >= 0, got {self.ridge!r}")
        x_mean, y_mean = x.mean(axis=0), y.mean()
        xc = x - x_mean
        gram = xc.T @ xc + self.ridge * np.eye(x.shape[1])
        self.weights = np.linalg.lstsq(gram, xc.T @ (y - y_mean), rcond=None)[0]
        self.intercept = float(y_mean - x_mean @ self.weights)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise ValueError("the predictor is not fitted yet: call fit(features, latencies)")
        x = np.atleast_2d(np.asarray(features, dtype=float))
        if x.shape[1] != len(self.weights):
            raise ValueError(f"expected {len(self.weights)} features per row, got {x.shape[1]}")
        return x @ self.weights + self.intercept


def prediction_errors(predicted: Sequence[float], measured: Sequence[float]) -> dict:
    """How far predictions are from measurements: mean absolute percentage error, RMSE (ms),
    the largest relative error, and Kendall's tau (a search only needs the order right)."""
    from scipy.stats import kendalltau

    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    if p.shape != m.shape or p.ndim != 1 or len(p) < 2:
        raise ValueError(
            f"need two equal-length 1-D sequences of >= 2 values, got {p.shape}, {m.shape}"
        )
    relative = np.abs(p - m) / m
    return {
        "mape": float(relative.mean()),
        "max_rel": float(relative.max()),
        "rmse_ms": float(np.sqrt(np.mean((p - m) ** 2))),
        "kendall_tau": float(kendalltau(p, m).statistic),
    }


def measure_networks(
    space,
    archs: Sequence,
    threads: int = 1,
    device: str = "cpu",
    input_size: int = 8,
    batch: int = 1,
    clock: str = "wall",
) -> np.ndarray:
    """Measured latency (ms) of each architecture's whole network, built with seed 0."""
    from tqdm.auto import tqdm

    return np.array(
        [
            measure_latency(
                space.build(arch, seed=0),
                (batch, space.in_channels, input_size, input_size),
                threads,
                device,
                clock=clock,
            )
            for arch in tqdm(archs, desc="measure", leave=False)
        ]
    )


# ---------------------------------------------------------------------------------------------
# 4. FLOPs against latency, layer by layer
# ---------------------------------------------------------------------------------------------

BYTES_PER_VALUE = 4  # float32


def conv_cost(
    c_in: int, c_out: int, kernel: int, side: int, stride: int = 1, groups: int = 1
) -> dict:
    """FLOPs and bytes moved by one 'same' convolution on a ``side x side`` input, batch 1.

    FLOPs are ``2 x`` multiply-adds: ``out_side^2 * c_out * (c_in / groups) * k^2``. Bytes count
    what must cross the memory bus at least once: the input, the weights and the output, in
    float32. Their ratio, the *arithmetic intensity* (FLOPs per byte), decides whether a layer is
    limited by the processor's arithmetic or by memory (Williams, Waterman & Patterson, CACM
    2009). A depthwise convolution (``groups == c_in == c_out``) does ``k^2`` multiply-adds per
    output value where a dense one does ``c_in k^2``, for about the same bytes: its intensity is
    ``c_in`` times lower."""
    for name, value in (("c_in", c_in), ("c_out", c_out), ("kernel", kernel), ("side", side)):
        _check_positive_int(name, value)
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide c_in={c_in} and c_out={c_out}")
    out = _out_size(side, stride)
    macs = out * out * c_out * (c_in // groups) * kernel * kernel
    values = side * side * c_in + c_out * (c_in // groups) * kernel * kernel + out * out * c_out
    flops, nbytes = 2 * macs, BYTES_PER_VALUE * values
    return {"flops": flops, "bytes": nbytes, "intensity": flops / nbytes}


def layer_costs(net: nn.Module, input_size: int = 8) -> list[dict]:
    """Every convolution of a ChainNet with its FLOPs, bytes and intensity (:func:`conv_cost`),
    labelled by its role: ``stem``, ``expand``, ``depthwise``, ``project``, ``head``."""
    rows: list[dict] = []

    def add(role: str, conv: nn.Conv2d, side: int) -> int:
        k, s = conv.kernel_size[0], conv.stride[0]
        cost = conv_cost(conv.in_channels, conv.out_channels, k, side, s, conv.groups)
        rows.append({"role": role, "side": side, **cost})
        return _out_size(side, s)

    side = add("stem", net.stem[0], net.resolution or input_size)
    for block in net.blocks():
        if block.expand is not None:
            add("expand", block.expand[0], side)
        after = add("depthwise", block.depthwise[0], side)
        add("project", block.project[0], after)
        side = after
    add("head", net.head[0], side)
    return rows


def conv_throughput(
    c_in: int,
    c_out: int,
    kernel: int,
    side: int,
    groups: int = 1,
    threads: int = 1,
    device: str = "cpu",
    clock: str = "wall",
) -> dict:
    """Measure one convolution: its :func:`conv_cost` plus the measured ms and the achieved
    GFLOP/s. Comparing a depthwise and a dense convolution of similar FLOPs shows how far FLOPs
    are from time."""
    cost = conv_cost(c_in, c_out, kernel, side, 1, groups)
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups, bias=False)
    ms = measure_latency(conv, (1, c_in, side, side), threads, device, clock=clock)
    return {**cost, "ms": ms, "gflops_per_s": cost["flops"] / (ms * 1e-3) / 1e9}


# ---------------------------------------------------------------------------------------------
# 5. The MnasNet reward
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# 6. ProxylessNAS's expected latency
# ---------------------------------------------------------------------------------------------


def expected_latency(logits: torch.Tensor, latencies: torch.Tensor) -> torch.Tensor:
    """Cai, Zhu & Han (ProxylessNAS, ICLR 2019), eq. 4: each searchable block ``i`` picks
    candidate ``j`` with probability ``p_ij = softmax(logits_i)_j``, so its expected latency is
    ``sum_j p_ij LAT_ij`` and the network's is the sum over blocks (plus fixed ends, which do not
    depend on the choice). Differentiable in ``logits``: ``dE/dlogit_ij = p_ij (LAT_ij - E_i)``,
    so the gradient pushes probability towards the candidates faster than the block's average.

    ``logits`` and ``latencies`` are ``(blocks, candidates)`` tensors."""
    if logits.shape != latencies.shape or logits.dim() != 2:
        raise ValueError(
            "logits and latencies must both be (blocks, candidates) tensors; "
            f"got {tuple(logits.shape)} and {tuple(latencies.shape)}"
        )
    return (torch.softmax(logits, dim=-1) * latencies).sum()


class MixedBlock(nn.Module):
    """One searchable position: every candidate MBConv block, weighted by the softmax of the
    architecture logits (the continuous relaxation of DARTS, Liu et al., ICLR 2019, and FBNet)."""

    def __init__(self, candidates: Sequence[nn.Module]) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(candidates)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.candidates, strict=True))


class LatencyAwareSupernet(nn.Module):
    """A ChainNet whose every block is a :class:`MixedBlock` over ``choices`` (``(kernel,
    expansion)`` pairs), with one row of architecture logits per block. Its latency table
    ``latencies[i, j]`` is the lookup-table latency of candidate ``j`` at position ``i``."""

    def __init__(self, space, choices: Sequence[tuple[int, int]], table: LatencyTable) -> None:
        super().__init__()
        from nas_lab.spaces.mbconv import MBConvBlock

        stem, head, widths = space.scaled_widths(1.0)
        depth = max(space.depths)
        probe = space.build(space.sample(0))
        self.stem, self.head = probe.stem, probe.head
        self.pool, self.classifier = probe.pool, probe.classifier
        self.choices = [tuple(c) for c in choices]
        blocks, rows, c_in, size = [], [], stem, 8
        for width, stride in zip(widths, space.strides, strict=True):
            for b in range(depth):
                s = stride if b == 0 else 1
                specs = [BlockSpec(c_in, width, k, e, s, size) for k, e in self.choices]
                blocks.append(MixedBlock([MBConvBlock(c_in, width, k, e, s) for k, e in choices]))
                rows.append([table.block(spec) for spec in specs])
                c_in, size = width, _out_size(size, s)
        self.blocks = nn.ModuleList(blocks)
        self.register_buffer("latencies", torch.tensor(rows, dtype=torch.float32))
        self.arch_logits = nn.Parameter(torch.zeros(len(blocks), len(self.choices)))
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.arch_logits, dim=-1)
        x = self.stem(x)
        for block, w in zip(self.blocks, weights, strict=True):
            x = block(x, w)
        return self.classifier(self.pool(self.head(x)).flatten(1))

    def expected_latency(self) -> torch.Tensor:
        return expected_latency(self.arch_logits, self.latencies)

    def derived(self) -> list[tuple[int, int]]:
        """The most likely candidate of each block, as ProxylessNAS derives the final network."""
        return [self.choices[int(j)] for j in self.arch_logits.argmax(dim=-1)]


def latency_aware_search(
    space,
    splits,
    table: LatencyTable,
    choices: Sequence[tuple[int, int]],
    latency_weight: float,
    epochs: int = 4,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> dict:
    """Train a :class:`LatencyAwareSupernet` on ``loss = CE + latency_weight * E[LAT] / LAT_0``
    (ProxylessNAS, Section 3.3; ``LAT_0`` is the expected latency of the uniform distribution,
    so ``latency_weight`` is unit-free). Weights (SGD) and architecture logits (Adam) are updated
    together on each training batch, a one-level simplification of the paper's alternating
    updates. Returns the derived blocks, their probabilities and the expected latency."""
    from nas_lab.device import default_device
    from nas_lab.train import batches, evaluate, seed_everything

    seed_everything(seed)
    device = torch.device(device) if device is not None else default_device()
    net = LatencyAwareSupernet(space, choices, table).to(device)
    reference = float(net.expected_latency().detach())
    weights = [p for n, p in net.named_parameters() if n != "arch_logits"]
    opt_w = torch.optim.SGD(weights, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    opt_a = torch.optim.Adam([net.arch_logits], lr=0.05)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for x, y in batches(splits.train, batch_size, generator, device):
            loss = nn.functional.cross_entropy(net(x), y)
            loss = loss + latency_weight * net.expected_latency() / reference
            opt_w.zero_grad()
            opt_a.zero_grad()
            loss.backward()
            opt_w.step()
            opt_a.step()
    probs = torch.softmax(net.arch_logits.detach(), dim=-1).cpu().numpy()
    expected = float(net.expected_latency().detach())
    return {
        "derived": net.derived(),
        "probs": probs,
        "expected_latency_ms": expected + table.ends.get("default", 0.0),
        "uniform_latency_ms": reference + table.ends.get("default", 0.0),
        "supernet_val_acc": evaluate(net, splits.val, device=device),
    }


# ---------------------------------------------------------------------------------------------
# 7. A roofline model for devices we cannot measure
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceProfile:
    """A device as the roofline model sees it (Williams, Waterman & Patterson, "Roofline: an
    insightful visual performance model for multicore architectures", CACM 2009): a peak
    arithmetic rate, a memory bandwidth, and a fixed cost per layer (kernel launch, dispatch).

    These numbers are *assumptions of a model*, round figures of the right order for a class of
    device, not the specification or a measurement of any product."""

    name: str
    peak_gflops: float  # GFLOP/s
    bandwidth_gbs: float  # GB/s
    overhead_us: float  # per layer

    @property
    def ridge_intensity(self) -> float:
        """FLOPs per byte where the two roofs meet: below it, a layer is memory-bound."""
        return self.peak_gflops / self.bandwidth_gbs


PROFILES = {
    "phone CPU core (model)": DeviceProfile("phone CPU core (model)", 10.0, 5.0, 2.0),
    "edge GPU (model)": DeviceProfile("edge GPU (model)", 1_000.0, 50.0, 20.0),
    "server GPU (model)": DeviceProfile("server GPU (model)", 20_000.0, 1_500.0, 5.0),
}


def layer_time_ms(flops: float, nbytes: float, profile: DeviceProfile) -> float:
    """One layer under the roofline: ``max(FLOPs / peak, bytes / bandwidth) + overhead``."""
    compute = flops / (profile.peak_gflops * 1e9)
    memory = nbytes / (profile.bandwidth_gbs * 1e9)
    return (max(compute, memory) + profile.overhead_us * 1e-6) * 1e3


def roofline_latency(net: nn.Module, profile: DeviceProfile, input_size: int = 8) -> float:
    """Modelled latency (ms) of a ChainNet on ``profile``: the sum of :func:`layer_time_ms` over
    its convolutions (:func:`layer_costs`; pooling and the classifier are negligible here).
    A model, not a measurement: it ignores caches, operator fusion and thread scheduling."""
    return sum(
        layer_time_ms(row["flops"], row["bytes"], profile) for row in layer_costs(net, input_size)
    )
