"""Checks for lesson 12 (the capstone: a search under an accuracy target and a latency limit).

12.1 and 12.2 compare with the reference on fresh random inputs. 12.3 to 12.5 grade a whole
search by what it returns: the check runs the learner's function itself, ``RUNS`` times, each on
a fresh :class:`~nas_lab.capstone.MeteredBench` (a fresh budget, seed and latency limit), and
judges every returned architecture from the grader's own table (:func:`nas_lab.capstone.judge`).
Nothing the search reports about accuracy or latency is used. 12.3 asks that every run return a
valid, trained cell within both limits and the budget; 12.4 and 12.5 ask that the runs' mean
percentile, among the cells within the latency limit, reach a bar: points scaled by rank.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas_lab import capstone
from nas_lab.checks import Reason, close, exercise
from nas_lab.spaces import nb201

# ---- 12.1: the feasible region -------------------------------------------------------------


def _region_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(6):
        n = int(rng.integers(8, 20))
        cells = [str(nb201.sample(rng)) for _ in range(n)]
        # Rounded, as the table's values print: ties at the limit happen, and must be kept.
        latency = rng.uniform(0.2, 2.0, size=n).round(2).tolist()
        accuracy = rng.uniform(0.85, 0.99, size=n).round(3).tolist()
        edge = int(np.argsort(latency)[n // 2])  # a cell exactly on both bounds
        cases.append((cells, latency, accuracy, latency[edge], accuracy[edge]))
    return cases


def _strictly_within(cells, latency_ms, accuracy, latency_limit, target):
    rows = zip(cells, latency_ms, accuracy, strict=True)
    return [c for c, lat, acc in rows if lat < latency_limit and acc > target]


def _latency_only(cells, latency_ms, accuracy, latency_limit, target):
    return [c for c, lat in zip(cells, latency_ms, strict=True) if lat <= latency_limit]


def _either_bound(cells, latency_ms, accuracy, latency_limit, target):
    rows = zip(cells, latency_ms, accuracy, strict=True)
    return [c for c, lat, acc in rows if lat <= latency_limit or acc >= target]


exercise(
    "12.1",
    title="the feasible region",
    points=1,
    inputs=_region_inputs,
    wrong=[_strictly_within, _latency_only, _either_bound],
)(capstone.feasible)

# ---- 12.2: Deb's constrained reward --------------------------------------------------------


def _reward_inputs(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(4):
        limit = round(float(rng.uniform(0.4, 1.5)), 2)
        latency = (limit * rng.uniform(0.5, 1.6, size=8)).round(3).tolist()
        latency[0] = limit  # on the limit: feasible
        accuracy = rng.uniform(0.85, 0.99, size=8).round(4).tolist()
        cases.append((accuracy, latency, limit))
    return cases


def _rewards(answer: Callable, args: tuple) -> list[float]:
    accuracy, latency, limit = args
    return [float(answer(a, t, limit)) for a, t in zip(accuracy, latency, strict=True)]


def _mnasnet_soft(accuracy, latency_ms, latency_limit):  # MnasNet's eq. 2, w = -0.07
    return accuracy * (latency_ms / latency_limit) ** -0.07


def _penalised_accuracy(accuracy, latency_ms, latency_limit):  # slow but accurate can still win
    return accuracy - max(0.0, latency_ms / latency_limit - 1)


def _death_penalty(accuracy, latency_ms, latency_limit):  # every infeasible cell ties
    return accuracy if latency_ms <= latency_limit else 0.0


exercise(
    "12.2",
    title="Deb's constrained reward",
    points=2,
    inputs=_reward_inputs,
    call=_rewards,
    compare=close,
    wrong=[_mnasnet_soft, _penalised_accuracy, _death_penalty],
)(capstone.constrained_reward)

# ---- 12.3 to 12.5: the search itself -------------------------------------------------------

RUNS = 8  # runs per check: one run's rank is noisy, a design is judged by its mean
BARS = {"12.4": 0.80, "12.5": 0.90}  # the mean percentile each tier asks for
LIMIT_QUANTILES = (0.15, 0.5)  # the latency limit: between these quantiles of the table's


def brief(rng: np.random.Generator) -> tuple[float, int, float, float]:
    """One run's brief: (budget, seed, latency limit, target). The target is the median test
    accuracy of the cells within the limit, rounded down: meeting it is the least a search does."""
    table = capstone.grader_table()
    latency, test = table.column(capstone.LATENCY), table.column("test_acc")
    limit = round(float(np.quantile(latency, rng.uniform(*LIMIT_QUANTILES))), 3)
    target = float(np.floor(float(np.median(test[latency <= limit])) * 1000)) / 1000
    budget = float(rng.choice([400, 500, 600, 700, 800]))
    return budget, int(rng.integers(2**31)), limit, target


def _search_inputs(rng: np.random.Generator) -> list[tuple]:
    return [([brief(rng) for _ in range(RUNS)],)]


def _run_searches(answer: Callable, args: tuple) -> list[dict]:
    """Run the search once per brief, each on a fresh metered benchmark; report what it
    returned and what it spent. The verdict is computed from the returned cells alone."""
    (briefs,) = args
    runs = [dict(_one_run(answer, tuple(brief))) for brief in briefs]
    first = tuple(briefs[0])  # same seed, same search: run the first brief again
    runs[0]["again"] = _one_run(answer, first)["arch"]
    return runs


_reference_runs: dict[tuple, dict] = {}  # the reference is a pure function of its brief


def _one_run(answer: Callable, brief: tuple) -> dict:
    if answer is capstone_search and brief in _reference_runs:
        return _reference_runs[brief]
    budget, seed, limit, target = brief
    metered = capstone.MeteredBench(capstone.grader_table(), budget, seed)
    with capstone.watch_table() as reads:
        arch = answer(metered, budget, seed, limit, target)
    run = {
        "brief": list(brief),
        "arch": _as_text(arch),
        "kind": "cell" if isinstance(arch, str | nb201.Cell) else type(arch).__name__,
        "trained": metered.has_trained(arch),
        "spent": metered.spent,
        "least_cost": metered.least_cost(),
        "budget_seen": metered.budget,
        "unpaid_reads": reads.count,
        "unpaid_what": reads.what,
    }
    if answer is capstone_search:
        _reference_runs[brief] = run
    return run


def _as_text(arch: object) -> str:
    """A returned cell as its string; anything else as a short repr, which judge rejects."""
    if isinstance(arch, str):
        return arch
    return str(arch) if isinstance(arch, nb201.Cell) else repr(arch)[:200]


def _problems(expected: list[dict], got: list[dict]) -> tuple[list[str], list[float]]:
    """Per run, what is wrong (empty when nothing) and the percentile it earns (0 if wrong).

    The briefs come from ``expected`` (the grader's side), the architectures from ``got``."""
    if not isinstance(got, list) or len(got) != len(expected):
        return [f"expected {len(expected)} runs, got {got!r}"[:200]], [0.0]
    problems, shares = [], []
    most = float(np.max(capstone.grader_table().column("train_time")))
    for number, (mine, theirs) in enumerate(zip(expected, got, strict=True), start=1):
        budget, _, limit, target = mine["brief"]
        verdict = capstone.judge(theirs.get("arch"), limit, target)
        if theirs.get("kind", "cell") != "cell":
            reason = f"returned a {theirs['kind']}, not a cell string like '|nor_conv_3x3~0|+|...|'"
        elif theirs.get("unpaid_reads"):
            what = ", ".join(theirs.get("unpaid_what") or [])
            reason = (
                f"read the table's training results outside the metered bench it was given "
                f"({theirs['unpaid_reads']} reads: {what}); search through bench.query or "
                "bench.clock, which charge the budget"
            )
        elif not verdict.ok and not verdict.reason.startswith(("latency", "test accuracy")):
            reason = verdict.reason
        elif not theirs.get("trained"):
            reason = f"returned {verdict.arch}, which the search never trained"
        elif _overspent(theirs, budget, most):
            spent = max(float(theirs.get("spent", np.inf)), float(theirs.get("least_cost", 0)))
            reason = f"spent at least {spent:.1f} simulated seconds of a budget of {budget:g}"
        elif not verdict.ok:
            reason = verdict.reason
        else:
            reason = ""
        label = f"run {number} (budget {budget:g} s, limit {limit:.3f} ms, target {target:.3f})"
        problems.append(f"{label}: {reason}" if reason else "")
        shares.append(verdict.percentile if not reason else 0.0)
    if got and "again" in got[0] and got[0]["again"] != got[0].get("arch"):
        problems.append(
            f"run 1 again with the same seed returned {got[0]['again']}, not {got[0].get('arch')}:"
            " draw every random number from the seed"
        )
    return problems, shares


def _overspent(run: dict, budget: float, most: float) -> bool:
    """Over budget, by the account or by what the trained cells must have cost at least; or
    the account's budget was changed."""
    spent = max(float(run.get("spent", np.inf)), float(run.get("least_cost", 0.0)))
    return spent > budget + most or run.get("budget_seen", budget) != budget


def _compare_valid(expected: list[dict], got: list[dict]) -> Reason:
    problems, shares = _problems(expected, got)
    wrong = [p for p in problems if p]
    if wrong:
        return f"{len(wrong)} of {len(expected)} runs failed; " + "; ".join(wrong[:2])
    return None


def _compare_rank(bar: float) -> Callable[[list[dict], list[dict]], Reason]:
    def compare(expected: list[dict], got: list[dict]) -> Reason:
        problems, shares = _problems(expected, got)
        mean = float(np.mean(shares))
        if mean >= bar:
            return None
        each = ", ".join(f"{s:.2f}" for s in shares)
        wrong = [p for p in problems if p]
        why = f" ({wrong[0]})" if wrong else ""
        return (
            f"the mean percentile over {len(shares)} runs is {mean:.3f}; this tier asks for "
            f"{bar:.2f}. Per run (0 for a run that broke a rule): {each}{why}"
        )

    return compare


def capstone_search(bench, budget: float, seed: int, latency_limit: float, target: float) -> str:
    """The reference design: evolution inside the latency limit, finalists retrained."""
    return capstone.reference_search(bench, budget, seed, latency_limit, target)


def _ignores_latency(bench, budget, seed, latency_limit, target):
    """Regularized evolution on accuracy alone: the limit is forgotten."""
    from nas_lab.strategies import run
    from nas_lab.strategies.evolution import RegularizedEvolution

    clock = run(RegularizedEvolution(seed=seed), bench, budget, seed)
    return max(clock.trajectory, key=lambda step: step[2])[1]


def _tiny_budget(bench, budget, seed, latency_limit, target):
    """Random search that stops after 1% of the budget."""
    return capstone.baseline_search(bench, budget / 100, seed, latency_limit, target)


def _evolve_within(bench, budget, seed, latency_limit):
    from nas_lab.strategies import run
    from nas_lab.strategies.evolution import RegularizedEvolution

    evolution = RegularizedEvolution(seed=seed)
    return run(
        capstone.Filtered(evolution, lambda c: bench.latency_ms(c) <= latency_limit),
        bench,
        budget,
        seed,
    )


def _returns_a_step(bench, budget, seed, latency_limit, target):
    """Evolution inside the limit, returning the best step of the trajectory, not its cell."""
    trajectory = _evolve_within(bench, budget, seed, latency_limit).trajectory
    return max(trajectory, key=lambda step: step[2])


def _returns_last(bench, budget, seed, latency_limit, target):
    """Evolution inside the limit, returning the last cell trained, not the best."""
    return _evolve_within(bench, budget, seed, latency_limit).trajectory[-1][1]


def _reads_the_table(bench, budget, seed, latency_limit, target):
    """Looks the answer up in the whole table, then trains it once: a search that did not pay."""
    table = capstone.grader_table()  # the grader's copy, or `bench.load()`: the same table
    latency, val = table.column(capstone.LATENCY), table.column("val_acc")
    best = table.archs[int(np.argmax(np.where(latency <= latency_limit, val, -1)))]
    bench.query(best)
    return best


exercise(
    "12.3",
    title=f"{RUNS} runs of a search, each within the limits and the budget",
    points=3,
    inputs=_search_inputs,
    call=_run_searches,
    compare=_compare_valid,
    wrong=[_ignores_latency, _returns_a_step, _reads_the_table],
)(capstone_search)

TIERS = {
    "12.4": (2, [_ignores_latency, _tiny_budget, _reads_the_table]),
    "12.5": (3, [_ignores_latency, _tiny_budget, _returns_last]),
}
for tier, (points, wrong) in TIERS.items():
    exercise(
        tier,
        title=f"{RUNS} runs of a search, ranking on average above {BARS[tier]:.0%} of the cells",
        points=points,
        inputs=_search_inputs,
        call=_run_searches,
        compare=_compare_rank(BARS[tier]),
        wrong=wrong,
    )(capstone_search)

__all__ = ["BARS", "RUNS", "brief", "capstone_search"]
