"""A per-block latency lookup table (lesson 09, step 2).

:class:`LatencyTable` is the predictor of ProxylessNAS (Cai, Zhu & Han, ICLR 2019, Section 3.3),
FBNet (Wu et al., CVPR 2019) and Once-for-All (Cai et al., ICLR 2020, Section 3.4): measure each
kind of block once, predict a network as the sum of its blocks,
``LAT(net) = LAT(stem) + sum_i LAT(block_i) + LAT(head)``. :func:`build_latency_table` measures
every block spec a :class:`~nas_lab.spaces.mbconv.ChainSpace` can use, :func:`measure_ends` the
fixed ends, and :func:`block_specs` reads the specs of a built network.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from nas_lab.hardware.timing import measure_latency
from nas_lab.spaces.mbconv import MBConvBlock, block_slots, out_side, seeded_init


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
        return seeded_init(
            seed,
            lambda: MBConvBlock(self.c_in, self.c_out, self.kernel, self.expansion, self.stride),
        )


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
    size = out_side(net.resolution or input_size, net.stem[0].stride[0])
    specs = []
    for block in net.blocks():
        specs.append(
            BlockSpec(block.c_in, block.c_out, block.kernel, block.expansion, block.stride, size)
        )
        size = out_side(size, block.stride)
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
    side = out_side(last.size, last.stride)
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
    # Two positions per stage stand for all its blocks: the first (the stage's stride and width)
    # and one after it (stride 1, width to width). The stem keeps the side (stride 1).
    positions = min(max(space.depths), 2)
    slots = block_slots(
        stem, widths, space.strides, [positions] * len(widths), resolution or input_size
    )
    for _, stage in itertools.groupby(slots, key=lambda slot: slot.stage):
        stage = list(stage)
        for kernel in space.kernels:
            for expansion in space.expansions:
                for s in stage:
                    table.block(BlockSpec(s.c_in, s.c_out, kernel, expansion, s.stride, s.side))
    probe = space.build(space.sample(0), width_mult, resolution, seed=0)
    table.ends["default"] = measure_ends(probe, batch, threads, device, input_size, clock)
    return table
