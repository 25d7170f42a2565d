"""``nas-lab grade``: grade a folder of submitted notebooks into a gradebook CSV and feedback files.

The verdict is computed here, in the grader's own process. A submission's code runs in a child
process (:mod:`nas_lab.grading.runner`) in an empty temporary folder, in fast mode, with a time
limit per cell and per answer call and a memory limit. The child reports what each answer returned
on inputs this process drew afresh (a secret seed per submission); this process computes the
reference outputs and compares (:func:`nas_lab.checks.verdict`, the one verdict ``check`` uses
too). So nothing a submission defines, patches or prints reaches the verdict: a patched ``check``,
patched builtins or ``json`` live and die in the child, printed ``[PASS]`` lines go to
``/dev/null``, hard-coded outputs meet inputs nobody saw before, and every result file is written
from this process's memory, again at the end of the batch.

A cell that fails or runs past the time limit is skipped and noted. A cell that ends the child
(``os._exit``, a signal, the out-of-memory killer) is found by the last "starting cell" message:
the child is restarted without it. An exercise costs points only when its function could not be
obtained or gives wrong answers.

What this cannot prevent, said plainly: the child runs as the same user as the grader, without an
OS-level sandbox (for that, run the grader in a container or as a separate user). A submission can
therefore read or write any file the grader can, including the library's source; and an answer
that merely calls ``nas_lab``'s own implementation through a wrapper is right. Answers that *are*
library functions (``__module__`` starting with ``nas_lab``) are flagged and get 0, best-effort,
since the child reports it.

The package, one job per module: :mod:`~nas_lab.grading.lesson` (the lesson: exercises, functions,
points), :mod:`~nas_lab.grading.cells` (which cells the answers need),
:mod:`~nas_lab.grading.supervise` (the child: start, feed, listen, restart),
:mod:`~nas_lab.grading.runner` (the child itself) and :mod:`~nas_lab.grading.report` (feedback
files and the gradebook). Here: a submission, and a batch of them. The child is started as
``python -m nas_lab.grading.runner``, which imports this package first: so nothing here imports
the runner or nbformat at the top (nbformat takes seconds to import, once per child).
"""

from __future__ import annotations

import re
import secrets
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_lab.checks import Exercise, verdict
from nas_lab.grading.cells import needed_cells, python_source
from nas_lab.grading.lesson import (
    GradeError,
    Lesson,
    check_calls,
    find_lesson,
    load_lesson,
    load_private_checks,
    metadata_ids,
    other_lesson,
)
from nas_lab.grading.report import MAX_REASON, Report, Score, write_feedback, write_gradebook
from nas_lab.grading.supervise import Limits, run_child

if TYPE_CHECKING:
    import nbformat

# ---------------------------------------------------------------------------------------------
# A submission: read it, run it in a child, compare.
# ---------------------------------------------------------------------------------------------


def zero(lesson: Lesson, reason: str) -> list[Score]:
    return [Score(t.id, 0, t.points, False, reason) for t in lesson.tasks]


def read_submission(path: Path) -> nbformat.NotebookNode:
    """The notebook, or ValueError with the reason in words."""
    import nbformat  # here, not above: see the package docstring

    if path.stat().st_size == 0:
        raise ValueError("the file is empty: submit the notebook saved from Jupyter")
    try:
        with warnings.catch_warnings():  # duplicate cell ids and the like: nbformat mends them
            warnings.simplefilter("ignore")
            nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001  JSON garbage, a PDF, an old format: all one answer
        message = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise ValueError(
            f"not a Jupyter notebook ({message}): submit the .ipynb file saved from Jupyter"
        ) from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("a notebook without cells: submit the .ipynb file saved from Jupyter")
    return nb


def grade_submission(path: Path, name: str, lesson: Lesson, limits: Limits) -> Report:
    report = Report(name, str(path), lesson.id, [])
    try:
        nb = read_submission(path)
    except (ValueError, OSError) as err:
        report.scores = zero(lesson, str(err))
        return report
    code = [cell.get("source", "") for cell in nb.cells if cell.get("cell_type") == "code"]
    code = [c if isinstance(c, str) else "" for c in code]
    calls = check_calls(code)
    guess = other_lesson(lesson, metadata_ids(nb) + list(calls))
    if guess is not None:
        reason = (
            f"this looks like lesson {guess}, not lesson {lesson.id}: was the wrong file handed in?"
        )
        report.scores = zero(lesson, reason)
        return report
    # A student may rename a function and its check call together: follow the check call.
    answers = {t.id: calls.get(t.id.split("-")[0], t.answer) for t in lesson.tasks}
    cells = [(i + 1, python_source(source)) for i, source in enumerate(code)]
    rng = np.random.default_rng(secrets.randbits(64))
    inputs = {t.id: lesson.exercises[t.id].inputs(rng) for t in lesson.tasks}
    verdicts, report.notes = _run_and_compare(lesson, cells, answers, inputs, limits)
    for task in lesson.tasks:
        passed, reason = verdicts[task.id]
        points = task.points if passed else 0
        report.scores.append(Score(task.id, points, task.points, passed, reason[:MAX_REASON]))
    return report


