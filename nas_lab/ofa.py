"""Once-for-All: train one elastic supernet, then deploy many subnets without retraining.

After Cai, Gan, Wang, Zhang & Han, "Once-for-All: Train One Network and Specialize it for
Efficient Deployment", ICLR 2020. The file reads in the paper's order:

1. **Elastic kernel** (Section 3.3): each depthwise layer keeps one 7x7 kernel. The 5x5 kernel is
   its centre, passed through a learned 25x25 *kernel transformation matrix*; the 3x3 kernel is
   the centre of that 5x5 kernel through a learned 9x9 matrix. The matrices are shared by all
   channels of a layer and start as the identity, so at first a smaller kernel is the centre crop.
2. **Elastic width** (Section 3.3): a block with expansion ``e`` uses the first ``c_in * e`` of
   its hidden channels. Before width is shrunk, the channels are sorted by importance, the L1 norm
   of their weights in the projection convolution, so the first ones are the important ones.
3. **Elastic depth** (Section 3.3): a stage of depth ``D`` runs its first ``D`` blocks.
4. **Progressive shrinking** (Section 3.2, Figure 3): train the largest network, then let the
   kernel, then the depth, then the expansion shrink, each phase sampling subnets and distilling
   from the largest network's soft targets (Hinton, Vinyals & Dean, "Distilling the Knowledge in
   a Neural Network", NIPS Deep Learning Workshop 2014).
5. **Subnets without retraining**: :func:`extract_subnet` copies a subnet's weights into a
   stand-alone :class:`~nas_lab.spaces.mbconv.ChainNet`; :func:`recalibrate_bn` re-estimates its
   BatchNorm statistics on a few batches (the supernet's running statistics mix all subnets).
6. **Search** (Section 3.4): an MLP accuracy predictor on the architecture encoding, and an
   evolutionary search for the best predicted subnet under a latency limit, the latency read from
   a per-block lookup table (:class:`~nas_lab.hardware.LatencyTable`).
7. **Shipping**: ``nas-lab ofa build`` trains the supernet and the lesson's from-scratch baselines
   and saves them with a manifest; :func:`load_supernet` checks the sha256 and loads it.

The architectures are those of :class:`~nas_lab.spaces.mbconv.ChainSpace` (kernel 3/5/7,
expansion 3/4/6, depth 2/3/4 per stage); a subnet is a :class:`~nas_lab.spaces.mbconv.ChainArch`.
"""

from __future__ import annotations

import copy
import datetime
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.data import Splits
from nas_lab.datafiles import data_file, read_manifest, write_manifest
from nas_lab.pareto import best_under_limit, latency_front
from nas_lab.spaces import as_rng
from nas_lab.spaces.mbconv import ChainArch, ChainNet, ChainSpace, Stage

__all__ = [
    "PHASES",
    "ElasticMBConv",
    "OFASupernet",
    "extreme_arch",
    "centre_crop",
    "transform_kernel",
    "channel_order",
    "distillation_loss",
    "phase_space",
    "Recipe",
    "train_phase",
    "train_supernet",
    "extract_subnet",
    "recalibrate_bn",
    "calibration_images",
    "subnet_accuracy",
    "reference_subnets",
    "train_from_scratch",
    "AccuracyPredictor",
    "fit_predictor",
    "arch_block_specs",
    "mutate",
    "crossover",
    "SearchResult",
    "evolutionary_search",
    "latency_front",
    "best_under_limit",
    "limit_summary",
    "plot_front",
    "save_supernet",
    "load_supernet",
    "build",
]

SUPERNET = data_file("ofa_supernet.pt")
BUILD_COMMAND = "nas-lab ofa build --out data/ofa_supernet.pt --seed 0"

# The order of progressive shrinking (Cai et al., ICLR 2020, Figure 3).
PHASES = ("largest", "kernel", "depth", "expansion")


# ---------------------------------------------------------------------------------------------
# 1. Elastic kernel: kernel transformation matrices
# ---------------------------------------------------------------------------------------------


