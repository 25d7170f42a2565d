"""``nas-lab grade``: grade a folder of submitted notebooks into a gradebook CSV and feedback files.

The verdict is computed here, in the grader's own process. A submission's code runs in a child
process (:mod:`nas_lab.grade_runner`) in an empty temporary folder, in fast mode, with a time limit
per cell and per answer call and a memory limit. The child reports what each answer returned on
inputs this process drew afresh (a secret seed per submission); this process computes the
reference outputs and compares. So nothing a submission defines, patches or prints reaches the
verdict: a patched ``check``, patched builtins or ``json`` live and die in the child, printed
``[PASS]`` lines go to ``/dev/null``, hard-coded outputs meet inputs nobody saw before, and every
result file is written from this process's memory, again at the end of the batch.

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
"""

from __future__ import annotations

import ast
import copy
import csv
import importlib.util
import io
import json
import os
import pickle
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from nas_lab.checks import REGISTRY, Exercise, load_all
from nas_lab.grade_runner import round_trip

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 120  # the child imports torch before its first message: slow on a busy machine
GRACE_SECONDS = 15  # the parent's backstop, past the child's own alarm
MAX_RESTARTS = 5  # each restart re-runs the notebook: after this many, the rest scores 0
MAX_REASON = 600


class GradeError(ValueError):
    """A problem the instructor can fix (an unknown lesson, a broken checks file)."""


# ---------------------------------------------------------------------------------------------
# The lesson: which exercises, which function each grades, how many points.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One gradebook column: an exercise (public or private) and the function it grades."""

    id: str
    answer: str
    points: int


@dataclass(frozen=True)
class Lesson:
    id: str
    path: Path
    tasks: tuple[Task, ...]
    exercises: dict[str, Exercise]

    @property
    def max_points(self) -> int:
        return sum(task.points for task in self.tasks)


def find_lesson(lesson: str, folders: Sequence[Path] = ()) -> Path:
    """The master (or lesson) notebook for ``lesson``: an id ("01"), a name or a path."""
    if Path(lesson).is_file():
        return Path(lesson)
    folders = list(folders) or [Path("solutions"), ROOT / "solutions", ROOT / "lessons"]
    key = Path(lesson).name
    for folder in folders:
        for path in sorted(folder.glob("*.ipynb")):
            if key in (path.name, path.stem) or path.name.split("_")[0] == key:
                return path
    known = sorted({p.stem for folder in folders for p in folder.glob("[0-9]*.ipynb")})
    raise GradeError(
        f"no lesson {lesson!r}; the lessons are: {', '.join(known) or 'none found'} "
        "(give the number, e.g. 01, or a notebook path)"
    )


