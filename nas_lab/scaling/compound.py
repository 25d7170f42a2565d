"""The compound rule of EfficientNet (Tan & Le, ICML 2019, Section 3.3, eq. 3), applied to a
base network of the course: the multipliers of ``phi``, the grid search of step 1, the
single-dimension baselines at matched FLOPs, training the scaled networks, and the phi explorer's
logic. The package docstring of :mod:`nas_lab.scaling` states the rule.

Real networks have integer layers, channels and pixels, so a multiplier is rounded before it is
used, as in the reference code and in torchvision: a stage's block count by ``ceil`` and a channel
count to a multiple of 8 (:func:`~nas_lab.spaces.mbconv.make_divisible`). At the small sizes of a
laptop course the rounding is coarse, and this module always reports the *realised* network and its
*counted* FLOPs next to the multipliers asked for.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real

import torch

from nas_lab.cost import count_flops, count_params
from nas_lab.spaces.mbconv import ChainArch, ChainNet, Stage, make_divisible, seeded_init

# Section 3.3, step 1: the grid search's result for EfficientNet-B0.
PAPER_COEFFICIENTS = (1.2, 1.1, 1.15)


def check_multiplier(name: str, value: object, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value <= minimum:
        raise ValueError(f"{name} must be > {minimum}, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# The rule
# ---------------------------------------------------------------------------------------------


def compound_multipliers(
    phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15
) -> tuple[float, float, float]:
    """Eq. 3 of Tan & Le (ICML 2019): ``(depth, width, resolution) = (alpha^phi, beta^phi,
    gamma^phi)``. ``phi`` may be any real number (negative shrinks the network)."""
    if isinstance(phi, bool) or not isinstance(phi, Real) or not math.isfinite(phi):
        raise ValueError(f"phi must be a finite number, got {phi!r}")
    alpha, beta, gamma = (
        check_multiplier(n, v) for n, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma))
    )
    return alpha**phi, beta**phi, gamma**phi


def flops_factor(depth: float, width: float, resolution: float) -> float:
    """How much a network's FLOPs grow under these multipliers: ``d * w^2 * r^2`` (Section 3.3:
    FLOPs are proportional to depth, and to the squares of width and resolution). Applied to
    ``(alpha, beta, gamma)`` it is the quantity the constraint holds near 2."""
    depth, width, resolution = (
        check_multiplier(n, v)
        for n, v in (("depth", depth), ("width", width), ("resolution", resolution))
    )
    return depth * width**2 * resolution**2


def round_repeats(repeats: int, depth_mult: float) -> int:
    """A stage's block count after depth scaling: ``ceil(repeats * depth_mult)``, the rule of the
    reference implementation and of torchvision (``MBConvConfig.adjust_depth``)."""
    depth_mult = check_multiplier("depth_mult", depth_mult)
    return int(math.ceil(repeats * depth_mult))


def round_resolution(size: int, resolution_mult: float) -> int:
    """The input side after resolution scaling, rounded to the nearest pixel."""
    return max(1, int(round(size * check_multiplier("resolution_mult", resolution_mult))))


def scale_arch(arch: ChainArch, depth_mult: float) -> ChainArch:
    """Deepen (or shorten) every stage to ``round_repeats(depth, depth_mult)`` blocks. New blocks
    repeat the stage's last block, as EfficientNet repeats each stage's one block configuration;
    a shorter stage keeps its first blocks."""
    stages = []
    for stage in arch.stages:
        depth = max(1, round_repeats(stage.depth, depth_mult))
        extra = depth - stage.depth
        kernels = (stage.kernels + (stage.kernels[-1],) * extra)[:depth]
        expansions = (stage.expansions + (stage.expansions[-1],) * extra)[:depth]
        stages.append(Stage(kernels, expansions))
    return ChainArch(tuple(stages))


# ---------------------------------------------------------------------------------------------
# Scaling a base network of the course
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaledConfig:
    """A base network scaled by ``(depth, width, resolution)`` multipliers, and what that
    realises after rounding: block counts per stage, channels per stage, input side."""

    depth: float
    width: float
    resolution: float
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    side: int
    flops: int

    def key(self) -> tuple:
        """What decides the realised network: two configs with equal keys build equal nets."""
        return (self.depths, self.widths, self.side)


@dataclass(frozen=True)
class BaseNet:
    """A small base network for scaling experiments on digits: a chain of MBConv stages.

    ``divisor`` rounds channel counts: 8 as in MobileNet and EfficientNet, but at 16 channels
    that would swallow a 10% width change (``make_divisible(17.6) == 16``), so the course's base
    uses 1 (channels rounded to the nearest integer).
    """

    arch: ChainArch
    widths: tuple[int, ...] = (16, 24, 32)
    strides: tuple[int, ...] = (1, 2, 2)
    stem_channels: int = 16
    head_channels: int = 64
    side: int = 8
    num_classes: int = 10
    in_channels: int = 1
    divisor: int = 1

    @classmethod
    def default(cls) -> BaseNet:
        """The lessons' base: three stages of two blocks (kernel 3, expansion 4) on 8x8
        digits."""
        return cls(ChainArch.from_string("k3e4-k3e4|k3e4-k3e4|k3e4-k3e4"))

    def channels(self, c: int, width_mult: float) -> int:
        return make_divisible(c * width_mult, self.divisor)

    def build(
        self,
        depth: float = 1.0,
        width: float = 1.0,
        resolution: float = 1.0,
        seed: int | None = None,
    ) -> ChainNet:
        """The base scaled by the three multipliers; ``seed`` fixes the initial weights."""
        arch = scale_arch(self.arch, depth)
        side = round_resolution(self.side, resolution)

        return seeded_init(
            seed,
            lambda: ChainNet(
                arch,
                [self.channels(c, width) for c in self.widths],
                self.strides,
                stem_channels=self.channels(self.stem_channels, width),
                head_channels=self.channels(self.head_channels, width),
                num_classes=self.num_classes,
                in_channels=self.in_channels,
                resolution=None if side == self.side else side,
            ),
        )

    def realise(
        self, depth: float = 1.0, width: float = 1.0, resolution: float = 1.0
    ) -> tuple[tuple[int, ...], tuple[int, ...], int]:
        """What the multipliers become after rounding, without building anything: blocks per
        stage, channels per stage, input side. Equal results mean equal networks."""
        depths = scale_arch(self.arch, depth).depths
        widths = tuple(self.channels(c, width) for c in self.widths)
        return depths, widths, round_resolution(self.side, resolution)

    def flops(self, depth: float = 1.0, width: float = 1.0, resolution: float = 1.0) -> int:
        """Counted FLOPs of one image through the scaled network (``torch.utils.flop_counter``).

        Counted once per realised network, on PyTorch's ``meta`` device (shapes only, no
        arithmetic), so a grid search over many multipliers costs milliseconds."""
        ends = (self.channels(self.stem_channels, width), self.channels(self.head_channels, width))
        key = (self.realise(depth, width, resolution), ends)
        return _counted_flops(self, depth, width, resolution, key)

    def config(
        self, depth: float = 1.0, width: float = 1.0, resolution: float = 1.0
    ) -> ScaledConfig:
        """The realised network for these multipliers, with its counted FLOPs."""
        depths, widths, side = self.realise(depth, width, resolution)
        flops = self.flops(depth, width, resolution)
        return ScaledConfig(depth, width, resolution, depths, widths, side, flops)

    def params(self, depth: float = 1.0, width: float = 1.0, resolution: float = 1.0) -> int:
        """Trainable parameters of the scaled network (resolution changes none of them)."""
        with torch.device("meta"):
            return count_params(self.build(depth, width, resolution))


_FLOPS_CACHE: dict[tuple, int] = {}


def _counted_flops(base: BaseNet, depth: float, width: float, resolution: float, key: tuple) -> int:
    """``count_flops`` of the scaled base on the meta device, memoised by the realised network
    (the multipliers that produced it first are the ones built)."""
    key = (base, key)
    if key not in _FLOPS_CACHE:
        with torch.device("meta"):
            net = base.build(depth, width, resolution)
            _FLOPS_CACHE[key] = count_flops(net, (1, base.in_channels, base.side, base.side))
    return _FLOPS_CACHE[key]


# ---------------------------------------------------------------------------------------------
# Step 1: the grid search at phi = 1
# ---------------------------------------------------------------------------------------------


def grid_candidates(
    step: float = 0.05,
    target: float = 2.0,
    tolerance: float = 0.1,
    max_value: float = 2.0,
) -> list[tuple[float, float, float]]:
    """Every ``(alpha, beta, gamma)`` on a grid of ``step`` from 1 to ``max_value`` whose FLOPs
    factor ``alpha beta^2 gamma^2`` is within ``tolerance`` of ``target`` (the constraint of eq. 3,
    alpha, beta, gamma >= 1). Sorted, so the list is the same on every call."""
    step = check_multiplier("step", step)
    count = int(round((max_value - 1.0) / step)) + 1
    grid = [round(1.0 + i * step, 10) for i in range(count)]
    return [
        (a, b, g)
        for a, b, g in itertools.product(grid, repeat=3)
        if abs(a * b**2 * g**2 - target) <= tolerance + 1e-12
    ]


def distinct_candidates(
    base: BaseNet,
    candidates: Sequence[tuple[float, float, float]],
    flops_limit: float | None = None,
) -> list[ScaledConfig]:
    """The candidates as realised networks, one per distinct network (the first coefficients in
    ``candidates`` that realise it), keeping only those whose counted FLOPs are at most
    ``flops_limit``. Rounding makes many coefficient triples build the same network: training
    each network once is all the grid search needs."""
    seen: dict[tuple, ScaledConfig] = {}
    for alpha, beta, gamma in candidates:
        if base.realise(alpha, beta, gamma) in seen:
            continue
        config = base.config(alpha, beta, gamma)
        if flops_limit is None or config.flops <= flops_limit:
            seen[config.key()] = config
    return list(seen.values())


@dataclass(frozen=True)
class GridResult:
    """One candidate of the grid search and its score (higher is better)."""

    config: ScaledConfig
    score: float


def grid_search(
    base: BaseNet,
    candidates: Sequence[tuple[float, float, float]],
    evaluate: Callable[[ScaledConfig], float],
    flops_limit: float | None = None,
) -> list[GridResult]:
    """Step 1 of the recipe: score each distinct realised candidate with ``evaluate`` (e.g. the
    validation accuracy after training) and return the results, best first (ties keep the grid's
    order). ``flops_limit`` drops candidates whose counted FLOPs exceed it."""
    configs = distinct_candidates(base, candidates, flops_limit)
    if not configs:
        raise ValueError(
            "no candidate fits: widen the grid (tolerance, max_value) or raise flops_limit"
        )
    results = [GridResult(config, float(evaluate(config))) for config in configs]
    order = sorted(range(len(results)), key=lambda i: -results[i].score)
    return [results[i] for i in order]


# ---------------------------------------------------------------------------------------------
# Step 2, and the single-dimension baselines at matched FLOPs
# ---------------------------------------------------------------------------------------------

DIMENSIONS = ("depth", "width", "resolution")


def single_dimension_multiplier(
    base: BaseNet,
    dimension: str,
    target_flops: float,
    max_multiplier: float = 8.0,
    tolerance: float = 1e-3,
) -> float:
    """The multiplier of one dimension alone (``"depth"``, ``"width"`` or ``"resolution"``) whose
    network comes closest to ``target_flops``: the baseline of Figure 3 of the paper, at the same
    FLOPs as a compound-scaled network.

    Counted FLOPs grow with the multiplier in steps (rounding), so a bisection finds the
    smallest multiplier reaching the target, and the step just below it is kept if it lands
    closer."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension must be one of {DIMENSIONS}, got {dimension!r}")
    target_flops = check_multiplier("target_flops", target_flops)

    def flops(m: float) -> int:
        return base.flops(**{dimension: m})

    lo, hi = 1.0, float(max_multiplier)
    if flops(hi) < target_flops:
        raise ValueError(
            f"even {dimension} x{hi} stays below {target_flops:.3g} FLOPs; raise max_multiplier"
        )
    if flops(lo) >= target_flops:
        return lo
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if flops(mid) < target_flops else (lo, mid)
    return lo if abs(flops(lo) - target_flops) < abs(flops(hi) - target_flops) else hi


