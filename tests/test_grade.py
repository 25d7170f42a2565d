"""`nas-lab grade`: full marks for the solutions, 0 for the lessons, and a hostile suite that can
neither raise its own grade nor stop the batch.

The hostile suite is built on a compact lesson 00 (its parameter, import, exercise and check cells),
so that one batch of two dozen submissions runs in well under a minute on two cores."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import nbformat
import pytest

from nas_lab import cli, grading

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.name.split("_")[0] for p in (ROOT / "solutions").glob("[0-9]*.ipynb"))

PRIVATE_CHECKS = """
from nas_lab.checks import exercise
from nas_lab.first_search import cell_space_size

# A hidden test of 00.1's function on larger spaces than the public check uses.
exercise(
    "00.1-hidden",
    title="space size on large cells",
    points=3,
    inputs=lambda rng: [(int(rng.integers(6, 9)), int(rng.integers(6, 12))) for _ in range(3)],
)(cell_space_size)
"""


def _notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / name, as_version=4)


def _compact(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Parameters, imports, exercise cells and their check cells: the part grading needs."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    keep = code[:2]
    for i, cell in enumerate(code):
        if "nas_lab" in cell.metadata:
            keep += [cell, code[i + 1]]
    small = copy.deepcopy(nb)
    small.cells = copy.deepcopy(keep)
    for cell in small.cells:
        cell.outputs, cell.execution_count = [], None
    return small


def _code(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source)


def _replace_exercise(nb, exercise_id: str, source: str):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.metadata.get("nas_lab", {}).get("exercise") == exercise_id:
            cell.source = source
    return nb


def _with(nb, *sources: str, at: int | None = None):
    nb = copy.deepcopy(nb)
    cells = [_code(s) for s in sources]
    nb.cells[at if at is not None else len(nb.cells) : at] = cells
    return nb


DRAFT = "def incumbent(scores):\n    return scores  # a first draft\n\n"


def _suite(out: Path) -> dict[str, object]:
    """name -> notebook (or raw bytes) of every submission of the hostile batch."""
    solved = _compact(_notebook("solutions/00_welcome.ipynb"))
    stub = _compact(_notebook("lessons/00_welcome.ipynb"))
    reordered = copy.deepcopy(solved)
    reordered.cells = reordered.cells[::-1]
    no_metadata = copy.deepcopy(solved)
    for cell in no_metadata.cells:
        cell.metadata = {}
    duplicated = copy.deepcopy(solved)
    duplicated.cells = [copy.deepcopy(c) for c in stub.cells + solved.cells + solved.cells[2:]]
    for i, cell in enumerate(duplicated.cells):
        cell.id = f"copy-{i}"
    deleted = copy.deepcopy(solved)
    deleted.cells = [
        c for c in deleted.cells if c.metadata.get("nas_lab", {}).get("exercise") != "00.1"
    ]
    renamed = copy.deepcopy(solved)
    for cell in renamed.cells:
        cell.source = cell.source.replace("cell_space_size", "size_of_space")
    fake_out = {"submission": "writes_out_dir", "total": 99, "max": 4}
    return {
        "solved": solved,
        "stub": stub,
        "patches_check": _with(
            stub,
            "import nas_lab, nas_lab.checks\n"
            "nas_lab.check = nas_lab.checks.check = lambda *a, **k: True\n"
            "nas_lab.checks.evaluate = lambda ex, answer, seed: "
            "nas_lab.checks.CheckResult(ex.id, True, ex.points, ex.points, 'ok')\n"
            "nas_lab.checks.run_answer = lambda ex, answer, args: "
            "(True, ex.call(ex.reference, args))",
        ),
        "patches_grader": _with(
            stub,
            "import nas_lab.grading.runner as runner\n"
            "runner.answer_outputs = lambda *a: [{'ok': True, 'value': 42}] * 10\n"
            "runner.to_plain = lambda value: 42",
        ),
        "patches_builtins_json": _with(
            stub,
            "import builtins, json\n"
            'json.dumps = lambda *a, **k: \'{"event": "done"}\'\n'
            "json.loads = lambda *a, **k: {'ok': True}\n"
            "builtins.isinstance = lambda *a: True",
        ),
        "solved_json_patched": _with(
            solved, "import json\njson.dumps = lambda *a, **k: 'nonsense'"
        ),
        "hard_coded": _replace_exercise(
            _replace_exercise(stub, "00.1", "def cell_space_size(n, k):\n    return 15625"),
            "00.2",
            "def incumbent(scores):\n    return [0.5, 0.7, 0.7, 0.9]",
        ),
        "prints_pass": _with(
            stub,
            "import os, sys\n"
            "for ex in ('00.1', '00.2', '00.3'):\n"
            "    print(f'[PASS] {ex} (2/2 points): right')\n"
            '    os.write(1, b\'{"event": "result", "exercise": "00.1", "outputs": []}\\n\')\n'
            "    print('[PASS]', file=sys.stderr)",
        ),
        "writes_out_dir": _with(
            stub,
            "from pathlib import Path\n"
            f"out = Path({str(out)!r})\n"
            "out.mkdir(parents=True, exist_ok=True)\n"
            "(out / 'grades.csv').write_text('submission,00.1,00.2,00.3,total,max\\n')\n"
            f"(out / 'writes_out_dir.json').write_text({json.dumps(fake_out)!r})\n"
            "(out / 'solved.json').write_text('{}')",
        ),
        "loops_in_exercise": _replace_exercise(
            solved, "00.1", "def cell_space_size(n, k):\n    while True:\n        pass"
        ),
        # A scratch cell that defines an answer's name runs even when only needed cells do.
        "loops_in_cell": _with(solved, DRAFT + "while True:\n    pass", at=3),
        "sleeps_in_cell": _with(solved, DRAFT + "import time\ntime.sleep(3600)", at=3),
        "eats_memory": _with(solved, DRAFT + "hog = bytearray(2**40)  # a terabyte", at=3),
        "exits_in_cell": _with(solved, DRAFT + "import os\nos._exit(3)", at=3),
        "kills_itself_in_exercise": _replace_exercise(
            solved,
            "00.2",
            "import os, signal\ndef incumbent(scores):\n    os.kill(os.getpid(), signal.SIGKILL)",
        ),
        "syntax_error": _replace_exercise(solved, "00.1", "def cell_space_size(n, k)\n    return"),
        "deleted_cell": deleted,
        "reordered": reordered,
        "duplicated": duplicated,
        "lost_metadata": no_metadata,
        "renamed_function": renamed,
        "warns_on_stderr": _with(
            solved,
            "import sys, warnings\nwarnings.warn('deprecated!')\nprint('noise', file=sys.stderr)",
        ),
        "uses_library": _replace_exercise(
            stub, "00.1", "from nas_lab.first_search import cell_space_size"
        ),
        "other_lesson": _compact(_notebook("solutions/01_search_spaces.ipynb")),
        "My Homework (final)": solved,
        "not_a_notebook": b"Dear professor, here is my homework.",
        "empty": b"",
        "json_garbage": b'{"cells": 42, "nbformat": ',
    }


# Expected total of 00.1 (1) + 00.2 (1) + 00.3 (2) + 00.1-hidden (3) = 7, per submission.
EXPECTED = {
    "solved": 7,
    "stub": 0,
    "patches_check": 0,
    "patches_grader": 0,
    "patches_builtins_json": 0,
    "solved_json_patched": 7,
    "hard_coded": 0,
    "prints_pass": 0,
    "writes_out_dir": 0,
    "loops_in_exercise": 3,  # 00.1 and its hidden check lost, nothing else
    "loops_in_cell": 7,
    "sleeps_in_cell": 7,
    "eats_memory": 7,
    "exits_in_cell": 7,
    "kills_itself_in_exercise": 6,
    "syntax_error": 3,
    "deleted_cell": 3,
    "reordered": 7,
    "duplicated": 7,
    "lost_metadata": 7,
    "renamed_function": 7,
    "warns_on_stderr": 7,
    "uses_library": 0,
    "other_lesson": 0,
    "My_Homework_final_": 7,
    "not_a_notebook": 0,
    "empty": 0,
    "json_garbage": 0,
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("grades")
    for name, content in _suite(out).items():
        path = folder / f"{name}.ipynb"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            nbformat.write(content, path)
    checks = folder / "private_checks.py"
    checks.write_text(PRIVATE_CHECKS)
    status = cli.main(
        ["grade", "00", str(folder), "--out", str(out), "--checks", str(checks)]
        + ["--timeout", "6", "--workers", "2", "--memory", "2"]
    )
    assert status == 0
    return out, {r["submission"]: r for r in map(_read_json, out.glob("*.json"))}


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _reasons(report: dict) -> dict[str, str]:
    return {e["exercise"]: e["reason"] for e in report["exercises"]}


def test_every_submission_gets_its_expected_grade(batch):
    _, reports = batch
    assert {name: r["total"] for name, r in reports.items()} == EXPECTED


def test_the_gradebook_has_a_column_per_exercise_and_the_private_check(batch):
    out, _ = batch
    with open(out / "grades.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["submission", "00.1", "00.2", "00.3", "00.1-hidden", "total", "max"]
    by_name = {row["submission"]: row for row in rows}
    assert set(by_name) == set(EXPECTED)
    assert by_name["solved"] == {
        "submission": "solved",
        **{"00.1": "1", "00.2": "1", "00.3": "2", "00.1-hidden": "3"},
        **{"total": "7", "max": "7"},
    }
    assert by_name["writes_out_dir"]["total"] == "0"


def test_feedback_names_the_fault(batch):
    _, reports = batch
    assert "not implemented yet" in _reasons(reports["stub"])["00.1"]
    assert "ran past the time limit" in _reasons(reports["loops_in_exercise"])["00.1"]
    assert "ended the grader's process" in _reasons(reports["kills_itself_in_exercise"])["00.2"]
    assert "no function named `cell_space_size`" in _reasons(reports["deleted_cell"])["00.1"]
    assert "library's own implementation" in _reasons(reports["uses_library"])["00.1"]
    assert "looks like lesson 01" in _reasons(reports["other_lesson"])["00.1"]
    assert "not a Jupyter notebook" in _reasons(reports["not_a_notebook"])["00.1"]
    assert "empty" in _reasons(reports["empty"])["00.1"]
    assert "expected" in _reasons(reports["hard_coded"])["00.1"]
    notes = {name: " ".join(r["notes"]) for name, r in reports.items()}
    assert "ran past" in notes["loops_in_cell"]
    assert "ended the grader's process" in notes["exits_in_cell"]
    assert "syntax error" in notes["syntax_error"]
    assert "memory" in notes["eats_memory"]
    assert notes["solved"] == notes["warns_on_stderr"] == ""


def test_feedback_files_hold_points_and_reasons_without_grader_tracebacks(batch):
    out, reports = batch
    report = reports["hard_coded"]
    assert set(report) == {"submission", "file", "lesson", "total", "max", "exercises", "notes"}
    assert set(report["exercises"][0]) == {"exercise", "points", "max_points", "passed", "reason"}
    for path in out.glob("*.md"):
        text = path.read_text()
        assert "Traceback" not in text and "nas_lab/grading" not in text
    md = (out / "solved.md").read_text()
    assert "**7 of 7 points**" in md and "| 00.3 | 2 / 2 | yes |" in md


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_gets_full_marks_and_the_lesson_zero(lesson, tmp_path):
    master = next((ROOT / "solutions").glob(f"{lesson}_*.ipynb"))
    student = ROOT / "lessons" / master.name
    reports = grading.grade(lesson, [master, student], tmp_path, workers=2)
    solved, untouched = reports
    assert solved.total == solved.max_points > 0, solved.to_markdown()
    assert untouched.total == 0, untouched.to_markdown()


def test_an_unknown_lesson_lists_the_lessons(tmp_path, capsys):
    assert cli.main(["grade", "42", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "no lesson '42'" in error and "00_welcome" in error and "Traceback" not in error


def test_a_private_check_must_name_the_exercise_it_extends(tmp_path):
    checks = tmp_path / "checks.py"
    checks.write_text(PRIVATE_CHECKS.replace('"00.1-hidden"', '"hidden"'))
    with pytest.raises(grading.GradeError, match="e.g. '01.2-hidden'"):
        grading.load_private_checks(checks)


def test_only_the_cells_the_answers_need_run_first():
    cells = [
        (1, "import numpy as np\nSCALE = 2"),
        (2, "heavy = train_everything()"),  # defines nothing the answer reads
        (3, "def answer(x):\n    y = x * SCALE\n    return np.sum(y)"),
        (4, "check('00.1', answer)"),
    ]
    assert [i for i, _ in grading.needed_cells(cells, ["answer"])] == [1, 3]
