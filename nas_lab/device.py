"""Where tensors live (CUDA when present, else the CPU), and how many threads torch takes."""

from __future__ import annotations

import itertools
import os

import torch


def default_device() -> torch.device:
    """CUDA when a GPU is visible, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters (or, without any, its buffers) live; the CPU for an empty one."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


GPU_THREADS = 4  # the most torch threads a lesson takes beside a GPU (see ``thread_count``)


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def thread_count(cuda: bool, cores: int | None = None) -> int:
    """How many intra-op threads torch gets in a lesson (``notebook.setup``) or a long command
    (``python -m nas_lab.oneshot.results``): ``NAS_LAB_THREADS`` when set (a positive integer),
    else 1 without a GPU and ``min(cores, GPU_THREADS)`` with one.

    The course's networks are tiny: on a CPU, one thread runs them many times faster than several,
    whose synchronisation costs more than the work they share. With a GPU the networks run there
    and a few threads serve what stays on the CPU; torch's default, one thread per core, made
    notebooks running side by side on a 16-core GPU machine 3-5 times slower."""
    setting = os.environ.get("NAS_LAB_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"NAS_LAB_THREADS must be a positive integer, got {setting!r}")
        return int(setting)
    if not cuda:
        return 1
    return min(available_cores() if cores is None else int(cores), GPU_THREADS)
