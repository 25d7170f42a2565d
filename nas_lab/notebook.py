"""What the first cells of every lesson share: fast mode, seeding, torch's threads, readable
figures."""

from __future__ import annotations

import os

from nas_lab.device import thread_count


def fast_mode(fast: bool = False) -> bool:
    """Fast mode is on when the notebook's parameter says so or ``NAS_LAB_FAST=1`` is set.

    Fast mode shrinks epochs, budgets and seeds per comparison, never the code path."""
    return bool(fast) or os.environ.get("NAS_LAB_FAST", "") not in ("", "0", "false", "False")


def setup(fast: bool = False, seed: int = 0) -> bool:
    """Seed everything, pin torch's intra-op threads, set a legible figure style, and return
    whether fast mode is on.

    Threads: :func:`nas_lab.device.thread_count` (1 on a CPU-only machine, at most 4 beside a
    GPU); set the environment variable ``NAS_LAB_THREADS`` to choose another number (e.g.
    ``NAS_LAB_THREADS=8 jupyter lab``)."""
    import matplotlib.pyplot as plt
    import torch

    from nas_lab.train import seed_everything

    seed_everything(seed)
    torch.set_num_threads(thread_count(torch.cuda.is_available()))
    plt.rcParams.update({"figure.figsize": (7, 4), "figure.dpi": 100, "axes.grid": True})
    fast = fast_mode(fast)
    print(f"NAS Lab: {'FAST' if fast else 'full'} mode, seed {seed}")
    return fast
