"""Once-for-All's progressive shrinking: train the largest network, then let it shrink.

After Cai, Gan, Wang, Zhang & Han, "Once-for-All: Train One Network and Specialize it for
Efficient Deployment", ICLR 2020, Section 3.2 and Figure 3: train the largest network, then let
the kernel, then the depth, then the expansion shrink, each phase sampling subnets and distilling
from the largest network's soft targets (Hinton, Vinyals & Dean, "Distilling the Knowledge in a
Neural Network", NIPS Deep Learning Workshop 2014).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.data import Splits
from nas_lab.oneshot.ofa.elastic import OFASupernet
from nas_lab.spaces.mbconv import ChainSpace

# The order of progressive shrinking (Cai et al., ICLR 2020, Figure 3).
PHASES = ("largest", "kernel", "depth", "expansion")


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
class ShrinkingRecipe:
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
    def tiny(cls) -> ShrinkingRecipe:
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
    recipe: ShrinkingRecipe,
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
    recipe: ShrinkingRecipe | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[OFASupernet, dict]:
    """Progressive shrinking (Cai et al., ICLR 2020, Section 3.2): train the largest network,
    freeze a copy as the teacher, then train the kernel, depth and expansion phases with
    distillation; sort the channels by importance before the expansion phase. Runs on the CPU
    (one seed, one result). Returns the supernet and a log of losses and seconds per phase."""
    from nas_lab import data
    from nas_lab.train import seed_everything

    recipe = ShrinkingRecipe() if recipe is None else recipe
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
