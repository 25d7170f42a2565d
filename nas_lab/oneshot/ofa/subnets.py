"""Once-for-All's subnets without retraining: copy one out, re-estimate its BatchNorm, measure it.

After Cai, Gan, Wang, Zhang & Han, "Once-for-All: Train One Network and Specialize it for
Efficient Deployment", ICLR 2020, Section 3.4: :func:`extract_subnet` copies a subnet's weights
into a stand-alone :class:`~nas_lab.spaces.mbconv.ChainNet`;
:func:`~nas_lab.train.recalibrate_bn` re-estimates its BatchNorm statistics on a few batches
(the supernet's running statistics mix all subnets).
"""

from __future__ import annotations

import torch
from torch import nn

from nas_lab.data import Splits
from nas_lab.oneshot.ofa.elastic import OFASupernet
from nas_lab.spaces.mbconv import ChainArch, ChainNet
from nas_lab.train import recalibrate_bn


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


def calibration_images(splits: Splits, count: int = 512, seed: int = 0) -> torch.Tensor:
    """A seeded random subset of the training images, for :func:`~nas_lab.train.recalibrate_bn`."""
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
