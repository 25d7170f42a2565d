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
4. FLOPs against latency: :func:`layer_costs` and :func:`depthwise_vs_dense` show why FLOPs are a
   poor proxy: a depthwise convolution does few FLOPs per byte it moves, so it runs far below the
   processor's peak.
5. :func:`mnasnet_reward`: MnasNet's objective ``ACC * (LAT / T)^w`` (Tan et al., CVPR 2019,
   eq. 2), soft (``w = -0.07`` on both sides of the target) and hard (``0`` below, ``-1`` above).
6. :func:`expected_latency`: ProxylessNAS's differentiable latency, ``E[LAT] = sum_j p_j LAT_j``
   per block (Cai, Zhu & Han, ICLR 2019, eq. 4), added to the loss.
7. :class:`DeviceProfile` and :func:`roofline_latency`: a roofline model (Williams, Waterman &
   Patterson, CACM 2009) for devices we cannot measure here. It is a *model*, not a measurement:
   each layer takes ``max(FLOPs / peak, bytes / bandwidth)`` plus a fixed launch cost.
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

import torch
from torch import nn

__all__ = [
    "measure_latency",
    "BlockSpec",
    "LatencyTable",
    "build_latency_table",
]


# ---------------------------------------------------------------------------------------------
# 1. Measuring latency
# ---------------------------------------------------------------------------------------------

MIN_BLOCK_SECONDS = 1e-3  # one timed block lasts at least this long (see measure_latency)


def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


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


def _clock(device: torch.device) -> Callable[[], float]:
    """A wall clock that first waits for the GPU: CUDA kernels run asynchronously, so without
    ``torch.cuda.synchronize`` the clock would time the kernel *launches*, not the work."""
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
      process. On CUDA the clock synchronises the GPU before each read.
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
    target = torch.device(device) if device is not None else _model_device(model)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for, but no GPU is visible; use device='cpu'")
    net = model if _model_device(model) == target else copy.deepcopy(model).to(target)
    # Random, not zero, input: some kernels take shortcuts on zeros or denormals.
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=generator).to(target)
    clock = _clock(target)
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
    net: nn.Module, batch: int = 1, threads: int = 1, device: str = "cpu", input_size: int = 8
) -> float:
    """Latency (ms) of a ChainNet's fixed part, the two ends measured on their own: resize and
    stem on the input images, head, pool and classifier on the last stage's feature map."""
    last = block_specs(net, input_size)[-1]
    side = _out_size(last.size, last.stride)
    stem = measure_latency(
        _Stem(net), (batch, net.in_channels, input_size, input_size), threads, device
    )
    head = measure_latency(_Head(net), (batch, last.c_out, side, side), threads, device)
    return stem + head


def build_latency_table(
    space,
    width_mult: float = 1.0,
    resolution: int | None = None,
    batch: int = 1,
    threads: int = 1,
    device: str = "cpu",
    input_size: int = 8,
) -> LatencyTable:
    """Measure every block spec a :class:`~nas_lab.spaces.mbconv.ChainSpace` can use at this width
    multiplier and resolution, and its fixed ends: ``stages x 2 positions (first block, the
    rest) x kernels x expansions`` specs (45 distinct ones in the default space, whose first
    stage keeps 16 channels at stride 1, so its first block is like the others).

    ``input_size`` is the side of the images fed to the network (8 for digits); ``resolution``,
    when set, is the side the network resizes them to.
    """
    stem, _, widths = space.scaled_widths(width_mult)
    table = LatencyTable(threads=threads, batch=batch, device=str(device))
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
    table.ends["default"] = measure_ends(probe, batch, threads, device, input_size)
    return table


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
