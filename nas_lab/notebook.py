"""What the first cells of every lesson share: fast mode, seeding, readable figures."""

from __future__ import annotations

import os


def fast_mode(fast: bool = False) -> bool:
    """Fast mode is on when the notebook's parameter says so or ``NAS_LAB_FAST=1`` is set.

    Fast mode shrinks epochs, budgets and seeds per comparison, never the code path."""
    return bool(fast) or os.environ.get("NAS_LAB_FAST", "") not in ("", "0", "false", "False")


def setup(fast: bool = False, seed: int = 0) -> bool:
    """Seed everything, set a legible figure style, and return whether fast mode is on."""
    import matplotlib.pyplot as plt
    import torch

    from nas_lab.train import seed_everything

    seed_everything(seed)
    # The course's networks are tiny: on a CPU, one thread runs them many times faster than
    # several, whose synchronisation costs more than the work they share.
    if not torch.cuda.is_available():
        torch.set_num_threads(1)
    plt.rcParams.update({"figure.figsize": (7, 4), "figure.dpi": 100, "axes.grid": True})
    fast = fast_mode(fast)
    print(f"NAS Lab: {'FAST' if fast else 'full'} mode, seed {seed}")
    return fast
