"""What an architecture costs: parameters and FLOPs.

FLOPs are counted by ``torch.utils.flop_counter`` on a real forward pass, so every layer the
network really runs is counted, and nothing else. Following the convention of torch's counter,
one multiply-add is 2 FLOPs; ``count_macs`` halves it for papers that quote multiply-adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters (BatchNorm running statistics are buffers and are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass on a zero input of ``input_shape`` (batch dimension included)."""
    if len(input_shape) < 2:
        raise ValueError(
            "input_shape must include the batch dimension, e.g. (1, 1, 8, 8); "
            f"got {tuple(input_shape)}"
        )
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(*input_shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulate operations: half of ``count_flops``."""
    return count_flops(model, input_shape) // 2
