"""Grading throughput: 30 submissions of one lesson, graded by `nas-lab grade` with N workers.

The submissions are copies of the solution and of the untouched lesson, and some broken ones
(a syntax error in an exercise, a hard-coded answer): the mix a real class hands in.

    python benchmarks/bench_grading.py                     # lesson 01, 30 submissions, 2 workers
    python benchmarks/bench_grading.py --lesson 02 --workers 1 2

The target (COURSE.md, issue 4): 30 submissions in at most 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import nbformat

from nas_lab import grading

ROOT = Path(__file__).resolve().parents[1]


def broken(nb: nbformat.NotebookNode, how: str) -> nbformat.NotebookNode:
    """The notebook with its last exercise cell broken in one of two ways."""
    nb = copy.deepcopy(nb)
    cell = next(c for c in reversed(nb.cells) if "nas_lab" in c.metadata)
    if how == "syntax":
        cell.source = cell.source.replace(":", "", 1)
    else:  # a hard-coded answer: the function returns a constant
        header = cell.source.split("\n", 1)[0]
        cell.source = f"{header}\n    return 42\n"
    return nb


def submissions(lesson: str, n: int, folder: Path) -> None:
    master = next((ROOT / "solutions").glob(f"{lesson}_*.ipynb"))
    solved = nbformat.read(master, as_version=4)
    untouched = nbformat.read(ROOT / "lessons" / master.name, as_version=4)
    kinds = [solved, untouched, broken(solved, "syntax"), broken(solved, "constant")]
    for i in range(n):
        nbformat.write(kinds[i % len(kinds)], folder / f"student_{i:03d}.ipynb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", default="01")
    parser.add_argument("--submissions", type=int, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "submissions"
        folder.mkdir()
        submissions(args.lesson, args.submissions, folder)
        for workers in args.workers:
            start = time.perf_counter()
            reports = grading.grade(
                args.lesson,
                [folder],
                Path(temp) / f"out{workers}",
                workers=workers,
                timeout=args.timeout,
            )
            seconds = time.perf_counter() - start
            totals = sorted({r.total for r in reports})
            rows.append((len(reports), workers, seconds, seconds / len(reports), totals))
    print(f"lesson {args.lesson}")
    print(f"{'submissions':>11}  {'workers':>7}  {'seconds':>8}  {'per submission':>14}  totals")
    for n, workers, seconds, each, totals in rows:
        print(f"{n:>11}  {workers:>7}  {seconds:>8.1f}  {each:>12.2f} s  {totals}")


if __name__ == "__main__":
    main()