# A failure no other cell can change: no need to run the whole notebook to confirm it.
FINAL = (
    "not implemented yet",
    "uses the library's own",
    "no function named",
    "ran past",
    "ended the",
)


def _run_and_compare(lesson, cells, answers, inputs, limits) -> tuple[dict, list[str]]:
    """First only the cells the answers need; the whole notebook for answers that failed so."""
    todo = set(inputs)
    run_cells = needed_cells(cells, set(answers.values()))
    verdicts: dict[str, tuple[bool, str]] = {}
    while True:
        outputs, notes = run_child(run_cells, answers, {k: inputs[k] for k in todo}, limits)
        for k in todo:
            verdicts[k] = _reported_verdict(
                lesson.exercises[k], inputs[k], outputs.get(k), answers[k]
            )
        todo = {
            k for k in todo if not verdicts[k][0] and not any(f in verdicts[k][1] for f in FINAL)
        }
        if not todo or len(run_cells) == len(cells):
            return verdicts, notes
        run_cells = cells


def _reported_verdict(
    ex: Exercise, cases: list[tuple], outputs: Any, name: str
) -> tuple[bool, str]:
    """The verdict on the outputs the child reported: a list of ``{"ok", "value" | "reason"}``,
    or the reason it has none."""
    from nas_lab.grading.runner import round_trip  # not above: the child runs that module

    if isinstance(outputs, str):
        return False, outputs
    if not isinstance(outputs, list) or not outputs:
        return False, f"`{name}` could not be run: its cell may have failed (see the notes)"
    return verdict(ex, cases, _outcomes(ex, cases, outputs, name), as_sent=round_trip)


def _outcomes(
    ex: Exercise, cases: list[tuple], outputs: list, name: str
) -> Iterator[tuple[bool, Any]]:
    """The reported outputs as :func:`nas_lab.checks.verdict` reads them, case by case."""
    for args, out in zip(cases, outputs + [None] * len(cases), strict=False):
        if not isinstance(out, dict):
            yield False, f"`{name}` gave no output on input ({ex.describe(args)})"
        elif not out.get("ok"):
            reason = str(out.get("reason"))
            if reason.startswith("no function named"):
                reason += ": keep the exercise's cell and the function's name"
            yield False, reason
        else:
            yield True, out.get("value")


# ---------------------------------------------------------------------------------------------
# A batch: many submissions, in parallel, into a gradebook.
# ---------------------------------------------------------------------------------------------


def collect(paths: Sequence[str | Path]) -> list[Path]:
    """Every .ipynb in the folders given, and the files given (whatever their extension)."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif item.exists():
            found.append(item)
        else:
            raise GradeError(f"no file or folder {item}")
    if not found:
        raise GradeError(f"no notebooks in {', '.join(map(str, paths))}")
    return found


def unique_names(paths: Sequence[Path]) -> list[str]:
    """A file-system-safe name per submission; same-named files in different folders stay apart."""
    safe = [re.sub(r"[^\w.-]+", "_", p.stem) or "submission" for p in paths]
    counts = Counter(safe)
    names, seen = [], set()
    for path, name in zip(paths, safe, strict=True):
        if counts[name] > 1:
            name = re.sub(r"[^\w.-]+", "_", f"{path.parent.name}_{name}")
        base, n = name, 2
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        names.append(name)
    return names


def grade(
    lesson: str,
    submissions: Sequence[str | Path],
    out: str | Path,
    *,
    checks: str | Path | None = None,
    timeout: float = 120.0,
    workers: int = 2,
    memory_gib: float = 4.0,
    progress: bool = False,
) -> list[Report]:
    """Grade every submission; write ``out/grades.csv`` and feedback files; return the reports."""
    if timeout <= 0 or workers < 1 or memory_gib <= 0:
        raise GradeError("--timeout, --workers and --memory must be positive")
    private = load_private_checks(checks) if checks else None
    spec = load_lesson(find_lesson(lesson), private)
    paths = collect(submissions)
    names = unique_names(paths)
    limits = Limits(timeout, memory_gib, str(checks) if checks else None)
    out = Path(out)
    done: list[Report] = []

    def one(path: Path, name: str) -> Report:
        report = grade_submission(path, name, spec, limits)
        write_feedback(out, report)  # progress an instructor can watch
        if progress:
            print(f"{report.total:3d} / {report.max_points}  {path}", flush=True)
        return report

    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(one, paths, names))
    for report in done:  # again, after every child is gone: undo what a submission wrote in `out`
        write_feedback(out, report)
    write_gradebook(out, spec, done)
    return done


__all__ = [
    "GradeError",
    "Lesson",
    "Limits",
    "Report",
    "Score",
    "find_lesson",
    "grade",
    "grade_submission",
    "load_lesson",
    "load_private_checks",
    "needed_cells",
]
