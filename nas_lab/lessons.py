"""Student lessons, generated from master solutions: ``nas-lab lessons build`` and ``check``.

``solutions/NN_slug.ipynb`` is the only source of a lesson. ``lessons/NN_slug.ipynb`` is derived
from it by :func:`build_notebook`:

- code between a line ``### BEGIN SOLUTION`` and a line ``### END SOLUTION`` becomes one line,
  ``raise NotImplementedError("Exercise 01.2: replace this line with your solution")``, at the
  marker's indentation. The region must sit inside a function body: a stub that is defined but
  not yet called must not stop the notebook;
- outputs and execution counts are cleared; cells tagged ``solution-only`` are dropped, and so is
  the ``injected-parameters`` cell papermill adds;
- metadata keeps only what a reader of the lesson needs, so that re-executing a solution (new
  outputs, timings, papermill bookkeeping) does not make its lesson stale.

The output is written deterministically, so :func:`stale` compares bytes.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
MARKER = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>### (?:BEGIN|END) SOLUTION)[ \t]*\r?\n?$")
DROPPED_TAGS = {"solution-only", "injected-parameters"}
# Cell metadata a lesson keeps: tags (papermill's `parameters`, nbval's `nbval-*`), exercise
# metadata for checks and grading, and the author's presentation choices. Everything else
# (execution timings, papermill status, scroll state) is bookkeeping of one run.
KEPT_CELL_METADATA = ("tags", "nas_lab", "editable", "deletable", "slideshow")
DEFAULT_SOLUTIONS, DEFAULT_LESSONS = "solutions", "lessons"


class AuthoringError(ValueError):
    """A master notebook breaks an authoring rule; the message names the place and the fix."""


@dataclass(frozen=True)
class Region:
    """A solution region: the lines ``begin`` .. ``end`` (0-based, both markers included)."""

    begin: int
    end: int
    indent: str


# ---------------------------------------------------------------------------------------------
# One cell: find the solution regions and replace each by a stub.
# ---------------------------------------------------------------------------------------------


def find_regions(lines: list[str]) -> list[Region]:
    """Pair ``BEGIN``/``END`` markers; a marker out of place raises ``AuthoringError``."""
    regions: list[Region] = []
    opened: tuple[int, str] | None = None
    for number, line in enumerate(lines):
        match = MARKER.match(line)
        if match is None:
            if _mentions_marker(line):
                raise _at(number, f"a marker must be alone on its line: exactly `{BEGIN}`/`{END}`")
            continue
        if match["marker"] == BEGIN:
            if opened is not None:
                raise _at(
                    number,
                    f"`{BEGIN}` inside the region opened on line {opened[0] + 1}; "
                    "regions do not nest: close the first with `### END SOLUTION`",
                )
            opened = (number, match["indent"])
        else:
            if opened is None:
                raise _at(number, f"`{END}` without a `{BEGIN}` before it")
            regions.append(Region(opened[0], number, opened[1]))
            opened = None
    if opened is not None:
        raise _at(opened[0], f"`{BEGIN}` has no matching `{END}`")
    return regions


def _mentions_marker(line: str) -> bool:
    return "BEGIN SOLUTION" in line or "END SOLUTION" in line


def stub_line(indent: str, exercise: str | None) -> str:
    """The line a learner replaces with their solution."""
    prefix = f"Exercise {exercise}: " if exercise else ""
    message = f"{prefix}replace this line with your solution"
    return f"{indent}raise NotImplementedError({json.dumps(message)})"


def stub_source(source: str, exercise: str | None = None) -> str:
    """Replace every solution region of a code cell's source by a stub."""
    lines = source.splitlines(keepends=True)
    regions = find_regions(lines)
    for region in regions:
        if not region.indent:
            raise _at(
                region.begin,
                "a solution region at the top level of a cell would raise as soon as the cell "
                "runs; put it inside a function body and indent the markers with the code",
            )
    for region in reversed(regions):  # from the bottom, so earlier line numbers stay valid
        newline = "\n" if lines[region.end].endswith("\n") else ""
        lines[region.begin : region.end + 1] = [stub_line(region.indent, exercise) + newline]
    stubbed = "".join(lines)
    if regions:
        _require_stubs_inside_functions(stubbed, regions)
    return stubbed


def _require_stubs_inside_functions(source: str, regions: list[Region]) -> None:
    """An indented region can still run at once (in a loop or a class body): refuse that too.

    IPython magics are turned into plain calls first, so that the cell parses as Python."""
    from IPython.core.inputtransformer2 import TransformerManager  # IPython: a kernel dependency

    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError as error:
        raise AuthoringError(
            f"once stubbed, line {error.lineno} is not valid Python ({error.msg}): "
            "a region must wrap whole statements"
        ) from None
    by_stub_line, removed = {}, 0  # a stub's line number (from 1) once the regions are stubbed
    for region in regions:
        by_stub_line[region.begin - removed + 1] = region
        removed += region.end - region.begin
    unsafe = set(by_stub_line) - _raise_lines_in_functions(tree)
    for node in ast.walk(tree):  # a cell magic hides its body in a string: nothing to check
        if isinstance(node, ast.Raise) and node.lineno in unsafe:
            raise _at(
                by_stub_line[node.lineno].begin,
                "this region is not inside a function body, so its stub would raise as soon as "
                "the cell runs; move it into a def",
            )


def _raise_lines_in_functions(tree: ast.AST) -> set[int]:
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        node.lineno
        for function in ast.walk(tree)
        if isinstance(function, functions)
        for node in ast.walk(function)
        if isinstance(node, ast.Raise)
    }


def _at(line: int, message: str) -> AuthoringError:
    return AuthoringError(f"line {line + 1}: {message}")


