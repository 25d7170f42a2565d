"""What a search is told, where a batch runs, and how many threads a lesson takes (issue 15).

- ``strategies.run`` tells a strategy the result without its test accuracy, while the clock's
  trajectory keeps it for reporting;
- GDAS runs a batch made on another device on its supernet's device (on a GPU machine the
  batches of a test are made on the CPU and the supernet lives on CUDA; here the ``meta``
  device plays CUDA's part);
- ``notebook.setup`` pins torch's intra-op threads: 1 without a GPU, at most 4 beside one,
  ``NAS_LAB_THREADS`` when set.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from nas_lab import bench, device, notebook
from nas_lab.oneshot import gdas
from nas_lab.oneshot import supernet as sn
from nas_lab.spaces import nb201
from nas_lab.strategies import run
from nas_lab.strategies.wrappers import Constrained


class Recorder:
    """A random search that keeps everything it is told."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.told: list = []

    def ask(self) -> nb201.Cell:
        return nb201.sample(self.rng)

    def tell(self, cell, result) -> None:
        self.told.append(result)


@pytest.fixture(scope="module")
def table():
    return bench.load()


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "inside-a-wrapper"])
def test_a_strategy_is_never_told_a_test_accuracy(table, wrapped):
    recorder = Recorder(seed=0)
    strategy = Constrained(recorder, lambda r: r.val_acc) if wrapped else recorder
    clock = run(strategy, table, budget=400, seed=0)
    told = recorder.told
    assert len(told) == len(clock.trajectory) > 5
    assert all(result.test_acc is None for result in told)
    # The record keeps the test accuracy, the one the run's recorded training gave ...
    for (_, arch, val_acc, test_acc), result in zip(clock.trajectory, told, strict=True):
        assert test_acc is not None
        assert test_acc == table.query(arch, seed=clock.seed).test_acc
        # ... and the strategy is told everything else unchanged.
        assert result.arch == arch and result.val_acc == val_acc
        full = table.query(arch, seed=clock.seed)
        assert (result.params, result.latency_ms, result.train_time) == (
            full.params,
            full.latency_ms,
            full.train_time,
        )


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_gdas_runs_a_batch_on_its_supernets_device(restore_threads):
    torch.set_num_threads(1)
    search = gdas.GDAS(epochs=1, C=4, N=1, progress=False, device="cpu")
    x, y = sn.search_data(0).weights.tensors
    x, y = x[:8], y[:8]  # on the CPU
    # The supernet on another device than the batch (CUDA on a GPU machine; ``meta`` here,
    # which refuses CPU tensors just as CUDA does).
    search.net.to("meta")
    logits = search.logits(x)
    assert logits.device.type == "meta" and tuple(logits.shape) == (8, 10)
    assert search.loss((x, y)).device.type == "meta"


@pytest.fixture
def sixteen_cores(monkeypatch, restore_threads):
    """A 16-core machine, as the GPU machine of issue 15, and no NAS_LAB_THREADS."""
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.delenv("NAS_LAB_THREADS", raising=False)
    torch.set_num_threads(3)  # neither 1 nor 4: whatever setup leaves is its own choice


def test_setup_pins_torch_threads_beside_a_gpu(monkeypatch, sixteen_cores):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    notebook.setup(fast=True)
    assert torch.get_num_threads() == 4  # min(cores, 4), not one per core
    monkeypatch.setenv("NAS_LAB_THREADS", "2")
    notebook.setup(fast=True)
    assert torch.get_num_threads() == 2


def test_setup_takes_one_thread_without_a_gpu_unless_told(monkeypatch, sixteen_cores):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    notebook.setup(fast=True)
    assert torch.get_num_threads() == 1
    monkeypatch.setenv("NAS_LAB_THREADS", "2")
    notebook.setup(fast=True)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("setting", ["0", "-1", "four", "2.5"])
def test_setup_refuses_a_thread_count_that_is_not_a_positive_integer(monkeypatch, setting):
    monkeypatch.setenv("NAS_LAB_THREADS", setting)
    with pytest.raises(ValueError, match="NAS_LAB_THREADS"):
        device.thread_count(cuda=True, cores=16)


def test_fewer_cores_than_the_cap_take_them_all(monkeypatch):
    monkeypatch.delenv("NAS_LAB_THREADS", raising=False)
    assert device.thread_count(cuda=True, cores=2) == 2
    assert device.thread_count(cuda=True, cores=64) == device.GPU_THREADS == 4