def centre_crop(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    """The centre ``kernel x kernel`` window of a ``(C, 1, K, K)`` depthwise weight."""
    big = weight.shape[-1]
    if kernel > big or (big - kernel) % 2:
        raise ValueError(f"cannot crop a {kernel}x{kernel} centre out of a {big}x{big} kernel")
    start = (big - kernel) // 2
    return weight[..., start : start + kernel, start : start + kernel]


def transform_kernel(weight: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """One step of OFA's elastic kernel (Cai et al., ICLR 2020, Section 3.3, Figure 4).

    ``weight`` is a ``(C, 1, K, K)`` depthwise kernel and ``matrix`` a ``(k*k, k*k)``
    transformation matrix. Each channel's centre ``k x k`` window, flattened to a row vector
    ``w``, becomes ``w M^T`` (``F.linear(w, M)``, as in the authors' code). With ``M = I`` this
    is the plain centre crop.
    """
    if weight.dim() != 4 or weight.shape[1] != 1 or weight.shape[2] != weight.shape[3]:
        raise ValueError(
            f"expected a depthwise weight of shape (C, 1, K, K), got {tuple(weight.shape)}"
        )
    kernel = math.isqrt(matrix.shape[0])
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1] or kernel * kernel != len(matrix):
        raise ValueError(f"expected a (k*k, k*k) matrix, got shape {tuple(matrix.shape)}")
    crop = centre_crop(weight, kernel)
    flat = F.linear(crop.reshape(-1, kernel * kernel), matrix)
    return flat.reshape(weight.shape[0], 1, kernel, kernel)


# ---------------------------------------------------------------------------------------------
# 2. Elastic width: channels sorted by importance
# ---------------------------------------------------------------------------------------------


def channel_order(project_weight: torch.Tensor) -> torch.Tensor:
    """Hidden channels from most to least important (Cai et al., ICLR 2020, Section 3.3).

    ``project_weight`` is the ``(c_out, hidden, 1, 1)`` weight of a block's projection; channel
    ``j``'s importance is the L1 norm ``sum_i |W[i, j]|`` of the weights that read it. Ties keep
    their order (a stable sort), so the result is deterministic."""
    if project_weight.dim() != 4:
        raise ValueError(
            f"expected a (c_out, hidden, 1, 1) projection weight, got {tuple(project_weight.shape)}"
        )
    importance = project_weight.detach().abs().sum(dim=(0, 2, 3))
    return torch.sort(importance, descending=True, stable=True).indices


def _conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act=True):
    """Conv -> BatchNorm -> ReLU6, laid out as ``mbconv._conv_bn`` so weights copy across."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


def _sliced_bn(x: torch.Tensor, bn: nn.BatchNorm2d, channels: int, training: bool):
    """BatchNorm on the first ``channels`` channels: the running statistics are updated in
    place through the slices (views), so each width trains its own prefix of them."""
    return F.batch_norm(
        x,
        bn.running_mean[:channels],
        bn.running_var[:channels],
        bn.weight[:channels],
        bn.bias[:channels],
        training,
        bn.momentum,
        bn.eps,
    )


class ElasticMBConv(nn.Module):
    """An MBConv block (Sandler et al., CVPR 2018) with elastic kernel and expansion.

    It holds the largest block (kernel ``max(kernels)``, expansion ``max(expansions)``) and runs
    the one chosen by :attr:`active`, a ``(kernel, expansion)`` pair, with the first
    ``c_in * expansion`` hidden channels and the kernel from :meth:`kernel_weight`.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        kernels: Sequence[int] = (3, 5, 7),
        expansions: Sequence[int] = (3, 4, 6),
    ) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.kernels, self.expansions = tuple(sorted(kernels)), tuple(sorted(expansions))
        big, hidden = self.kernels[-1], c_in * self.expansions[-1]
        self.expand = _conv_bn_act(c_in, hidden, 1)
        self.depthwise = _conv_bn_act(hidden, hidden, big, stride, groups=hidden)
        self.project = _conv_bn_act(hidden, c_out, 1, act=False)  # the linear bottleneck
        # One matrix per step down (7 -> 5: 25x25, 5 -> 3: 9x9), identity at the start.
        self.transforms = nn.ParameterDict(
            {f"{a}to{b}": nn.Parameter(torch.eye(b * b)) for a, b in self.kernel_steps()}
        )
        self.use_residual = stride == 1 and c_in == c_out
        self.active = (big, self.expansions[-1])

    def kernel_steps(self) -> list[tuple[int, int]]:
        """The steps down from the biggest kernel, e.g. ``[(7, 5), (5, 3)]``."""
        ks = self.kernels
        return list(zip(ks[:0:-1], ks[-2::-1], strict=True))

    def kernel_weight(self, kernel: int, channels: int | None = None) -> torch.Tensor:
        """The ``kernel x kernel`` depthwise weight of the first ``channels`` channels: the big
        kernel transformed step by step (7 -> 5 -> 3) down to the asked size."""
        if kernel not in self.kernels:
            raise ValueError(f"kernel {kernel} is not one of this block's {self.kernels}")
        weight = self.depthwise[0].weight[:channels]
        for a, b in self.kernel_steps():
            if a == kernel:
                break
            weight = transform_kernel(weight, self.transforms[f"{a}to{b}"])
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, expansion = self.active
        hidden = self.c_in * expansion
        out = F.conv2d(x, self.expand[0].weight[:hidden])
        out = F.relu6(_sliced_bn(out, self.expand[1], hidden, self.training))
        weight = self.kernel_weight(kernel, hidden)
        out = F.conv2d(out, weight, None, self.stride, kernel // 2, groups=hidden)
        out = F.relu6(_sliced_bn(out, self.depthwise[1], hidden, self.training))
        out = F.conv2d(out, self.project[0].weight[:, :hidden])
        out = self.project[1](out)
        return x + out if self.use_residual else out

    @torch.no_grad()
    def permute_channels(self, order: torch.Tensor) -> None:
        """Renumber the hidden channels: new channel ``i`` is old channel ``order[i]``, everywhere
        it appears (expand conv and BN, depthwise conv and BN, the projection's input). The
        matrices are shared by all channels, so at full width the function does not change."""
        order = torch.as_tensor(order, dtype=torch.long)
        if sorted(order.tolist()) != list(range(self.depthwise[0].out_channels)):
            raise ValueError("order must be a permutation of the hidden channels")
        self.expand[0].weight.copy_(self.expand[0].weight[order])
        self.depthwise[0].weight.copy_(self.depthwise[0].weight[order])
        for bn in (self.expand[1], self.depthwise[1]):
            for name in ("weight", "bias", "running_mean", "running_var"):
                tensor = getattr(bn, name)
                tensor.copy_(tensor[order])
        self.project[0].weight.copy_(self.project[0].weight[:, order])

    def sort_channels(self) -> torch.Tensor:
        """Sort the hidden channels by :func:`channel_order` (most important first), so that a
        narrower width keeps the most important ones. Returns the order used."""
        order = channel_order(self.project[0].weight)
        self.permute_channels(order)
        return order


# ---------------------------------------------------------------------------------------------
# 3. Elastic depth: the supernet
# ---------------------------------------------------------------------------------------------


def extreme_arch(space: ChainSpace, pick: Callable = max) -> ChainArch:
    """The subnet with every choice at ``pick`` (``max``: the largest, ``min``: the smallest)."""
    depth = pick(space.depths)
    stage = Stage((pick(space.kernels),) * depth, (pick(space.expansions),) * depth)
    return ChainArch((stage,) * space.num_stages)


class OFASupernet(nn.Module):
    """The elastic network of a :class:`ChainSpace`: stem, stages of ``max(depths)``
    :class:`ElasticMBConv` blocks, head. :meth:`set_active` picks a subnet (a ChainArch); a stage
    of depth ``d`` runs its first ``d`` blocks (elastic depth)."""

    def __init__(self, space: ChainSpace | None = None) -> None:
        super().__init__()
        space = ChainSpace() if space is None else space
        if space.se_ratio or space.activation != "relu6" or space.stem_stride != 1:
            raise ValueError(
                "OFASupernet supports the plain MobileNetV2 block: build the ChainSpace with "
                "activation='relu6', se_ratio=0 and stem_stride=1"
            )
        self.space = space
        stem, head, widths = space.scaled_widths(1.0)
        self.stem = _conv_bn_act(space.in_channels, stem, 3)
        stages, c_in = [], stem
        for width, stride in zip(widths, space.strides, strict=True):
            blocks = []
            for b in range(space.max_depth):
                s = stride if b == 0 else 1
                blocks.append(ElasticMBConv(c_in, width, s, space.kernels, space.expansions))
                c_in = width
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.head = _conv_bn_act(c_in, head, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head, space.num_classes)
        self.set_active(self.largest())

    def largest(self) -> ChainArch:
        """Every choice at its maximum: the network trained first, and the teacher."""
        return extreme_arch(self.space, max)

    def smallest(self) -> ChainArch:
        return extreme_arch(self.space, min)

    def set_active(self, arch: ChainArch | str) -> None:
        """Make ``arch`` the subnet that :meth:`forward` runs."""
        if isinstance(arch, str):
            arch = ChainArch.from_string(arch)
        self.active = self.space.validate(arch)
        for stage, blocks in zip(arch.stages, self.stages, strict=True):
            for block, choice in zip(blocks, stage.blocks, strict=False):
                block.active = choice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.space.in_channels:
            raise ValueError(
                f"OFASupernet expects a (batch, {self.space.in_channels}, height, width) "
                f"tensor, got shape {tuple(x.shape)}"
            )
        x = self.stem(x)
        for stage, blocks in zip(self.active.stages, self.stages, strict=True):
            for block in blocks[: stage.depth]:  # elastic depth: the first d blocks
                x = block(x)
        return self.classifier(self.pool(self.head(x)).flatten(1))

    def sort_channels(self) -> None:
        """Sort every block's hidden channels by importance (before the expansion phase)."""
        for blocks in self.stages:
            for block in blocks:
                block.sort_channels()


# ---------------------------------------------------------------------------------------------
# 4. Progressive shrinking with knowledge distillation
# ---------------------------------------------------------------------------------------------


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    kd_ratio: float = 1.0,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy on the labels plus ``kd_ratio`` times the soft-target cross-entropy
    (Hinton, Vinyals & Dean, 2014, Section 2):

    ``L = CE(s, y) + kd_ratio * T^2 * mean_n( -sum_c softmax(t_n / T)_c log softmax(s_n / T)_c )``

    The ``T^2`` keeps the soft term's gradients the same size whatever the temperature. OFA uses
    ``T = 1`` and ``kd_ratio = 1`` (the authors' code)."""
    if student.shape != teacher.shape or student.dim() != 2:
        raise ValueError(
            "student and teacher logits must both be (batch, classes); got "
            f"{tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    soft = torch.softmax(teacher.detach() / temperature, dim=1)
    soft_ce = -(soft * torch.log_softmax(student / temperature, dim=1)).sum(dim=1).mean()
    return F.cross_entropy(student, labels) + kd_ratio * temperature**2 * soft_ce


def phase_space(space: ChainSpace, phase: str) -> ChainSpace:
    """The subnets a phase of progressive shrinking samples from: each phase frees one more
    dimension, the others stay at their maximum (Cai et al., ICLR 2020, Figure 3)."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; the phases are {', '.join(PHASES)}")
    free = PHASES[1 : PHASES.index(phase) + 1]
    return ChainSpace(
        kernels=space.kernels if "kernel" in free else (max(space.kernels),),
        expansions=space.expansions if "expansion" in free else (max(space.expansions),),
        depths=space.depths if "depth" in free else (space.max_depth,),
        widths=space.widths,
        strides=space.strides,
        stem_channels=space.stem_channels,
        head_channels=space.head_channels,
        num_classes=space.num_classes,
        in_channels=space.in_channels,
    )


@dataclass
class Recipe:
    """How the supernet is trained: epochs and learning rate per phase, subnets sampled per
    step (their gradients add up, as OFA's ``dynamic_batch_size``), distillation weight."""

    epochs: dict[str, int] = field(
        default_factory=lambda: {"largest": 30, "kernel": 10, "depth": 10, "expansion": 15}
    )
    lr: dict[str, float] = field(
        default_factory=lambda: {"largest": 0.1, "kernel": 0.03, "depth": 0.03, "expansion": 0.03}
    )
    subnets_per_step: int = 2
    batch_size: int = 64
    weight_decay: float = 5e-4
    kd_ratio: float = 1.0
    temperature: float = 1.0
    scratch_epochs: int = 30  # the baselines: each reference subnet trained alone

    @classmethod
    def tiny(cls) -> Recipe:
        """A few epochs per phase: what fast mode and the tests train."""
        return cls(epochs={"largest": 3, "kernel": 1, "depth": 1, "expansion": 1}, scratch_epochs=2)


def _param_groups(net: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on convolution and linear weights only: decaying the transformation
    matrices would pull them from the identity to zero, and BN/bias decay is rarely wanted."""
    decay, rest = [], []
    for name, param in net.named_parameters():
        is_weight = name.endswith(".weight") and param.dim() > 1 and "transforms" not in name
        (decay if is_weight else rest).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0}]


def train_phase(
    net: OFASupernet,
    teacher: nn.Module | None,
    splits: Splits,
    phase: str,
    recipe: Recipe,
    seed: int,
    progress: bool = False,
) -> list[float]:
    """One phase of progressive shrinking; returns the mean training loss of each epoch.

    Each step samples ``recipe.subnets_per_step`` subnets of the phase's space, runs the batch
    through each, and adds up their gradients before one SGD step (cosine learning rate)."""
    from tqdm.auto import trange

    from nas_lab.train import batches, on_device

    epochs, lr = recipe.epochs[phase], recipe.lr[phase]
    device = next(net.parameters()).device
    train_set = on_device(splits.train, device)
    sampler, rng = phase_space(net.space, phase), np.random.default_rng(seed)
    per_step = 1 if phase == "largest" else recipe.subnets_per_step
    opt = torch.optim.SGD(_param_groups(net, recipe.weight_decay), lr, momentum=0.9, nesterov=True)
    steps_per_epoch = math.ceil(len(train_set) / recipe.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs * steps_per_epoch))
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in trange(epochs, desc=f"OFA {phase}", disable=not progress, leave=False):
        net.train()
        total, count = 0.0, 0
        for x, y in batches(train_set, recipe.batch_size, generator, device):
            soft = None
            if teacher is not None:
                with torch.no_grad():
                    soft = teacher(x)
            opt.zero_grad(set_to_none=True)
            for _ in range(per_step):
                net.set_active(sampler.sample(rng))
                logits = net(x)
                if soft is None:
                    loss = F.cross_entropy(logits, y)
                else:
                    loss = distillation_loss(logits, soft, y, recipe.kd_ratio, recipe.temperature)
                loss.backward()
                total, count = total + loss.item() * len(y), count + len(y)
            opt.step()
            schedule.step()
        losses.append(total / count)
    net.set_active(net.largest())
    net.eval()
    return losses


def train_supernet(
    space: ChainSpace | None = None,
    splits: Splits | None = None,
    recipe: Recipe | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[OFASupernet, dict]:
    """Progressive shrinking (Cai et al., ICLR 2020, Section 3.2): train the largest network,
    freeze a copy as the teacher, then train the kernel, depth and expansion phases with
    distillation; sort the channels by importance before the expansion phase. Runs on the CPU
    (one seed, one result). Returns the supernet and a log of losses and seconds per phase."""
    from nas_lab import data
    from nas_lab.train import seed_everything

    recipe = Recipe() if recipe is None else recipe
    splits = data.load("digits", seed=seed) if splits is None else splits
    seed_everything(seed)
    net = OFASupernet(space)
    log: dict = {"losses": {}, "seconds": {}}
    teacher = None
    for i, phase in enumerate(PHASES):
        start = time.perf_counter()
        if phase == "expansion":
            net.sort_channels()
        log["losses"][phase] = train_phase(net, teacher, splits, phase, recipe, seed + i, progress)
        log["seconds"][phase] = round(time.perf_counter() - start, 2)
        if phase == "largest":
            teacher = copy.deepcopy(net).eval().requires_grad_(False)
    log["seconds"]["total"] = round(sum(log["seconds"].values()), 2)
    return net, log


# ---------------------------------------------------------------------------------------------
# 5. Subnets without retraining
# ---------------------------------------------------------------------------------------------


def _copy_bn(target: nn.BatchNorm2d, source: nn.BatchNorm2d, channels: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(target, name).copy_(getattr(source, name)[:channels])
    target.num_batches_tracked.copy_(source.num_batches_tracked)


@torch.no_grad()
def extract_subnet(supernet: OFASupernet, arch: ChainArch | str) -> ChainNet:
    """The subnet ``arch`` as a stand-alone ChainNet, its weights copied out of the supernet
    (the transformed kernels, the first hidden channels, the first blocks of each stage). In eval
    mode it computes exactly what the supernet computes with ``arch`` active."""
    if isinstance(arch, str):
        arch = ChainArch.from_string(arch)
    net = supernet.space.build(arch)
    device = next(supernet.parameters()).device
    net.to(device)
    for name in ("stem", "head", "classifier"):
        getattr(net, name).load_state_dict(getattr(supernet, name).state_dict())
    for stage, blocks, elastic in zip(arch.stages, net.stages, supernet.stages, strict=True):
        for (kernel, expansion), block, source in zip(stage.blocks, blocks, elastic, strict=False):
            hidden = source.c_in * expansion
            block.expand[0].weight.copy_(source.expand[0].weight[:hidden])
            _copy_bn(block.expand[1], source.expand[1], hidden)
            block.depthwise[0].weight.copy_(source.kernel_weight(kernel, hidden))
            _copy_bn(block.depthwise[1], source.depthwise[1], hidden)
            block.project[0].weight.copy_(source.project[0].weight[:, :hidden])
            _copy_bn(block.project[1], source.project[1], block.c_out)
    return net.eval()


@torch.no_grad()
def recalibrate_bn(net: nn.Module, images: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """Re-estimate every BatchNorm's running mean and variance from ``images`` (Cai et al.,
    ICLR 2020, Section 3.4: "we re-calibrate the batch normalization statistics"). The
    supernet's statistics were averaged over many subnets, so they fit none exactly. Statistics
    are reset, then accumulated as a plain average over the batches (``momentum=None``); the
    weights are not touched. Returns ``net``, in eval mode."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise ValueError("the network has no BatchNorm layer to recalibrate")
    if len(images) < 2:
        raise ValueError("recalibration needs at least 2 images (BatchNorm's batch variance)")
    device = next(net.parameters()).device
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    try:
        for chunk in images.split(batch_size):
            if len(chunk) > 1:
                net(chunk.to(device))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        net.eval()
    return net


def calibration_images(splits: Splits, count: int = 512, seed: int = 0) -> torch.Tensor:
    """A seeded random subset of the training images, for :func:`recalibrate_bn`."""
    images = splits.train.tensors[0]
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:count]
    return images[pick]


def subnet_accuracy(
    supernet: OFASupernet,
    arch: ChainArch | str,
    splits: Splits,
    calibration: torch.Tensor,
    split: str = "val",
) -> float:
    """Accuracy of a subnet taken out of the supernet, BN recalibrated, no retraining."""
    from nas_lab.train import evaluate

    net = recalibrate_bn(extract_subnet(supernet, arch), calibration)
    return evaluate(net, getattr(splits, split))


# ---------------------------------------------------------------------------------------------
# 6. Accuracy predictor and evolutionary search under a latency limit
# ---------------------------------------------------------------------------------------------


class AccuracyPredictor(nn.Module):
    """OFA's accuracy predictor (Section 3.4): an MLP on the subnet's encoding
    (:meth:`ChainSpace.encode`: one-hot kernel and expansion per block slot, empty slots zero)."""

    def __init__(self, space: ChainSpace, hidden: int = 128, layers: int = 3) -> None:
        super().__init__()
        self.space = space
        sizes = [space.encoding_length] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            body += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*body, nn.Linear(hidden, 1))
        self.register_buffer("offset", torch.zeros(()))

    def forward(self, encodings: torch.Tensor) -> torch.Tensor:
        return self.mlp(encodings).squeeze(-1) + self.offset

    @torch.no_grad()
    def predict(self, archs: Sequence[ChainArch]) -> np.ndarray:
        """Predicted accuracies of ``archs``."""
        x = torch.as_tensor(np.stack([self.space.encode(a) for a in archs]))
        return self.eval()(x).numpy().astype(float)


def fit_predictor(
    space: ChainSpace,
    archs: Sequence[ChainArch],
    accuracies: Sequence[float],
    epochs: int = 300,
    seed: int = 0,
) -> AccuracyPredictor:
    """Fit an :class:`AccuracyPredictor` by mean squared error (Adam, full batch). The output
    starts at the mean accuracy (``offset``), so the MLP learns the differences."""
    if len(archs) != len(accuracies) or len(archs) < 2:
        raise ValueError("need at least 2 architectures, one accuracy each")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AccuracyPredictor(space)
    x = torch.as_tensor(np.stack([space.encode(a) for a in archs]))
    y = torch.as_tensor(np.asarray(accuracies, dtype=np.float32))
    model.offset.fill_(float(y.mean()))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()
    for _ in range(epochs):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    return model.eval()


def arch_block_specs(space: ChainSpace, arch: ChainArch, input_size: int = 8) -> list:
    """The :class:`~nas_lab.hardware.BlockSpec` of every block of ``arch``, without building the
    network: what the latency lookup table needs (stem stride 1, as the supernet's)."""
    from nas_lab.hardware import BlockSpec

    stem, _, widths = space.scaled_widths(1.0)
    specs, c_in, size = [], stem, input_size
    for stage, width, stride in zip(
        space.validate(arch).stages, widths, space.strides, strict=True
    ):
        for b, (kernel, expansion) in enumerate(stage.blocks):
            s = stride if b == 0 else 1
            specs.append(BlockSpec(c_in, width, kernel, expansion, s, size))
            c_in, size = width, (size + s - 1) // s
    return specs


def _genome(space: ChainSpace, arch: ChainArch) -> tuple[list[int], list[list[tuple[int, int]]]]:
    """OFA's fixed-length form of a subnet: a depth per stage and a (kernel, expansion) per
    block slot, ``max_depth`` slots per stage; the slots past a stage's depth are kept (unused)
    so that mutation and crossover work slot by slot."""
    slots = []
    for stage in arch.stages:
        pad = [(space.kernels[0], space.expansions[0])] * (space.max_depth - stage.depth)
        slots.append(list(stage.blocks) + pad)
    return list(arch.depths), slots


def _arch(depths: list[int], slots: list[list[tuple[int, int]]]) -> ChainArch:
    return ChainArch(
        tuple(
            Stage(tuple(k for k, _ in s[:d]), tuple(e for _, e in s[:d]))
            for d, s in zip(depths, slots, strict=True)
        )
    )


def mutate(space: ChainSpace, arch: ChainArch, prob: float, rng: np.random.Generator):
    """Resample each choice (every slot's kernel and expansion, every stage's depth) with
    probability ``prob``, as OFA's evolutionary search does."""
    depths, slots = _genome(space, arch)
    for s, stage_slots in enumerate(slots):
        for b, (kernel, expansion) in enumerate(stage_slots):
            if rng.random() < prob:
                kernel = int(rng.choice(space.kernels))
            if rng.random() < prob:
                expansion = int(rng.choice(space.expansions))
            stage_slots[b] = (kernel, expansion)
        if rng.random() < prob:
            depths[s] = int(rng.choice(space.depths))
    return _arch(depths, slots)


def crossover(space: ChainSpace, a: ChainArch, b: ChainArch, rng: np.random.Generator):
    """Each choice taken from one of the two parents, at random."""
    (da, sa), (db, sb) = _genome(space, a), _genome(space, b)
    depths = [x if rng.random() < 0.5 else y for x, y in zip(da, db, strict=True)]
    slots = [
        [x if rng.random() < 0.5 else y for x, y in zip(p, q, strict=True)]
        for p, q in zip(sa, sb, strict=True)
    ]
    return _arch(depths, slots)


@dataclass
class SearchResult:
    arch: ChainArch
    accuracy: float  # predicted
    latency_ms: float  # from the lookup table
    best_per_generation: list[float]


def evolutionary_search(
    space: ChainSpace,
    predict: Callable[[Sequence[ChainArch]], np.ndarray],
    latency: Callable[[ChainArch], float],
    limit_ms: float,
    population: int = 100,
    generations: int = 30,
    parent_ratio: float = 0.25,
    mutation_ratio: float = 0.5,
    mutate_prob: float = 0.1,
    seed: int = 0,
) -> SearchResult:
    """OFA's search (Cai et al., ICLR 2020, Section 3.4, and the authors' code): a population
    of subnets that meet the latency limit; each generation keeps the best ``parent_ratio`` by
    predicted accuracy, and refills the population with mutants (``mutation_ratio`` of it) and
    crossovers of random parents, each redrawn until it meets the limit."""
    rng = as_rng(seed)

    def feasible(make: Callable[[], ChainArch]) -> ChainArch:
        for _ in range(1000):
            arch = make()
            if latency(arch) <= limit_ms:
                return arch
        raise ValueError(
            f"no subnet found under {limit_ms:.3f} ms in 1000 draws; the smallest subnet needs "
            f"{latency(extreme_arch(space, min)):.3f} ms: raise the limit"
        )

    pop = [feasible(lambda: space.sample(rng)) for _ in range(population)]
    n_parents, n_mutants = max(2, int(parent_ratio * population)), int(mutation_ratio * population)
    history = []
    for _ in range(generations):
        scores = np.asarray(predict(pop))
        order = np.argsort(-scores, kind="stable")
        parents = [pop[i] for i in order[:n_parents]]
        history.append(float(scores[order[0]]))
        children = []
        for _ in range(n_mutants):
            parent = parents[rng.integers(n_parents)]
            children.append(feasible(lambda p=parent: mutate(space, p, mutate_prob, rng)))
        while len(parents) + len(children) < population:
            i, j = rng.integers(n_parents, size=2)
            a, b = parents[i], parents[j]
            children.append(feasible(lambda a=a, b=b: crossover(space, a, b, rng)))
        pop = parents + children
    scores = np.asarray(predict(pop))
    best = int(np.argmax(scores))
    return SearchResult(pop[best], float(scores[best]), float(latency(pop[best])), history)


# ---------------------------------------------------------------------------------------------
# 7. Shipping the supernet: save, verify, load
# ---------------------------------------------------------------------------------------------

_SPACE_FIELDS = (
    "kernels",
    "expansions",
    "depths",
    "widths",
    "strides",
    "stem_channels",
    "head_channels",
    "num_classes",
    "in_channels",
)


def space_config(space: ChainSpace) -> dict:
    return {name: getattr(space, name) for name in _SPACE_FIELDS}


def save_supernet(net: OFASupernet, path: str | Path, log: dict, command: str) -> dict:
    """Write the weights and the space to ``path`` and a manifest beside it (sha256, command,
    library and torch versions, date, machine, the training log). Returns the manifest."""
    from nas_lab import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save({"space": space_config(net.space), "state_dict": state}, path)
    return write_manifest(
        path,
        command=command,
        nas_lab=__version__,
        torch=torch.__version__,
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine={"platform": platform.platform(), "processor": platform.processor()},
        space=space_config(net.space),
        **log,
    )


def load_supernet(
    path: str | Path | None = None, fast: bool = False, seed: int = 0, progress: bool = True
) -> tuple[OFASupernet, dict]:
    """The trained supernet and its manifest.

    Loads ``path`` (default: the shipped ``data/ofa_supernet.pt``) after checking its sha256
    against the manifest. When the file is missing, trains one now with progressive shrinking:
    the full recipe (about ten minutes on two cores), or with ``fast=True`` a tiny one (seconds,
    far less accurate). A file that does not match its manifest is an error, never silently
    replaced."""
    path = SUPERNET if path is None else Path(path)
    if not path.exists():
        recipe = Recipe.tiny() if fast else Recipe()
        print(f"no supernet at {path}: training one now ({'tiny, fast mode' if fast else 'full'})")
        net, log = train_supernet(recipe=recipe, seed=seed, progress=progress)
        return net, {"trained_now": True, "fast": fast, **log}
    manifest = read_manifest(
        path, f"restore it with `git checkout data/`, or rebuild it with `{BUILD_COMMAND}`"
    )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    net = OFASupernet(ChainSpace(**payload["space"]))
    net.load_state_dict(payload["state_dict"])
    return net.eval(), manifest


def reference_subnets(space: ChainSpace, count: int = 6, seed: int = 0) -> list[ChainArch]:
    """The subnets the lesson compares with training from scratch: the largest, the smallest
    and ``count - 2`` drawn at random (seeded)."""
    rng = np.random.default_rng(seed)
    archs = [extreme_arch(space, max), extreme_arch(space, min)]
    while len(archs) < count:
        arch = space.sample(rng)
        if arch not in archs:
            archs.append(arch)
    return archs


def train_from_scratch(
    space: ChainSpace, arch: ChainArch, splits: Splits, epochs: int, seed: int = 0
) -> dict:
    """The baseline: ``arch`` built with fresh weights and trained alone with the course's
    recipe (``nas_lab.train.train``). Returns its test and validation accuracy."""
    from nas_lab.train import train

    net = space.build(arch, seed=seed)
    history = train(net, splits, epochs=epochs, seed=seed, device="cpu", progress=False)
    return {
        "arch": str(arch),
        "test_acc": history.test_acc,
        "val_acc": history.val_acc[-1],
        "epochs": epochs,
        "seconds": round(history.train_time, 2),
    }


def build(
    out: str | Path,
    seed: int = 0,
    fast: bool = False,
    progress: bool = True,
    recipe: Recipe | None = None,
) -> dict:
    """What ``nas-lab ofa build`` runs: train the supernet with progressive shrinking, train the
    reference subnets from scratch (the lesson's baselines), save both with a manifest."""
    from nas_lab import data

    recipe = recipe or (Recipe.tiny() if fast else Recipe())
    splits = data.load("digits", seed=seed)
    net, log = train_supernet(splits=splits, recipe=recipe, seed=seed, progress=progress)
    log["scratch"] = [
        train_from_scratch(net.space, arch, splits, recipe.scratch_epochs, seed)
        for arch in reference_subnets(net.space, seed=seed)
    ]
    log["recipe"] = {
        "epochs": recipe.epochs,
        "lr": recipe.lr,
        "subnets_per_step": recipe.subnets_per_step,
        "batch_size": recipe.batch_size,
        "weight_decay": recipe.weight_decay,
        "kd_ratio": recipe.kd_ratio,
        "temperature": recipe.temperature,
        "scratch_epochs": recipe.scratch_epochs,
        "dataset": "digits",
        "data_seed": seed,
        "threads": torch.get_num_threads(),
    }
    command = f"nas-lab ofa build --out {out} --seed {seed}" + (" --fast" if fast else "")
    return save_supernet(net, out, log, command)


# ---------------------------------------------------------------------------------------------
# 8. The accuracy-latency front, for the lesson's figure and its widget
# ---------------------------------------------------------------------------------------------


def limit_summary(
    latencies: Sequence[float],
    accuracies: Sequence[float],
    labels: Sequence[str],
    limit_ms: float,
) -> str:
    """What the latency-limit slider shows: the best subnet within ``limit_ms`` (HTML)."""
    best = best_under_limit(latencies, accuracies, limit_ms)
    if best is None:
        return f"<b>no subnet</b> runs within {limit_ms:.3f} ms: raise the limit"
    return (
        f"<b>best within {limit_ms:.3f} ms</b>: {labels[best]}<br>"
        f"accuracy {accuracies[best]:.1%}, latency {latencies[best]:.3f} ms"
    )


def plot_front(latencies, accuracies, limit_ms: float | None = None, ax=None, title: str = ""):
    """All subnets as points, their accuracy-latency front as a line; with ``limit_ms``, the
    limit as a dashed line and the best subnet within it as a star."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    lat, acc = np.asarray(latencies, dtype=float), np.asarray(accuracies, dtype=float)
    front = latency_front(lat, acc)
    ax.scatter(lat, acc, s=12, alpha=0.5, label="subnets")
    ax.step(lat[front], acc[front], where="post", color="crimson", label="front")
    if limit_ms is not None:
        ax.axvline(limit_ms, color="k", ls="--", lw=1, label=f"limit {limit_ms:.3f} ms")
        best = best_under_limit(lat, acc, limit_ms)
        if best is not None:
            ax.scatter(
                lat[best],
                acc[best],
                marker="*",
                s=250,
                color="gold",
                edgecolor="k",
                zorder=3,
                label="best within the limit",
            )
    ax.set_xlabel("latency (ms, lookup table)")
    ax.set_ylabel("accuracy")
    ax.set_title(title or "Accuracy against latency")
    ax.legend(loc="lower right")
    return ax
