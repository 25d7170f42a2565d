"""Measuring latency: the one latency timer of the library (lesson 09, step 1).

:func:`measure_latency` is the median forward time of a model, measured properly with
``torch.utils.benchmark`` (warm-up calls first, a fixed thread count, blocks of calls long enough
that the clock's own cost vanishes, the GPU synchronised before each clock read).
:func:`time_forward` is the timer under it, for a model and an input as they stand; the benchmark
builder (:func:`nas_lab.bench.build.recipe_latency`) times its records with it too.

``clock="cpu"`` (everywhere a latency is measured) times CPU time instead of wall time, for
machines shared with other jobs.
"""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from numbers import Integral, Real

import torch
from torch import nn

from nas_lab.arguments import check_int
from nas_lab.device import model_device

MIN_BLOCK_SECONDS = 1e-3  # one timed block lasts at least this long (see measure_latency)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the body with ``threads`` intra-op CPU threads, then restore the previous count.

    A latency is only meaningful with its thread count: the same network on 1 and on 4 threads
    can differ several-fold, and tiny networks often run *faster* on one thread."""
    threads = check_int("threads", threads)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


CLOCKS = ("wall", "cpu")


def device_clock(device: torch.device, kind: str = "wall") -> Callable[[], float]:
    """A wall clock that first waits for the GPU: CUDA kernels run asynchronously, so without
    ``torch.cuda.synchronize`` the clock would time the kernel *launches*, not the work.

    ``kind="cpu"`` (CPU only) reads the process's CPU time instead (``time.process_time``): on a
    machine shared with other jobs, the wall clock also counts the time the OS gave to someone
    else, the CPU clock only the time spent computing this model."""
    if kind not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, got {kind!r}")
    if kind == "cpu":
        if device.type != "cpu":
            raise ValueError("clock='cpu' times CPU work only; use clock='wall' on a GPU")
        return time.process_time
    if device.type == "cuda":

        def clock() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()

        return clock
    return time.perf_counter


def time_forward(
    net: nn.Module,
    x: torch.Tensor,
    threads: int = 1,
    warmup: int = 5,
    repeats: int = 15,
    clock: str = "wall",
    min_run_time: float | None = None,
) -> float:
    """Median time of one ``net(x)`` call in **milliseconds**, with ``net`` and ``x`` as they are
    (their device, the model's train/eval mode: :func:`measure_latency` sets those up), under
    ``torch.no_grad()`` at ``threads`` CPU threads, timed with ``torch.utils.benchmark.Timer`` on
    the clock ``clock`` of ``x``'s device (see :func:`device_clock`).

    ``warmup`` untimed calls come first. Then the blocks of calls, chosen one of two ways:

    - by default, one call sizes a block to last at least :data:`MIN_BLOCK_SECONDS`, and
      ``repeats`` blocks are timed;
    - with ``min_run_time`` (seconds), ``Timer.blocked_autorange`` sizes the block itself (until
      the clock's cost is under 0.01% of it) and times blocks until ``min_run_time`` has passed;
      ``repeats`` is then unused. This is the benchmark builder's protocol (0.05 s).

    Either way each block yields the mean time of one call, and the median over blocks ignores
    the odd block slowed down by another process."""
    from torch.utils.benchmark import Timer

    threads = check_int("threads", threads)
    warmup = check_int("warmup", warmup, minimum=0)
    repeats = check_int("repeats", repeats)
    if min_run_time is not None and (
        isinstance(min_run_time, bool) or not isinstance(min_run_time, Real) or not min_run_time > 0
    ):
        raise ValueError(f"min_run_time must be a number of seconds > 0, got {min_run_time!r}")
    clock_fn = device_clock(x.device, clock)
    with torch.no_grad(), torch_threads(threads):
        for _ in range(warmup):
            net(x)
        timer = Timer("net(x)", globals={"net": net, "x": x}, timer=clock_fn, num_threads=threads)
        if min_run_time is not None:
            return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3
        start = clock_fn()
        net(x)
        once = max(clock_fn() - start, 1e-7)
        number = max(1, math.ceil(MIN_BLOCK_SECONDS / once))
        times = [timer.timeit(number).mean for _ in range(repeats)]
    return statistics.median(times) * 1e3


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    threads: int = 1,
    device: str | torch.device | None = None,
    warmup: int = 5,
    repeats: int = 15,
    clock: str = "wall",
) -> float:
    """Median forward latency of ``model`` in **milliseconds**, on an input of ``input_shape``
    (batch dimension included, e.g. ``(1, 1, 8, 8)``).

    The protocol, and why:

    - eval mode and ``torch.no_grad()``: deployment latency, no autograd bookkeeping (the
      model's train/eval mode is restored afterwards);
    - ``threads`` CPU threads, fixed (see :func:`torch_threads`);
    - ``device``: where to run; ``None`` runs where the model's parameters already are. A model on
      another device is copied there, so the caller's model is never moved;
    - ``warmup`` untimed calls: the first calls allocate memory, pick kernels (cuDNN) and fill
      caches, and would otherwise be counted;
    - then ``repeats`` timed blocks with ``torch.utils.benchmark.Timer`` (:func:`time_forward`);
      each block runs the model enough times to last at least 1 ms, so the clock's own cost is
      negligible, and yields the mean time of one call. The median over blocks ignores the odd
      block slowed down by another process. On CUDA the clock synchronises the GPU before each
      read;
    - ``clock="cpu"`` times CPU time instead of wall time (see :func:`device_clock`): use it when
      other jobs share the machine and the wall clock would count their time too.
    """
    shape = tuple(input_shape)
    if len(shape) < 2 or not all(isinstance(s, Integral) and s >= 1 for s in shape):
        raise ValueError(
            "input_shape must be positive integers with the batch dimension first, "
            f"e.g. (1, 1, 8, 8); got {tuple(input_shape)!r}"
        )
    threads = check_int("threads", threads)
    warmup = check_int("warmup", warmup, minimum=0)
    repeats = check_int("repeats", repeats)
    target = torch.device(device) if device is not None else model_device(model)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for, but no GPU is visible; use device='cpu'")
    net = model if model_device(model) == target else copy.deepcopy(model).to(target)
    # Random, not zero, input: some kernels take shortcuts on zeros or denormals.
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=generator).to(target)
    device_clock(target, clock)  # a bad clock is refused before the model is touched
    was_training = net.training
    net.eval()
    try:
        return time_forward(net, x, threads, warmup, repeats, clock)
    finally:
        net.train(was_training)