def check_calls(cells: Iterable[str]) -> dict[str, str]:
    """``{exercise_id: name}`` for every ``check("01.2", name)`` in the cells (last one wins)."""
    found: dict[str, str] = {}
    for source in cells:
        try:
            tree = ast.parse(python_source(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "check"
                and len(node.args) >= 2
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and isinstance(node.args[1], ast.Name)
            ):
                found[node.args[0].value] = node.args[1].id
    return found


def metadata_ids(nb: nbformat.NotebookNode) -> list[str]:
    ids = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nas_lab")
        if isinstance(meta, dict) and isinstance(meta.get("exercise"), str):
            ids.append(meta["exercise"])
    return ids


def load_lesson(path: Path, private: dict[str, Exercise] | None = None) -> Lesson:
    """Exercises from the notebook's cell metadata, function names from its check calls.

    A private check grades the function of the public exercise its id starts with:
    ``01.2-hidden`` grades the answer of ``01.2``. Private checks of other lessons are ignored."""
    nb = nbformat.read(path, as_version=4)
    registry = {**load_all(), **(private or {})}
    names = check_calls(cell.source for cell in nb.cells if cell.cell_type == "code")
    tasks = []
    for exercise_id in metadata_ids(nb):
        if exercise_id not in registry or exercise_id not in names:
            raise GradeError(
                f"{path}: exercise {exercise_id} has no registered check or no check call"
            )
        tasks.append(Task(exercise_id, names[exercise_id], registry[exercise_id].points))
    public = {task.id: task for task in tasks}
    for private_id in private or {}:
        base = private_id.split("-")[0]
        if base in public:
            tasks.append(Task(private_id, public[base].answer, registry[private_id].points))
    lesson_id = path.name.split("_")[0]
    return Lesson(lesson_id, path, tuple(tasks), {t.id: registry[t.id] for t in tasks})


def load_private_checks(path: str | Path) -> dict[str, Exercise]:
    """Run an instructor's checks file; return what it registered, leaving the registry as is."""
    path = Path(path)
    if not path.is_file():
        raise GradeError(f"no checks file {path}: give the path of a Python file")
    load_all()
    before = set(REGISTRY)
    spec = importlib.util.spec_from_file_location("nas_lab_private_checks", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001  the instructor's file: say where it broke
        raise GradeError(f"the checks file {path} raised {type(err).__name__}: {err}") from None
    added = {key: REGISTRY.pop(key) for key in set(REGISTRY) - before}
    for key in added:
        if not re.fullmatch(r"\d\d\.\d+-.+", key):
            raise GradeError(
                f"private check {key!r} in {path}: name it after the exercise whose function it "
                "grades, followed by a dash, e.g. '01.2-hidden'"
            )
    if not added:
        raise GradeError(f"the checks file {path} registers no exercise (use @exercise(...))")
    return added


# ---------------------------------------------------------------------------------------------
# A submission: read it, run it in a child, compare.
# ---------------------------------------------------------------------------------------------


@dataclass
class Score:
    exercise: str
    points: int
    max_points: int
    passed: bool
    reason: str


@dataclass
class Report:
    submission: str
    path: str
    lesson: str
    scores: list[Score]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(s.points for s in self.scores)

    @property
    def max_points(self) -> int:
        return sum(s.max_points for s in self.scores)

    def to_dict(self) -> dict:
        return {
            "submission": self.submission,
            "file": self.path,
            "lesson": self.lesson,
            "total": self.total,
            "max": self.max_points,
            "exercises": [asdict(s) for s in self.scores],
            "notes": self.notes,
        }

    def to_markdown(self) -> str:
        lines = [
            f"# Lesson {self.lesson}: {self.submission}",
            "",
            f"**{self.total} of {self.max_points} points**",
            "",
            "| exercise | points | passed | reason |",
            "| --- | --- | --- | --- |",
        ]
        for s in self.scores:
            reason = s.reason.replace("|", "\\|").replace("\n", " ")
            mark = "yes" if s.passed else "no"
            lines.append(f"| {s.exercise} | {s.points} / {s.max_points} | {mark} | {reason} |")
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Limits:
    timeout: float = 120.0  # seconds per cell and per answer call
    memory_gib: float = 4.0  # beyond what the libraries map
    checks: str | None = None  # the private checks file, which the child imports too


def zero(lesson: Lesson, reason: str) -> list[Score]:
    return [Score(t.id, 0, t.points, False, reason) for t in lesson.tasks]


def read_submission(path: Path) -> nbformat.NotebookNode:
    """The notebook, or ValueError with the reason in words."""
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


def python_source(source: str) -> str:
    """A cell as plain Python: IPython magics and shell lines become calls of `get_ipython()`."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001  leave it as it is: the child will report the syntax error
        return source


def other_lesson(lesson: Lesson, ids: Iterable[str]) -> str | None:
    """The lesson a notebook belongs to, when it has none of this lesson's exercises."""
    ids = [i for i in ids if isinstance(i, str) and "." in i]
    if not ids or any(i.split("-")[0] in lesson.exercises for i in ids):
        return None
    guess, _ = Counter(i.split(".")[0] for i in ids).most_common(1)[0]
    return guess if guess != lesson.id else None


def names_of(source: str) -> tuple[set[str], set[str]] | None:
    """The names a cell defines and the names it reads from the notebook's namespace.

    None for a cell that does not parse: it is run anyway, so that its error is reported."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    defined: set[str] = set()
    used: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            if not isinstance(node, ast.Lambda):
                defined.add(node.name)
            inner, free = _scope(node)
            used |= free
            defined |= inner  # `global x` in a body defines x for the notebook
            continue
        if isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store) else used).add(node.id)
        elif isinstance(node, ast.alias):
            defined.add((node.asname or node.name).split(".")[0])
        todo.extend(ast.iter_child_nodes(node))
    return defined, used


def _scope(node: ast.AST) -> tuple[set[str], set[str]]:
    """A body's global declarations, and the names it reads that it does not bind itself."""
    declared = {g for n in ast.walk(node) if isinstance(n, ast.Global) for g in n.names}
    bound = {a.arg for n in ast.walk(node) if isinstance(n, ast.arguments) for a in _args(n)}
    loads = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (loads if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, ast.alias):
            bound.add((n.asname or n.name).split(".")[0])
    return declared, loads - (bound - declared)


def _args(arguments: ast.arguments) -> list[ast.arg]:
    extra = [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return arguments.posonlyargs + arguments.args + arguments.kwonlyargs + extra


def needed_cells(cells: list[tuple[int, str]], wanted: Iterable[str]) -> list[tuple[int, str]]:
    """The cells that define the answers, and (transitively) every name those cells read.

    Every cell defining a needed name is kept, so the last definition still wins, as it would
    in a run of the whole notebook; heavy cells that define nothing the answers need are left."""
    parsed = {i: names_of(source) for i, source in cells}
    keep = {i for i, names in parsed.items() if names is None}
    parsed = {i: names for i, names in parsed.items() if names is not None}
    wanted = set(wanted)
    while True:
        more = {i for i, (defined, _) in parsed.items() if i not in keep and defined & wanted}
        if not more:
            return [(i, source) for i, source in cells if i in keep]
        keep |= more
        for i in more:
            wanted |= parsed[i][1]


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
    reasons, report.notes = _run_and_compare(lesson, cells, answers, inputs, limits)
    for task in lesson.tasks:
        reason, passed = reasons[task.id], reasons[task.id] is None
        if passed:
            title, n = lesson.exercises[task.id].title, len(inputs[task.id])
            reason = f"{title}: right on {n} fresh random inputs"
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
    reasons: dict[str, str | None] = {}
    while True:
        outputs, notes = run_child(run_cells, answers, {k: inputs[k] for k in todo}, limits)
        for k in todo:
            reasons[k] = verdict(lesson.exercises[k], inputs[k], outputs.get(k), answers[k])
        todo = {
            k for k in todo if reasons[k] is not None and not any(f in reasons[k] for f in FINAL)
        }
        if not todo or len(run_cells) == len(cells):
            return reasons, notes
        run_cells = cells


def verdict(ex: Exercise, cases: list[tuple], outputs: Any, name: str) -> str | None:
    """None when every reported output agrees with the reference, else the reason."""
    if isinstance(outputs, str):
        return outputs
    if not isinstance(outputs, list) or not outputs:
        return f"`{name}` could not be run: its cell may have failed (see the notes)"
    for args, out in zip(cases, outputs + [None] * len(cases), strict=False):
        if not isinstance(out, dict):
            return f"`{name}` gave no output on input ({ex.describe(args)})"
        if not out.get("ok"):
            reason = str(out.get("reason"))
            if reason.startswith("no function named"):
                reason += ": keep the exercise's cell and the function's name"
            return reason
        try:
            expected = round_trip(ex.call(ex.reference, copy.deepcopy(args)))
            problem = ex.compare(expected, out.get("value"))
        except Exception as err:  # noqa: BLE001  an output of the wrong shape breaks `compare`
            problem = f"an output of the wrong form ({type(err).__name__}: {err})"
        if problem is not None:
            return f"on input ({ex.describe(args)}): {problem}"
    return None


# ---------------------------------------------------------------------------------------------
# The child: start, feed, listen, restart after a crash.
# ---------------------------------------------------------------------------------------------


GONE = object()  # the reader's own sign that the pipe closed: no message a child sends equals it


class Child:
    """One run of :mod:`nas_lab.grade_runner`; its messages arrive through a reader thread."""

    def __init__(self, workdir: str) -> None:
        env = {
            **os.environ,
            "NAS_LAB_FAST": "1",
            "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        env.pop("NAS_LAB_STRICT", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nas_lab.grade_runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
            env=env,
            start_new_session=True,  # its own process group: whatever it forks dies with it
        )
        self.messages: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in iter(lambda: self.process.stdout.readline(2_000_000), b""):
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                self.messages.put(message)
        self.messages.put(GONE)  # end of the pipe: the child has died or exited

    def send(self, data: Any) -> bool:
        try:
            pickle.dump(data, self.process.stdin)
            self.process.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def next(self, seconds: float) -> Any:
        """The next message; None when the child stayed silent for ``seconds``."""
        try:
            return self.messages.get(timeout=seconds)
        except queue.Empty:
            return None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


def run_child(
    cells: list[tuple[int, str]],
    answers: dict[str, str],
    inputs: dict[str, list[tuple]],
    limits: Limits,
) -> tuple[dict[str, Any], list[str]]:
    """Run the cells and the answers; restart without whatever killed the child.

    Returns ``{exercise_id: outputs | reason}`` and notes for the feedback file."""
    notes: list[str] = []
    results: dict[str, Any] = {}
    skip: set[int] = set()
    first_lines = {i: _first_line(source) for i, source in cells}
    for _ in range(MAX_RESTARTS + 1):
        todo = {k: v for k, v in inputs.items() if k not in results}
        if not todo:
            break
        with tempfile.TemporaryDirectory(prefix="nas-lab-grade-") as workdir:
            culprit, silent = _attempt(workdir, cells, skip, answers, todo, limits, results, notes)
        if culprit is None:
            break
        kind, key = culprit
        how = f"ran past {limits.timeout:g} s" if silent else "ended the grader's process"
        if kind == "cell":
            skip.add(key)
            notes.append(f"code cell {key} ({first_lines[key]}) {how}; it was skipped")
        elif kind == "call":
            results[key] = f"your function {how} (an infinite loop, a crash or too much memory?)"
        else:
            notes.append(f"the grader's process ended outside any cell ({how})")
            break
    for exercise_id in inputs:
        results.setdefault(
            exercise_id, "the grader gave up on this submission after repeated crashes"
        )
    return results, notes


def _attempt(workdir, cells, skip, answers, todo, limits, results, notes):
    """One child from start to finish or death; returns (what it was doing when it died, silent)."""
    child = Child(workdir)
    job = {
        "cells": [(i, s) for i, s in cells if i not in skip],
        "answers": answers,
        "timeout": limits.timeout,
        "memory_bytes": int(limits.memory_gib * 2**30),
        "checks": str(Path(limits.checks).resolve()) if limits.checks else None,
    }
    current: tuple[str, Any] | None = ("start", None)
    wait = STARTUP_SECONDS
    try:
        if not child.send(job):
            return current, False
        while True:
            message = child.next(wait)
            if message is None or message is GONE:
                return current, message is None
            wait = limits.timeout + GRACE_SECONDS
            event = message.get("event")
            if event == "cell" and isinstance(message.get("index"), int):
                current = ("cell", message["index"])
            elif event == "cell_done":
                current = None
                if message.get("error") and message.get("index") in dict(cells):
                    index = message["index"]
                    error = str(message["error"])[:MAX_REASON]
                    notes.append(f"code cell {index} ({_first_line(dict(cells)[index])}) {error}")
            elif event == "ready":
                current = None
                if not child.send(todo):
                    return None, False
            elif event == "call" and message.get("exercise") in todo:
                current = ("call", message["exercise"])
            elif event == "result" and message.get("exercise") in todo:
                outputs = message.get("outputs")
                results[message["exercise"]] = outputs if isinstance(outputs, list) else []
                current = None
            elif event == "done":
                return None, False
    finally:
        child.kill()


def _first_line(source: str) -> str:
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    text = lines[0] if lines else "empty"
    return "`" + (text if len(text) <= 50 else text[:47] + "...") + "`"


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


def write_feedback(out: Path, report: Report) -> None:
    """One submission's feedback files, from this process's memory."""
    out.mkdir(parents=True, exist_ok=True)
    _replace(out / f"{report.submission}.json", json.dumps(report.to_dict(), indent=2) + "\n")
    _replace(out / f"{report.submission}.md", report.to_markdown())


def write_gradebook(out: Path, lesson: Lesson, reports: Sequence[Report]) -> None:
    """``grades.csv``: a row per submission, a column per exercise, then total and max."""
    rows = [["submission"] + [t.id for t in lesson.tasks] + ["total", "max"]]
    for r in reports:
        points = {s.exercise: s.points for s in r.scores}
        rows.append([r.submission, *(points[t.id] for t in lesson.tasks), r.total, r.max_points])
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    out.mkdir(parents=True, exist_ok=True)
    _replace(out / "grades.csv", text.getvalue())


def _fresh(path: Path) -> Path:
    """A temporary name beside ``path``, cleared: a link a submission planted is not followed."""
    temp = path.with_name(f".{path.name}.tmp")
    if temp.is_symlink() or temp.exists():
        temp.unlink()
    return temp


def _replace(path: Path, text: str) -> None:
    temp = _fresh(path)
    temp.write_text(text)
    os.replace(temp, path)


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


__all__ = ["GradeError", "Lesson", "Report", "Score", "grade", "find_lesson", "load_lesson"]
