"""Where tensors live: CUDA when present, the CPU otherwise."""

from __future__ import annotations

import itertools

import torch


def default_device() -> torch.device:
    """CUDA when a GPU is visible, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters (or, without any, its buffers) live; the CPU for an empty one."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")
