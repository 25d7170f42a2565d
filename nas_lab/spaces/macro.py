"""A macro search space: the whole network is searched, layer by layer.

The first NAS papers searched whole networks rather than cells. Zoph & Le ("Neural Architecture
Search with Reinforcement Learning", ICLR 2017, Section 3.3) let a controller pick each layer's
operation and, for each earlier layer, whether to add a skip connection from it; ENAS (Pham, Guan,
Zoph, Le & Dean, "Efficient Neural Architecture Search via Parameter Sharing", ICML 2018, Section
2.3) fixed the form used here:

- layer ``i`` applies one operation from :data:`MACRO_OPS` to layer ``i - 1``'s output (layer 0
  to the stem's output);
- it may also take a skip connection from any earlier layer ``j < i``; the chosen outputs are
  *summed* with its own (the channel count is constant, so the shapes agree). A skip from layer
  ``i - 1`` is a residual connection around layer ``i``'s operation.

Layer ``i`` has ``i`` skip choices, so ``L`` layers have ``L (L - 1) / 2`` of them and the space
has ``|ops|^L * 2^(L (L - 1) / 2)`` architectures. ENAS's 12-layer space with these 6 operations
has ``6^12 * 2^66``, about ``1.6 * 10^29``.

Skips are stored as a bitmask per layer (bit ``j`` set: layer ``j`` feeds this layer) and written
as one digit per earlier layer after a ``~``; layers are separated by ``|``::

    conv3x3~|sep_conv5x5~1|max_pool3x3~01|conv5x5~101

Layer 0 has no earlier layer, hence nothing after its ``~``; layer 2 above takes a skip from layer
1 only; layer 3 from layers 0 and 2.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from torch import nn

from nas_lab.arguments import positive_int
from nas_lab.spaces import as_rng

__all__ = ["MACRO_OPS", "MacroArch", "MacroNet", "MacroSpace", "macro_op"]

MACRO_OPS: tuple[str, ...] = (
    "conv3x3",
    "conv5x5",
    "sep_conv3x3",
    "sep_conv5x5",
    "max_pool3x3",
    "avg_pool3x3",
)


# ---------------------------------------------------------------------------------------------
# Operations: each keeps the channel count and the spatial size
# ---------------------------------------------------------------------------------------------


def _conv(channels: int, kernel: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


def _sep_conv(channels: int, kernel: int) -> nn.Module:
    """Depthwise-separable convolution (Chollet, CVPR 2017): a depthwise ``k x k`` then a
    pointwise 1x1, at a fraction of a full convolution's parameters."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


_OP_FACTORIES: dict[str, Callable[[int], nn.Module]] = {
    "conv3x3": lambda c: _conv(c, 3),
    "conv5x5": lambda c: _conv(c, 5),
    "sep_conv3x3": lambda c: _sep_conv(c, 3),
    "sep_conv5x5": lambda c: _sep_conv(c, 5),
    "max_pool3x3": lambda c: nn.MaxPool2d(3, stride=1, padding=1),
    # Padding is not averaged in, so a constant image stays constant up to the border.
    "avg_pool3x3": lambda c: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
}


def macro_op(name: str, channels: int) -> nn.Module:
    """The operation called ``name`` (one of :data:`MACRO_OPS`) on ``channels`` channels."""
    if name not in _OP_FACTORIES:
        raise ValueError(f"unknown operation {name!r}; valid operations: {', '.join(MACRO_OPS)}")
    return _OP_FACTORIES[name](channels)


