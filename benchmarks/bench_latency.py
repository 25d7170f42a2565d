"""How well latency is predicted: measured against the lookup table's sum, the calibrated table
and the learned predictor, on held-out networks of the MBConv chain space.

    python benchmarks/bench_latency.py [--nets 90] [--clock cpu|wall] [--device cpu|cuda]
                                       [--threads 1] [--seed 0]

Measures a per-block latency table (45 block specs), then ``--nets`` random networks whole; fits
the calibrated table and the learned predictor on two thirds of them and prints each predictor's
error on the other third, beside the error of measuring those networks a second time (no
predictor can be judged more precisely than that). ``--clock cpu`` (the default on a CPU) times
CPU time, which stays honest on a machine shared with other jobs; ``--clock wall`` times what a
user waits. On CUDA the clock is always the (synchronised) wall clock.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from nas_lab import hardware as hw
from nas_lab.spaces.mbconv import ChainSpace


def predictors(space, table, archs, measured, fit, held) -> dict[str, np.ndarray]:
    """Each predictor's predictions on the held-out networks."""
    lut = np.array([table.predict(space.build(a)) for a in archs])
    features = np.array([hw.block_features(space, a) for a in archs])
    learned = hw.LearnedLatencyPredictor(ridge=1.0).fit(features[fit], measured[fit])
    calibrated = hw.LearnedLatencyPredictor(ridge=0.0).fit(lut[fit, None], measured[fit])
    return {
        "lookup table (sum)": lut[held],
        "table, calibrated": calibrated.predict(lut[held, None]),
        "learned (ridge)": learned.predict(features[held]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=90, help="networks measured whole")
    parser.add_argument("--clock", choices=hw.CLOCKS, default=None, help="default: cpu on a CPU")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.nets < 6:
        parser.error("--nets must be at least 6 (two thirds fit, one third held out)")
    clock = args.clock or ("cpu" if args.device == "cpu" else "wall")
    torch.set_num_threads(args.threads)
    space = ChainSpace()
    start = time.perf_counter()
    table = hw.build_latency_table(space, threads=args.threads, device=args.device, clock=clock)
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.nets)]
    measured = hw.measure_networks(space, archs, args.threads, args.device, clock=clock)
    fit, held = slice(0, 2 * args.nets // 3), slice(2 * args.nets // 3, args.nets)
    where = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    print(f"device {args.device} ({where or platform.machine()}), {args.threads} thread(s),")
    print(f"{clock} clock; {len(table.blocks)} block specs, {args.nets} networks measured")
    print(
        f"measured latency: median {np.median(measured):.3f} ms, range "
        f"{measured.min():.3f}-{measured.max():.3f} ms"
    )
    print(f"{'predictor':20s} {'mean err':>9s} {'worst':>7s} {'RMSE ms':>8s} {'tau':>5s}")
    rows = predictors(space, table, archs, measured, fit, held)
    # The floor: the same held-out networks measured a second time.
    rows["measured again"] = hw.measure_networks(
        space, archs[held], args.threads, args.device, clock=clock
    )
    for name, predicted in rows.items():
        e = hw.prediction_errors(predicted, measured[held])
        print(
            f"{name:20s} {e['mape']:9.1%} {e['max_rel']:7.1%} {e['rmse_ms']:8.3f}"
            f" {e['kendall_tau']:5.2f}"
        )
    print(f"({held.stop - held.start} held-out networks; {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
