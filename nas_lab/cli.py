"""The ``nas-lab`` command: one sub-command per module, as in otter-grader.

Each verb is added by one small ``add_<verb>`` function that declares its arguments and sets
``run``, a function that imports the verb's module only when called. So ``nas-lab --help`` stays
fast and never imports torch. To add a verb, write ``add_<verb>`` and list it in ``VERBS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

Verbs = argparse._SubParsersAction  # what `add_subparsers` returns


def version() -> str:
    """The installed version, read from package metadata (no heavy imports)."""
    try:
        return metadata.version("nas_lab")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        from nas_lab import __version__

        return __version__


def fail(verb: str, error: Exception) -> int:
    """Report an error the user can fix as one line on stderr (no traceback); exit status 1."""
    print(f"nas-lab {verb}: error: {error}", file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------------------------
# nas-lab lessons build | check
# ---------------------------------------------------------------------------------------------


def add_lessons(verbs: Verbs) -> None:
    lessons = verbs.add_parser(
        "lessons",
        help="generate student lessons from the master solutions, or check they are in step",
        description="lessons/NN_slug.ipynb is generated from solutions/NN_slug.ipynb: "
        "solution regions stubbed, outputs cleared, solution-only cells dropped.",
    )
    actions = lessons.add_subparsers(dest="action", required=True, metavar="{build,check}")
    build = actions.add_parser("build", help="write lessons/ from solutions/")
    check = actions.add_parser("check", help="exit 1 when lessons/ differs from a fresh build")
    for sub, run in ((build, _lessons_build), (check, _lessons_check)):
        sub.add_argument(
            "--solutions",
            default="solutions",
            metavar="DIR",
            help="folder of master notebooks (default: ./solutions)",
        )
        sub.add_argument(
            "--lessons",
            default="lessons",
            metavar="DIR",
            help="folder of generated lessons (default: ./lessons)",
        )
        sub.set_defaults(run=run)


def _lessons_build(args: argparse.Namespace) -> int:
    from nas_lab import lessons

    try:
        written = lessons.build(args.solutions, args.lessons)
    except (ValueError, OSError) as error:  # a broken master, a missing folder: one line
        return fail("lessons build", error)
    if not written:
        print(f"no master notebooks in {args.solutions}: nothing to build")
    for path in written:
        print(f"built {path}")
    return 0


def _lessons_check(args: argparse.Namespace) -> int:
    from nas_lab import lessons

    try:
        problems = lessons.stale(args.solutions, args.lessons)
    except OSError as error:
        return fail("lessons check", error)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} lesson problem(s) found")
        return 1
    print(f"{args.lessons} is in step with {args.solutions}")
    return 0


# ---------------------------------------------------------------------------------------------
# nas-lab bench build
# ---------------------------------------------------------------------------------------------


def add_bench(verbs: Verbs) -> None:
    bench = verbs.add_parser(
        "bench",
        help="build the NAS-Bench-201-on-digits table",
        description="Train every unique NAS-Bench-201 cell on digits with one recipe.",
    )
    actions = bench.add_subparsers(dest="action", required=True, metavar="{build,pack,verify}")
    build = actions.add_parser(
        "build", help="train what is missing (resumable: rerun after a kill to continue)"
    )
    build.add_argument("--out", required=True, metavar="PATH", help="folder of the build log")
    build.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    build.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    build.add_argument("--limit", type=int, default=None, help="only the first N cells")
    build.set_defaults(run=_bench_build)
    pack = actions.add_parser("pack", help="turn a complete build log into the shipped table")
    pack.add_argument("--log", default="data/nb201_digits", metavar="PATH", help="build folder")
    pack.add_argument("--out", default="data/nb201_digits.npz", metavar="FILE", help="table")
    pack.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    pack.add_argument(
        "--partial", action="store_true", help="pack an unfinished log (a uniform sample)"
    )
    pack.set_defaults(run=_bench_pack)
    verify = actions.add_parser("verify", help="retrain a random sample and compare")
    verify.add_argument("--sample", type=int, default=3, help="how many architectures")
    verify.add_argument("--table", default=None, metavar="FILE", help="default: the shipped one")
    verify.add_argument("--seed", type=int, default=0, help="which sample")
    verify.set_defaults(run=_bench_verify)


def _bench_build(args: argparse.Namespace) -> int:
    from nas_lab.bench import build

    try:
        log = build.build(args.out, seeds=args.seeds, workers=args.workers, limit=args.limit)
    except (ValueError, OSError) as error:
        return fail("bench build", error)
    print(f"build log: {log}")
    return 0


def _bench_pack(args: argparse.Namespace) -> int:
    from nas_lab.bench import build

    try:
        manifest = build.pack(
            args.log, args.out, seeds=args.seeds, require_complete=not args.partial
        )
    except (ValueError, OSError) as error:
        return fail("bench pack", error)
    print(f"wrote {args.out} (sha256 {manifest['sha256'][:12]}...)")
    for key, value in manifest["stats"].items():
        print(f"  {key}: {value:.4g}")
    return 0


def _bench_verify(args: argparse.Namespace) -> int:
    from nas_lab.bench import build

    try:
        rows = build.verify(args.table, sample=args.sample, seed=args.seed)
    except (ValueError, OSError) as error:
        return fail("bench verify", error)
    for r in rows:
        verdict = "exact" if r["exact"] else ("ok" if r["ok"] else "MISMATCH")
        print(
            f"{verdict:8s} recorded {r['recorded_val_acc']:.4f}  retrained "
            f"{r['retrained_val_acc']:.4f}  seed {r['seed']}  {r['arch']}"
        )
    bad = sum(not r["ok"] for r in rows)
    print(f"{len(rows) - bad} of {len(rows)} reproduced within {build.VERIFY_TOLERANCE}")
    return 1 if bad else 0


# ---------------------------------------------------------------------------------------------
# nas-lab grade
# ---------------------------------------------------------------------------------------------


def add_grade(verbs: Verbs) -> None:
    grade = verbs.add_parser(
        "grade",
        help="grade submitted notebooks into a gradebook CSV and feedback files",
        description="Run each submission in a child process with time and memory limits and "
        "compare its answers with the reference on fresh random inputs. Writes DIR/grades.csv "
        "and, per submission, DIR/<name>.json and DIR/<name>.md.",
    )
    grade.add_argument("lesson", metavar="LESSON", help="a lesson number (01) or notebook path")
    grade.add_argument(
        "submissions", nargs="+", metavar="SUBMISSION_OR_FOLDER", help="notebooks or folders"
    )
    grade.add_argument("--out", required=True, metavar="DIR", help="where the results go")
    grade.add_argument("--checks", metavar="FILE", help="a Python file of private checks")
    grade.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="time limit per cell and per answer call (default 120)",
    )
    grade.add_argument("--workers", type=int, default=2, help="submissions in parallel (default 2)")
    grade.add_argument(
        "--memory",
        type=float,
        default=4.0,
        metavar="GIB",
        help="memory a submission may use beyond the libraries (default 4)",
    )
    grade.set_defaults(run=_grade)


def _grade(args: argparse.Namespace) -> int:
    from nas_lab import grading

    try:
        reports = grading.grade(
            args.lesson,
            args.submissions,
            args.out,
            checks=args.checks,
            timeout=args.timeout,
            workers=args.workers,
            memory_gib=args.memory,
            progress=True,
        )
    except (grading.GradeError, OSError) as error:
        return fail("grade", error)
    print(f"graded {len(reports)} submission(s): {args.out}/grades.csv")
    return 0


# ---------------------------------------------------------------------------------------------
# nas-lab compare
# ---------------------------------------------------------------------------------------------


def add_compare(verbs: Verbs) -> None:
    compare = verbs.add_parser(
        "compare",
        help="run black-box strategies at equal simulated cost; write a CSV and a regret figure",
    )
    compare.add_argument(
        "--strategies", help="comma-separated names (default: every one in strategies.REGISTRY)"
    )
    compare.add_argument("--budget", type=float, required=True, help="simulated seconds")
    compare.add_argument("--seeds", type=int, default=20, help="runs per strategy")
    compare.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    compare.set_defaults(run=_compare)


def _compare(args: argparse.Namespace) -> int:
    from nas_lab import compare
    from nas_lab.strategies import REGISTRY

    chosen = args.strategies or ",".join(REGISTRY)
    names = [n.strip() for n in chosen.split(",") if n.strip()]
    try:
        path = compare.save_comparison(names, args.budget, args.seeds, args.out)
    except (ValueError, OSError) as error:
        return fail("compare", error)
    print(f"wrote {path} and {path.parent / 'regret.png'}")
    return 0


# ---------------------------------------------------------------------------------------------
# nas-lab proxies compute
# ---------------------------------------------------------------------------------------------


def add_proxies(verbs: Verbs) -> None:
    proxies = verbs.add_parser("proxies", help="score every unique cell with zero-cost proxies")
    actions = proxies.add_subparsers(dest="action", required=True, metavar="{compute}")
    compute = actions.add_parser(
        "compute",
        help="compute the proxy table",
        description="Score all 6,466 unique NAS-Bench-201 cells with the zero-cost proxies, on "
        "the networks and data of the benchmark's recipe; write an .npz table and its manifest.",
    )
    compute.add_argument(
        "--out", default="data/nb201_digits_proxies.npz", metavar="PATH", help="the .npz table"
    )
    compute.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    compute.add_argument("--batch-size", type=int, default=64, help="images per proxy batch")
    compute.add_argument("--seed", type=int, default=0, help="initial weights and batch")
    compute.add_argument("--table", default=None, metavar="FILE", help="benchmark (its recipe)")
    compute.add_argument("--limit", type=int, default=None, help="only the first N cells")
    compute.set_defaults(run=_proxies_compute)


def _proxies_compute(args: argparse.Namespace) -> int:
    from nas_lab import bench, proxies
    from nas_lab.spaces import nb201

    try:
        cells = nb201.unique_cells()[: args.limit] if args.limit else None
        path = proxies.compute_table(
            bench.load(args.table),
            args.out,
            batch_size=args.batch_size,
            seed=args.seed,
            workers=args.workers,
            cells=cells,
        )
    except (ValueError, OSError) as error:
        return fail("proxies compute", error)
    print(f"wrote {path} and {path.with_suffix('.manifest.json')}")
    return 0


# ---------------------------------------------------------------------------------------------
# nas-lab ofa build
# ---------------------------------------------------------------------------------------------


def add_ofa(verbs: Verbs) -> None:
    ofa = verbs.add_parser(
        "ofa",
        help="train the Once-for-All supernet of lesson 10 (progressive shrinking)",
        description="Train the elastic MBConv supernet on digits with progressive shrinking "
        "(Cai et al., ICLR 2020) and the lesson's from-scratch baselines; write the weights "
        "and a manifest (sha256, command, version, date) beside them.",
    )
    actions = ofa.add_subparsers(dest="action", required=True, metavar="{build}")
    build = actions.add_parser("build", help="train and save the supernet")
    build.add_argument("--out", required=True, metavar="PATH", help="e.g. data/ofa_supernet.pt")
    build.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    build.add_argument("--fast", action="store_true", help="a tiny supernet, in seconds")
    build.set_defaults(run=_ofa_build)


def _ofa_build(args: argparse.Namespace) -> int:
    import torch

    from nas_lab.oneshot import ofa

    torch.set_num_threads(1)  # tiny networks: one thread is fastest, and repeats exactly
    try:
        manifest = ofa.build(args.out, seed=args.seed, fast=args.fast)
    except (ValueError, OSError) as error:
        return fail("ofa build", error)
    print(f"wrote {args.out} ({manifest['bytes']:,} bytes, sha256 {manifest['sha256'][:12]}...)")
    print(f"  trained in {manifest['seconds']['total']:.0f} s: {manifest['seconds']}")
    return 0


# ---------------------------------------------------------------------------------------------
# The parser and the entry point.
# ---------------------------------------------------------------------------------------------

VERBS: list[Callable[[Verbs], None]] = [
    add_lessons,
    add_bench,
    add_grade,
    add_compare,
    add_proxies,
    add_ofa,
]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="nas-lab", description="NAS Lab: a hands-on course in Neural Architecture Search."
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    for add in VERBS:
        add(verbs)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nas-lab`` with ``argv`` (default: the command line); return the exit status."""
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
