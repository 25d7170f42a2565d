"""What ProxylessNAS's binarized paths save: activation memory and time per training step of the
lesson 09 supernet, the softmax mixture against a binarized weight step (one path per block) and
an architecture step (two paths per block).

    python benchmarks/bench_proxylessnas.py [--batch 32 64 256] [--device cpu|cuda]
                                            [--clock cpu|wall] [--threads 1] [--seed 0]

The supernet is lesson 09's: the default ChainSpace at its largest depth (3 stages x 4 blocks),
four candidates per block (kernel 3 or 7, expansion 3 or 6), and an identity candidate on the
blocks that may be skipped (the 3rd and 4th of each stage). For each batch size and kind of
step it prints the activation memory autograd keeps for the backward pass (saved tensors, each
storage once, parameters left out: the step's peak activation memory), the allocator's peak
over the forward and backward pass (on CUDA ``torch.cuda.max_memory_allocated``, on the CPU
the profiler's record of allocations), and the median time of a forward and backward pass
(``--clock cpu``, the default on a CPU, times CPU time, which stays honest on a machine shared
with other jobs; on CUDA the clock is the synchronised wall clock).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from nas_lab.oneshot import proxylessnas as px
from nas_lab.spaces.mbconv import ChainSpace

CHOICES = [(3, 3), (7, 3), (3, 6), (7, 6)]  # lesson 09's candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 64, 256])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default=None, help="default: cpu on a CPU"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    clock = args.clock or ("cpu" if args.device == "cpu" else "wall")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    net = px.LatencyAwareSupernet(ChainSpace(), CHOICES, table=None).to(args.device)
    where = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    per_block = [len(block.candidates) for block in net.blocks]
    print(
        f"device {args.device} ({where or platform.machine()}), {args.threads} thread(s), "
        f"{clock} clock"
    )
    print(
        f"supernet: {len(net.blocks)} blocks, {sum(per_block)} candidate paths "
        f"({min(per_block)}-{max(per_block)} per block), "
        f"{sum(p.numel() for p in net.weight_parameters()):,} weights"
    )
    print(f"{'batch':>5} {'step':18} {'activations MB':>14} {'peak MB':>8} {'ms/step':>8}")
    generator = torch.Generator().manual_seed(args.seed)
    for size in args.batch:
        x = torch.rand(size, 1, 8, 8, generator=generator).to(args.device)
        y = torch.randint(0, 10, (size,), generator=generator).to(args.device)
        rows = px.step_costs(net, x, y, seed=args.seed, clock=clock)
        for name, row in rows.items():
            print(
                f"{size:5d} {name:18} {row['activations_mb']:14.1f} {row['peak_mb']:8.1f}"
                f" {row['ms']:8.1f}"
            )
        mix, one = rows["mixture"], rows["weight step"]
        print(
            f"{'':5} mixture / weight step: activations x"
            f"{mix['activations_mb'] / one['activations_mb']:.1f}, peak x"
            f"{mix['peak_mb'] / one['peak_mb']:.1f}, time x{mix['ms'] / one['ms']:.1f}"
        )
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
