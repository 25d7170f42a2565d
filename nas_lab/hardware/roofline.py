"""FLOPs against latency, and a roofline model for devices we cannot measure (lesson 09, steps
4 and 7).

:func:`conv_cost`, :func:`layer_costs` and :func:`conv_throughput` show why FLOPs are a poor
proxy: a depthwise convolution does few FLOPs per byte it moves, so it runs far below the
processor's peak.

:class:`DeviceProfile` and :func:`roofline_latency`: a roofline model (Williams, Waterman &
Patterson, CACM 2009) for devices we cannot measure here. It is a *model*, not a measurement:
each layer takes ``max(FLOPs / peak, bytes / bandwidth)`` plus a fixed launch cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from nas_lab.arguments import check_int
from nas_lab.hardware.timing import measure_latency
from nas_lab.spaces.mbconv import out_side

# ---------------------------------------------------------------------------------------------
# FLOPs against latency, layer by layer
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
        check_int(name, value)
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide c_in={c_in} and c_out={c_out}")
    out = out_side(side, stride)
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
        return out_side(side, s)

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
# A roofline model for devices we cannot measure
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
