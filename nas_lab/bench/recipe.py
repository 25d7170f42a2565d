"""The benchmark's recipe: everything that decides a record, and the machine a build ran on.

Read by the builder (:mod:`nas_lab.bench.build`), by the supernets that train the benchmark's own
network (:mod:`nas_lab.oneshot.supernet`) and by the proxy table (:mod:`nas_lab.proxies`), which
scores the network the benchmark trained; none of them needs the builder to read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a record. Changing any field makes a different benchmark."""

    dataset: str = "digits"
    data_seed: int = 0  # the train/val/test split is the same for every training seed
    train_fraction: float = 1.0  # share of the training split used (stratified)
    channels: int = 8  # C of the NAS-Bench-201 skeleton (16 in the paper)
    cells_per_stage: int = 3  # N (5 in the paper); with 1, the skeleton's own convolutions
    # decide most of the accuracy and the table ranks noise (measured: notes of issue 3)
    epochs: int = 4  # digits saturate fast: at 8 or 12 epochs most cells tie near 98%
    batch_size: int = 64
    lr: float = 0.1
    weight_decay: float = 5e-4
    threads: int = 1  # torch threads per worker: training, and latency measured at this count
    latency_train_batch: int = 64


RECIPE = Recipe()


def machine() -> dict:
    """Where a build ran: enough to say why latencies or timings differ elsewhere."""
    import platform

    from nas_lab import __version__

    cpu = platform.processor()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "nas_lab": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
    }
