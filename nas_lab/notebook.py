"""What the first cells of every lesson share: fast mode, seeding, torch's threads, readable
figures."""

from __future__ import annotations

import os

GPU_THREADS = 4  # the most torch threads a lesson takes beside a GPU (see ``torch_threads``)


def fast_mode(fast: bool = False) -> bool:
    """Fast mode is on when the notebook's parameter says so or ``NAS_LAB_FAST=1`` is set.

    Fast mode shrinks epochs, budgets and seeds per comparison, never the code path."""
    return bool(fast) or os.environ.get("NAS_LAB_FAST", "") not in ("", "0", "false", "False")


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def torch_threads(cuda: bool, cores: int | None = None) -> int:
    """How many intra-op threads torch gets in a lesson: ``NAS_LAB_THREADS`` when set (a positive
    integer), else 1 without a GPU and ``min(cores, GPU_THREADS)`` with one.

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


def setup(fast: bool = False, seed: int = 0) -> bool:
    """Seed everything, pin torch's intra-op threads, set a legible figure style, and return
    whether fast mode is on.

    Threads: ``torch_threads`` (1 on a CPU-only machine, at most 4 beside a GPU); set the
    environment variable ``NAS_LAB_THREADS`` to choose another number (e.g.
    ``NAS_LAB_THREADS=8 jupyter lab``)."""
    import matplotlib.pyplot as plt
    import torch

    from nas_lab.train import seed_everything

    seed_everything(seed)
    torch.set_num_threads(torch_threads(torch.cuda.is_available()))
    plt.rcParams.update({"figure.figsize": (7, 4), "figure.dpi": 100, "axes.grid": True})
    fast = fast_mode(fast)
    print(f"NAS Lab: {'FAST' if fast else 'full'} mode, seed {seed}")
    return fast
