"""Where tensors live: CUDA when present, the CPU otherwise."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """CUDA when a GPU is visible, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
