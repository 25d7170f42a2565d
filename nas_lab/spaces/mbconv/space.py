"""The chain search space: choices per stage and block, sampling, mutation, encoding, building.

The choices of Once-for-All (Cai et al., ICLR 2020, Section 3.2): kernel 3/5/7, expansion 3/4/6,
depth 2/3/4 per stage, with the widths and strides of the stages fixed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from nas_lab.arguments import check_int
from nas_lab.spaces import as_rng
from nas_lab.spaces.mbconv.block import (
    _activation,
    _check_kernel,
    _check_se_ratio,
    make_divisible,
)
from nas_lab.spaces.mbconv.chain import ChainArch, ChainNet, Stage


def seeded_init(seed: int | None, make: Callable[[], nn.Module]) -> nn.Module:
    """Call ``make``; with a seed, initialise its weights from that seed and leave torch's global
    random state as it was (without one, draw from the global state as torch always does)."""
    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def _check_choices(
    name: str, values: Sequence[int], check: Callable[[str, object], int] = check_int
) -> tuple[int, ...]:
    values = tuple(check(f"{name}[{i}]", v) for i, v in enumerate(values))
    if not values or len(set(values)) != len(values):
        raise ValueError(f"{name} must be a non-empty sequence of distinct values, got {values}")
    return values


class ChainSpace:
    """The space of chain networks: per stage a depth, per block a kernel and an expansion.

    The defaults fit 8x8 digits: three stages of widths 16/24/32 and strides 1/2/2 (8x8 -> 8x8 ->
    4x4 -> 2x2), so a forward pass is cheap, with the choices of Once-for-All (Cai et al., ICLR
    2020): kernels 3/5/7, expansions 3/4/6, depths 2/3/4. ``activation``, ``se_ratio`` and
    ``stem_stride`` give EfficientNet-style members (``activation="swish", se_ratio=0.25``);
    MobileNetV3's hard-swish is available (``activation="hswish"``), but not its
    squeeze-excite, per-block activations or head, so no member is a MobileNetV3.
    """

    def __init__(
        self,
        kernels: Sequence[int] = (3, 5, 7),
        expansions: Sequence[int] = (3, 4, 6),
        depths: Sequence[int] = (2, 3, 4),
        widths: Sequence[int] = (16, 24, 32),
        strides: Sequence[int] = (1, 2, 2),
        stem_channels: int = 16,
        head_channels: int = 64,
        num_classes: int = 10,
        in_channels: int = 1,
        activation: str = "relu6",
        se_ratio: float = 0.0,
        stem_stride: int = 1,
    ) -> None:
        self.kernels = _check_choices("kernels", kernels, _check_kernel)
        self.expansions = _check_choices("expansions", expansions)
        self.depths = _check_choices("depths", depths)
        self.widths = tuple(check_int(f"widths[{i}]", w) for i, w in enumerate(widths))
        self.strides = tuple(strides)
        if not self.widths or len(self.widths) != len(self.strides):
            raise ValueError(
                f"need one stride per stage width: got {len(self.widths)} widths "
                f"and {len(self.strides)} strides"
            )
        for i, stride in enumerate(self.strides):
            if stride not in (1, 2):
                raise ValueError(f"strides[{i}] must be 1 or 2, got {stride!r}")
        self.stem_channels = check_int("stem_channels", stem_channels)
        self.head_channels = check_int("head_channels", head_channels)
        self.num_classes = check_int("num_classes", num_classes)
        self.in_channels = check_int("in_channels", in_channels)
        _activation(activation)  # fail now, with the list of choices, not at build time
        self.activation, self.se_ratio = activation, _check_se_ratio(se_ratio)
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        self.stem_stride = stem_stride

    @property
    def num_stages(self) -> int:
        return len(self.widths)

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    def __repr__(self) -> str:
        return (
            f"ChainSpace(kernels={self.kernels}, expansions={self.expansions}, "
            f"depths={self.depths}, widths={self.widths}, strides={self.strides})"
        )

    # -- counting ------------------------------------------------------------------------------

    def size(self) -> int:
        """Number of architectures: ``prod over stages of sum over depths d of (|K| |E|)^d``.

        A stage of depth ``d`` has ``|K| |E|`` choices in each of its ``d`` blocks, and the
        stages choose independently. The default space has ``(9^2 + 9^3 + 9^4)^3 = 7371^3``,
        about 4 * 10^11 architectures.
        """
        per_block = len(self.kernels) * len(self.expansions)
        per_stage = sum(per_block**d for d in self.depths)
        return per_stage**self.num_stages

    # -- checking ------------------------------------------------------------------------------

    def validate(self, arch: ChainArch) -> ChainArch:
        """Return ``arch`` if every choice is one of this space's, else raise a ValueError that
        names the offending stage and block."""
        if not isinstance(arch, ChainArch):
            raise ValueError(
                f"expected a ChainArch (use ChainArch.from_string), got {type(arch).__name__}"
            )
        if len(arch.stages) != self.num_stages:
            raise ValueError(f"this space has {self.num_stages} stages, got {len(arch.stages)}")
        for s, stage in enumerate(arch.stages):
            if stage.depth not in self.depths:
                raise ValueError(f"stages[{s}] has depth {stage.depth}, not one of {self.depths}")
            for b, (kernel, expansion) in enumerate(stage.blocks):
                if kernel not in self.kernels:
                    raise ValueError(
                        f"stages[{s}].kernels[{b}] = {kernel} is not one of {self.kernels}"
                    )
                if expansion not in self.expansions:
                    raise ValueError(
                        f"stages[{s}].expansions[{b}] = {expansion} is not one of {self.expansions}"
                    )
        return arch

    def from_string(self, text: str) -> ChainArch:
        """Parse an architecture string and check it belongs to this space."""
        return self.validate(ChainArch.from_string(text))

    # -- sampling and mutation -----------------------------------------------------------------

    def _random_stage(self, depth: int, rng: np.random.Generator) -> Stage:
        kernels = tuple(int(k) for k in rng.choice(self.kernels, size=depth))
        expansions = tuple(int(e) for e in rng.choice(self.expansions, size=depth))
        return Stage(kernels, expansions)

    def sample(self, rng: np.random.Generator | int) -> ChainArch:
        """Draw each choice uniformly and independently: a depth per stage, then a kernel and an
        expansion per block. As in OFA and single-path one-shot NAS, this is uniform per
        *choice*, not over architectures: a shallow stage is as likely as a deep one although
        the deep ones are far more numerous."""
        rng = as_rng(rng)
        depths = [int(rng.choice(self.depths)) for _ in range(self.num_stages)]
        return ChainArch(tuple(self._random_stage(d, rng) for d in depths))

    def mutate(self, arch: ChainArch, rng: np.random.Generator | int) -> ChainArch:
        """Change exactly one choice, picked uniformly among all of them: one block's kernel, one
        block's expansion, or one stage's depth, each to a different value.

        A deeper stage keeps its blocks and appends new ones with random choices; a shallower one
        drops its last blocks (as OFA's elastic depth keeps the first ``d`` blocks). This is the
        mutation of regularized evolution (Real et al., AAAI 2019, Section 2) for this space.
        """
        self.validate(arch)
        rng = as_rng(rng)
        sites = [("depth", s, 0) for s in range(self.num_stages) if len(self.depths) > 1]
        for s, stage in enumerate(arch.stages):
            sites += [("kernel", s, b) for b in range(stage.depth) if len(self.kernels) > 1]
            sites += [("expansion", s, b) for b in range(stage.depth) if len(self.expansions) > 1]
        if not sites:
            raise ValueError("this space has a single architecture: there is nothing to mutate")
        what, s, b = sites[rng.integers(len(sites))]
        stage = arch.stages[s]
        kernels, expansions = list(stage.kernels), list(stage.expansions)
        if what == "kernel":
            kernels[b] = int(rng.choice([k for k in self.kernels if k != kernels[b]]))
        elif what == "expansion":
            expansions[b] = int(rng.choice([e for e in self.expansions if e != expansions[b]]))
        else:
            depth = int(rng.choice([d for d in self.depths if d != stage.depth]))
            extra = self._random_stage(depth, rng)  # choices for any new blocks
            kernels = (kernels + list(extra.kernels))[:depth]
            expansions = (expansions + list(extra.expansions))[:depth]
        stages = list(arch.stages)
        stages[s] = Stage(tuple(kernels), tuple(expansions))
        return ChainArch(tuple(stages))

    # -- encoding ------------------------------------------------------------------------------

    @property
    def encoding_length(self) -> int:
        return self.num_stages * self.max_depth * (len(self.kernels) + len(self.expansions))

    def encode(self, arch: ChainArch) -> np.ndarray:
        """A fixed-length 0/1 vector: for each stage, ``max_depth`` block slots, each holding a
        one-hot kernel followed by a one-hot expansion; the slots beyond the stage's depth stay
        zero, so the depth is read off as the number of filled slots (the encoding of OFA's
        accuracy predictor, Cai et al., ICLR 2020, Section 3.4)."""
        self.validate(arch)
        n_k, n_e = len(self.kernels), len(self.expansions)
        slots = np.zeros((self.num_stages, self.max_depth, n_k + n_e), dtype=np.float32)
        for s, stage in enumerate(arch.stages):
            for b, (kernel, expansion) in enumerate(stage.blocks):
                slots[s, b, self.kernels.index(kernel)] = 1.0
                slots[s, b, n_k + self.expansions.index(expansion)] = 1.0
        return slots.reshape(-1)

    def decode(self, vector: np.ndarray) -> ChainArch:
        """Inverse of :meth:`encode`."""
        vector = np.asarray(vector)
        if vector.shape != (self.encoding_length,):
            raise ValueError(
                f"expected a vector of length {self.encoding_length}, got shape {vector.shape}"
            )
        n_k = len(self.kernels)
        slots = vector.reshape(self.num_stages, self.max_depth, -1)
        stages = []
        for s in range(self.num_stages):
            filled = [slot for slot in slots[s] if slot.any()]
            if not filled:
                raise ValueError(f"stage {s} of the vector has no block: not an encoding")
            kernels = tuple(self.kernels[int(np.argmax(slot[:n_k]))] for slot in filled)
            expansions = tuple(self.expansions[int(np.argmax(slot[n_k:]))] for slot in filled)
            stages.append(Stage(kernels, expansions))
        return self.validate(ChainArch(tuple(stages)))

    # -- enumeration ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ChainArch]:
        """Every architecture of the space, in a fixed order (only sensible for tiny spaces)."""
        blocks = list(itertools.product(self.kernels, self.expansions))
        per_stage = [
            Stage(tuple(k for k, _ in combo), tuple(e for _, e in combo))
            for d in self.depths
            for combo in itertools.product(blocks, repeat=d)
        ]
        for stages in itertools.product(per_stage, repeat=self.num_stages):
            yield ChainArch(stages)

    # -- building ------------------------------------------------------------------------------

    def scaled_widths(self, width_mult: float = 1.0) -> tuple[int, int, tuple[int, ...]]:
        """``(stem, head, stage widths)`` after the width multiplier: every channel count ``c``
        becomes ``make_divisible(c * width_mult)``, a multiple of 8, as in MobileNetV2."""
        finite = isinstance(width_mult, (int, float)) and math.isfinite(width_mult)
        if not finite or width_mult <= 0:
            raise ValueError(f"width_mult must be a positive number, got {width_mult!r}")
        stem, head, *widths = (
            make_divisible(c * width_mult)
            for c in (self.stem_channels, self.head_channels, *self.widths)
        )
        return stem, head, tuple(widths)

    def build(
        self,
        arch: ChainArch | str,
        width_mult: float = 1.0,
        resolution: int | None = None,
        seed: int | None = None,
    ) -> ChainNet:
        """The network of ``arch``, with channels scaled by ``width_mult`` (see
        :meth:`scaled_widths`) and inputs resized to ``resolution`` when given. ``seed`` fixes the
        weight initialisation without touching torch's global random state."""
        if isinstance(arch, str):
            arch = self.from_string(arch)
        self.validate(arch)
        stem, head, widths = self.scaled_widths(width_mult)
        return seeded_init(
            seed,
            lambda: ChainNet(
                arch,
                widths,
                self.strides,
                stem_channels=stem,
                head_channels=head,
                num_classes=self.num_classes,
                in_channels=self.in_channels,
                resolution=resolution,
                activation=self.activation,
                se_ratio=self.se_ratio,
                stem_stride=self.stem_stride,
            ),
        )
