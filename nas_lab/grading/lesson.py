"""The lesson a batch is graded against: its exercises, the function each grades, their points.

The exercises come from the master notebook's cell metadata and the function names from its
``check("01.2", name)`` calls. An instructor's private checks file adds hidden exercises, each
grading the function of the public exercise its id starts with (``01.2-hidden`` grades ``01.2``).
The solutions are found in ``solutions/`` (the working folder's, then the repository's), then in
the repository's ``lessons/``.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nas_lab.checks import REGISTRY, Exercise, load_all
from nas_lab.grading.cells import python_source

if TYPE_CHECKING:
    import nbformat

ROOT = Path(__file__).resolve().parents[2]


class GradeError(ValueError):
    """A problem the instructor can fix (an unknown lesson, a broken checks file)."""


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
    import nbformat  # here, not above: the grader's child imports this package, and not nbformat

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


def other_lesson(lesson: Lesson, ids: Iterable[str]) -> str | None:
    """The lesson a notebook belongs to, when it has none of this lesson's exercises."""
    ids = [i for i in ids if isinstance(i, str) and "." in i]
    if not ids or any(i.split("-")[0] in lesson.exercises for i in ids):
        return None
    guess, _ = Counter(i.split(".")[0] for i in ids).most_common(1)[0]
    return guess if guess != lesson.id else None