# ---------------------------------------------------------------------------------------------
# One notebook.
# ---------------------------------------------------------------------------------------------


def build_notebook(nb: NotebookNode, name: str = "notebook") -> NotebookNode:
    """The student lesson generated from a master notebook (which is left unchanged).

    ``name`` only labels error messages, which also give the cell index and line."""
    lesson = copy.deepcopy(nb)
    lesson.metadata = _notebook_metadata(nb.metadata)
    cells = []
    for index, cell in enumerate(nb.cells):
        if DROPPED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        try:
            cells.append(_build_cell(cell))
        except AuthoringError as error:
            raise AuthoringError(f"{name}, cell index {index}, {error}") from None
    lesson.cells = cells
    return lesson


def _build_cell(cell: NotebookNode) -> NotebookNode:
    cell = copy.deepcopy(cell)
    cell.metadata = _cell_metadata(cell.get("metadata", {}))
    if cell.cell_type != "code":
        marked = [i for i, line in enumerate(cell.source.splitlines()) if _mentions_marker(line)]
        if marked:
            raise _at(
                marked[0],
                f"solution markers work in code cells only, this is a {cell.cell_type} "
                "cell; tag it `solution-only` to drop it from the lesson",
            )
        return cell
    exercise = cell.metadata.get("nas_lab", {}).get("exercise")
    cell.source = stub_source(cell.source, str(exercise) if exercise is not None else None)
    cell.outputs = []
    cell.execution_count = None
    return cell


def _cell_metadata(metadata: dict) -> NotebookNode:
    kept = {key: copy.deepcopy(metadata[key]) for key in KEPT_CELL_METADATA if key in metadata}
    if not kept.get("tags", True):  # Jupyter adds `"tags": []` on a whim
        del kept["tags"]
    return NotebookNode(kept)


def _notebook_metadata(metadata: dict) -> NotebookNode:
    kept = {}
    if "kernelspec" in metadata:
        kept["kernelspec"] = copy.deepcopy(metadata["kernelspec"])
    if "name" in metadata.get("language_info", {}):
        kept["language_info"] = {"name": metadata["language_info"]["name"]}
    return nbformat.from_dict(kept)


def lesson_text(master: Path) -> str:
    """The exact text of the lesson that ``master`` generates."""
    try:
        nb = nbformat.read(master, as_version=nbformat.NO_CONVERT)
    except Exception as error:  # nbformat raises several types for an unreadable file
        raise AuthoringError(f"{master}: not a readable notebook ({error})") from None
    if nb.get("nbformat") != 4:
        raise AuthoringError(f"{master}: nbformat {nb.get('nbformat')}; save it as nbformat 4")
    text = nbformat.writes(build_notebook(nb, name=str(master)))
    return text if text.endswith("\n") else text + "\n"


# ---------------------------------------------------------------------------------------------
# Whole folders: build and check.
# ---------------------------------------------------------------------------------------------


def masters(solutions_dir: str | Path = DEFAULT_SOLUTIONS) -> list[Path]:
    """The master notebooks, sorted by name."""
    solutions_dir = Path(solutions_dir)
    if not solutions_dir.is_dir():
        raise FileNotFoundError(
            f"no solutions folder {str(solutions_dir)!r}: run from the project root "
            "or pass --solutions DIR"
        )
    return sorted(solutions_dir.glob("*.ipynb"))


def build(
    solutions_dir: str | Path = DEFAULT_SOLUTIONS, lessons_dir: str | Path = DEFAULT_LESSONS
) -> list[Path]:
    """Generate every lesson from its master; return the lessons' paths.

    All masters are built before anything is written, so an authoring error leaves ``lessons/``
    as it was. A lesson whose text is unchanged is not rewritten (its mtime stays)."""
    lessons_dir = Path(lessons_dir)
    if lessons_dir.resolve() == Path(solutions_dir).resolve():
        raise ValueError("the lessons folder must differ from the solutions folder")
    texts = {lessons_dir / master.name: lesson_text(master) for master in masters(solutions_dir)}
    lessons_dir.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        data = text.encode("utf-8")
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
    return list(texts)


def stale(
    solutions_dir: str | Path = DEFAULT_SOLUTIONS, lessons_dir: str | Path = DEFAULT_LESSONS
) -> list[str]:
    """Problems with ``lessons/``, one sentence each with its fix; empty when all is in step."""
    lessons_dir = Path(lessons_dir)
    rebuild = f"run `{build_command(solutions_dir, lessons_dir)}`"
    problems = []
    sources = masters(solutions_dir)
    for master in sources:
        lesson = lessons_dir / master.name
        try:
            expected = lesson_text(master).encode("utf-8")
        except AuthoringError as error:
            problems.append(f"{error} (fix the master, then {rebuild})")
            continue
        if not lesson.is_file():
            problems.append(f"{lesson} is missing: {rebuild}")
        elif lesson.read_bytes() != expected:
            problems.append(f"{lesson} differs from what {master} generates: {rebuild}")
    names = {master.name for master in sources}
    for lesson in sorted(lessons_dir.glob("*.ipynb")):
        if lesson.name not in names:
            problems.append(
                f"{lesson} has no master {Path(solutions_dir) / lesson.name}: "
                "delete the lesson, or restore its master"
            )
    return problems


def build_command(solutions_dir: str | Path, lessons_dir: str | Path) -> str:
    """The command that rebuilds these folders, with only the options that differ from default."""
    command = "nas-lab lessons build"
    if Path(solutions_dir) != Path(DEFAULT_SOLUTIONS):
        command += f" --solutions {solutions_dir}"
    if Path(lessons_dir) != Path(DEFAULT_LESSONS):
        command += f" --lessons {lessons_dir}"
    return command