def matched_configs(
    base: BaseNet, phi: float, coefficients: Sequence[float]
) -> dict[str, ScaledConfig]:
    """For one ``phi``: the compound-scaled network, and depth-only, width-only and
    resolution-only networks whose counted FLOPs match the compound one as closely as rounding
    allows."""
    compound = base.config(*compound_multipliers(phi, *coefficients))
    configs = {"compound": compound}
    for dimension in DIMENSIONS:
        m = single_dimension_multiplier(base, dimension, compound.flops)
        configs[f"{dimension} only"] = base.config(**{dimension: m})
    return configs


# ---------------------------------------------------------------------------------------------
# Training scaled networks for real
# ---------------------------------------------------------------------------------------------


def train_scaled(
    base: BaseNet,
    config: ScaledConfig,
    splits,
    epochs: int = 8,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict:
    """Train the network ``config`` describes on ``splits`` (the lessons' one recipe,
    :func:`nas_lab.train.train`) from weights seeded by ``seed``; return its final validation
    and test accuracy and its training seconds. The 8x8 digits are upsampled inside the network
    (bilinearly) when the config's side is larger: that is the resolution axis."""
    from nas_lab.train import train

    net = base.build(config.depth, config.width, config.resolution, seed=seed)
    history = train(net, splits, epochs=epochs, seed=seed, device=device, progress=False)
    return {
        "val_acc": history.val_acc[-1],
        "test_acc": history.test_acc,
        "train_time": history.train_time,
    }


def scaling_study(
    base: BaseNet,
    configs: dict[str, ScaledConfig],
    splits,
    epochs: int = 8,
    seeds: Sequence[int] = (0,),
    device: str | torch.device | None = None,
) -> list[dict]:
    """Train every named config for every seed; one row per (config, seed), with the realised
    network (blocks, channels, side), its counted FLOPs and parameters, and its accuracies."""
    from tqdm.auto import tqdm

    rows = []
    jobs = [(name, config, seed) for name, config in configs.items() for seed in seeds]
    for name, config, seed in tqdm(jobs, desc="train", leave=False):
        result = train_scaled(base, config, splits, epochs, seed, device)
        rows.append(
            {
                "name": name,
                "seed": seed,
                "depths": config.depths,
                "widths": config.widths,
                "side": config.side,
                "flops": config.flops,
                "params": base.params(config.depth, config.width, config.resolution),
                **result,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# The phi explorer (lesson 08's widget): the logic, without the widget
# ---------------------------------------------------------------------------------------------


def describe_phi(
    phi: float,
    coefficients: Sequence[float] = PAPER_COEFFICIENTS,
    base: BaseNet | None = None,
) -> dict:
    """What the phi slider shows: the multipliers of eq. 3 at ``phi``, the network they realise
    from ``base`` (default :meth:`BaseNet.default`), the FLOPs growth the rule promises,
    ``(alpha beta^2 gamma^2)^phi``, and the growth counted on the realised network."""
    base = base or BaseNet.default()
    depth, width, resolution = compound_multipliers(phi, *coefficients)
    config = base.config(depth, width, resolution)
    return {
        "phi": float(phi),
        "depth": depth,
        "width": width,
        "resolution": resolution,
        "depths": config.depths,
        "widths": config.widths,
        "side": config.side,
        "flops": config.flops,
        "params": base.params(depth, width, resolution),
        "rule_growth": flops_factor(*coefficients) ** phi,
        "counted_growth": config.flops / base.flops(),
    }