# ---------------------------------------------------------------------------------------------
# The architecture
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MacroArch:
    """One operation per layer and, per layer ``i``, a bitmask over the layers ``j < i`` whose
    outputs are added to its own."""

    ops: tuple[str, ...]
    skips: tuple[int, ...]

    def __post_init__(self) -> None:
        ops, skips = tuple(self.ops), tuple(self.skips)
        if not ops or len(ops) != len(skips):
            raise ValueError(
                f"need one operation and one skip mask per layer (at least one layer): got "
                f"{len(ops)} operations and {len(skips)} skip masks"
            )
        for i, op in enumerate(ops):
            if op not in MACRO_OPS:
                raise ValueError(
                    f"layer {i}: unknown operation {op!r}; valid operations: {', '.join(MACRO_OPS)}"
                )
        for i, mask in enumerate(skips):
            if isinstance(mask, bool) or not isinstance(mask, Integral) or not 0 <= mask < 2**i:
                raise ValueError(
                    f"layer {i}: skip mask {mask!r} must be an integer in [0, {2**i}) "
                    f"(one bit per earlier layer; layer {i} has {i})"
                )
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "skips", tuple(int(m) for m in skips))

    @property
    def num_layers(self) -> int:
        return len(self.ops)

    def skip_sources(self, layer: int) -> tuple[int, ...]:
        """The earlier layers whose outputs are added to ``layer``'s output."""
        return tuple(j for j in range(layer) if self.skips[layer] >> j & 1)

    def __str__(self) -> str:
        return "|".join(
            op + "~" + "".join(str(mask >> j & 1) for j in range(i))
            for i, (op, mask) in enumerate(zip(self.ops, self.skips, strict=True))
        )

    @classmethod
    def from_string(cls, text: str) -> MacroArch:
        """Parse the format of :meth:`__str__`, e.g. ``"conv3x3~|sep_conv5x5~1|max_pool3x3~01"``."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"expected a string like 'conv3x3~|max_pool3x3~1', got {text!r}")
        ops, skips = [], []
        for i, token in enumerate(text.strip().split("|")):
            op, tilde, bits = token.strip().partition("~")
            if not tilde or len(bits) != i or set(bits) - {"0", "1"}:
                raise ValueError(
                    f"layer {i}: {token!r} should be '<operation>~' followed by {i} digits 0/1, "
                    f"one per earlier layer (e.g. {'conv3x3~' + '0' * i!r})"
                )
            ops.append(op)
            skips.append(sum(1 << j for j, bit in enumerate(bits) if bit == "1"))
        return cls(tuple(ops), tuple(skips))


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------


class MacroNet(nn.Module):
    """stem conv3x3 -> the searched layers, with summed skips -> global average pool -> linear."""

    def __init__(
        self, arch: MacroArch, channels: int, num_classes: int, in_channels: int = 1
    ) -> None:
        super().__init__()
        self.arch, self.in_channels = arch, in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.layers = nn.ModuleList(macro_op(op, channels) for op in arch.ops)
        self.sources = [arch.skip_sources(i) for i in range(arch.num_layers)]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every searched layer, in order (the last one feeds the classifier)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"MacroNet expects a (batch, {self.in_channels}, height, width) tensor, "
                f"got shape {tuple(x.shape)}"
            )
        h, outputs = self.stem(x), []
        for layer, sources in zip(self.layers, self.sources, strict=True):
            h = layer(h)
            for j in sources:
                h = h + outputs[j]
            outputs.append(h)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.forward_features(x)[-1]).flatten(1))


# ---------------------------------------------------------------------------------------------
# The search space
# ---------------------------------------------------------------------------------------------


class MacroSpace:
    """``num_layers`` layers, each an operation from ``ops`` plus skips from any earlier layers."""

    def __init__(
        self,
        num_layers: int = 4,
        channels: int = 16,
        ops: Sequence[str] = MACRO_OPS,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        self.num_layers = positive_int("num_layers", num_layers)
        self.channels = positive_int("channels", channels)
        self.num_classes = positive_int("num_classes", num_classes)
        self.in_channels = positive_int("in_channels", in_channels)
        self.ops = tuple(ops)
        unknown = [op for op in self.ops if op not in MACRO_OPS]
        if unknown or not self.ops or len(set(self.ops)) != len(self.ops):
            raise ValueError(
                f"ops must be distinct names from {MACRO_OPS}, got {self.ops}"
                + (f" (unknown: {unknown})" if unknown else "")
            )

    @property
    def num_skips(self) -> int:
        """Skip choices in all: layer ``i`` has ``i`` of them."""
        return self.num_layers * (self.num_layers - 1) // 2

    def __repr__(self) -> str:
        return f"MacroSpace(num_layers={self.num_layers}, channels={self.channels}, ops={self.ops})"

    def size(self) -> int:
        """``|ops|^L * 2^(L (L - 1) / 2)``: an operation per layer, and each skip on or off."""
        return len(self.ops) ** self.num_layers * 2**self.num_skips

    def validate(self, arch: MacroArch) -> MacroArch:
        """Return ``arch`` if it belongs to this space, else raise a ValueError naming the layer."""
        if not isinstance(arch, MacroArch):
            raise ValueError(
                f"expected a MacroArch (use MacroArch.from_string), got {type(arch).__name__}"
            )
        if arch.num_layers != self.num_layers:
            raise ValueError(f"this space has {self.num_layers} layers, got {arch.num_layers}")
        for i, op in enumerate(arch.ops):
            if op not in self.ops:
                raise ValueError(f"layer {i}: operation {op!r} is not one of {self.ops}")
        return arch

    def from_string(self, text: str) -> MacroArch:
        """Parse an architecture string and check it belongs to this space."""
        return self.validate(MacroArch.from_string(text))

    def sample(self, rng: np.random.Generator | int) -> MacroArch:
        """Each operation uniformly, each skip by a fair coin: uniform over the whole space."""
        rng = as_rng(rng)
        ops = tuple(self.ops[int(i)] for i in rng.integers(len(self.ops), size=self.num_layers))
        skips = tuple(int(rng.integers(2**i)) for i in range(self.num_layers))
        return MacroArch(ops, skips)

    def mutate(self, arch: MacroArch, rng: np.random.Generator | int) -> MacroArch:
        """Change exactly one choice, picked uniformly among all: one layer's operation (to a
        different one) or one skip connection (flipped on or off)."""
        self.validate(arch)
        rng = as_rng(rng)
        sites = [("op", i, 0) for i in range(self.num_layers) if len(self.ops) > 1]
        sites += [("skip", i, j) for i in range(self.num_layers) for j in range(i)]
        if not sites:
            raise ValueError("this space has a single architecture: there is nothing to mutate")
        what, i, j = sites[rng.integers(len(sites))]
        ops, skips = list(arch.ops), list(arch.skips)
        if what == "op":
            ops[i] = str(rng.choice([op for op in self.ops if op != ops[i]]))
        else:
            skips[i] ^= 1 << j
        return MacroArch(tuple(ops), tuple(skips))

    @property
    def encoding_length(self) -> int:
        return self.num_layers * len(self.ops) + self.num_skips

    def encode(self, arch: MacroArch) -> np.ndarray:
        """A fixed-length 0/1 vector: each layer's operation one-hot, then every skip bit in the
        order (layer 1: from 0), (layer 2: from 0, 1), ..."""
        self.validate(arch)
        one_hot = np.zeros((self.num_layers, len(self.ops)), dtype=np.float32)
        for i, op in enumerate(arch.ops):
            one_hot[i, self.ops.index(op)] = 1.0
        bits = [arch.skips[i] >> j & 1 for i in range(self.num_layers) for j in range(i)]
        return np.concatenate([one_hot.reshape(-1), np.asarray(bits, dtype=np.float32)])

    def __iter__(self) -> Iterator[MacroArch]:
        """Every architecture of the space, in a fixed order (only sensible for tiny spaces)."""
        for ops in itertools.product(self.ops, repeat=self.num_layers):
            for skips in itertools.product(*(range(2**i) for i in range(self.num_layers))):
                yield MacroArch(ops, skips)

    def build(self, arch: MacroArch | str, seed: int | None = None) -> MacroNet:
        """The network of ``arch``. ``seed`` fixes the weight initialisation without touching
        torch's global random state."""
        if isinstance(arch, str):
            arch = self.from_string(arch)
        self.validate(arch)
        if seed is None:
            return MacroNet(arch, self.channels, self.num_classes, self.in_channels)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return MacroNet(arch, self.channels, self.num_classes, self.in_channels)
