"""The authoring pipeline: solutions/ masters generate lessons/, and `check` catches drift.

The notebooks here are tiny and made in tmp_path; no kernel runs. A stubbed cell is `exec`'d in
a plain namespace to show that it defines its function and that calling it raises.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nas_lab.cli import main
from nas_lab.lessons import AuthoringError, build, build_notebook, stale

SOLVED = textwrap.dedent(
    """\
    def double(x):
        \"\"\"Twice x.\"\"\"
        ### BEGIN SOLUTION
        y = 2 * x
        return y
        ### END SOLUTION
    """
)


def exercise_cell(source: str = SOLVED, exercise: str | None = "01.2") -> nbformat.NotebookNode:
    cell = new_code_cell(source)
    if exercise:
        cell.metadata["nas_lab"] = {"exercise": exercise, "points": 2}
    return cell


def master(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells) or [new_markdown_cell("# Lesson"), exercise_cell()])
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python", "version": "3.11.4"},
    }
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def simulate_execution(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What running the master with papermill does to it: outputs and bookkeeping everywhere."""
    nb.metadata["papermill"] = {"duration": 3.2, "start_time": "2024-01-01T00:00:00"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["language_info"]["version"] = "3.12.1"
    for count, cell in enumerate(nb.cells, start=1):
        cell.metadata["papermill"] = {"status": "completed", "duration": 0.1}
        cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:01"}
        cell.metadata["tags"] = cell.metadata.get("tags", [])
        if cell.cell_type == "code":
            cell.execution_count = count
            cell.outputs = [new_output("stream", name="stdout", text=f"run {count}\n")]
    return nb


# ---------------------------------------------------------------------------------------------
# One notebook
# ---------------------------------------------------------------------------------------------


def test_stub_replaces_the_region_at_the_marker_indentation():
    lesson = build_notebook(master())
    assert lesson.cells[1].source == textwrap.dedent(
        """\
        def double(x):
            \"\"\"Twice x.\"\"\"
            raise NotImplementedError("Exercise 01.2: replace this line with your solution")
        """
    )


def test_stubbed_cell_defines_the_function_and_calling_it_raises_naming_the_exercise():
    lesson = build_notebook(master())
    namespace: dict = {}
    exec(lesson.cells[1].source, namespace)  # defining the stub must not raise
    with pytest.raises(NotImplementedError, match=r"Exercise 01\.2"):
        namespace["double"](3)


def test_regions_are_stubbed_independently_at_their_own_depth_and_without_exercise_id():
    source = textwrap.dedent(
        """\
        class Model:
            def forward(self, x):
                ### BEGIN SOLUTION
                return x
                ### END SOLUTION

        def helper():
          ### BEGIN SOLUTION
          pass
          ### END SOLUTION
        """
    )
    stubbed = build_notebook(master(exercise_cell(source, exercise=None))).cells[0].source
    lines = stubbed.splitlines()
    stub = 'raise NotImplementedError("replace this line with your solution")'
    assert lines[2] == " " * 8 + stub and lines[5] == " " * 2 + stub
    assert "return x" not in stubbed and "pass" not in stubbed
    namespace: dict = {}
    exec(stubbed, namespace)
    with pytest.raises(NotImplementedError):
        namespace["Model"]().forward(1)


def test_outputs_counts_and_run_bookkeeping_are_cleared_but_tags_and_exercise_kept():
    nb = simulate_execution(master())
    nb.cells[1].metadata["tags"] = ["nbval-ignore-output"]
    lesson = build_notebook(nb)
    code = lesson.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert code.metadata == {
        "tags": ["nbval-ignore-output"],
        "nas_lab": {"exercise": "01.2", "points": 2},
    }
    assert lesson.cells[0].metadata == {}  # an empty `tags` list is dropped too
    assert lesson.metadata == {
        "kernelspec": nb.metadata["kernelspec"],
        "language_info": {"name": "python"},
    }
    assert [c.id for c in lesson.cells] == [c.id for c in nb.cells]
    assert nb.cells[1].outputs, "the master itself must be left unchanged"


def test_solution_only_and_papermill_injected_cells_are_dropped():
    secret = new_code_cell("answer = 42")
    secret.metadata["tags"] = ["solution-only"]
    injected = new_code_cell("FAST = True")
    injected.metadata["tags"] = ["injected-parameters"]
    lesson = build_notebook(master(new_markdown_cell("# L"), secret, injected, exercise_cell()))
    assert [c.source.splitlines()[0] for c in lesson.cells] == ["# L", "def double(x):"]


@pytest.mark.parametrize(
    "source, line, words",
    [
        ("x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n", 2, "top level"),
        (
            "for i in range(3):\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n",
            2,
            "not inside a function",
        ),
        ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", 2, "no matching"),
        ("def f():\n    return 1\n    ### END SOLUTION\n", 3, "without a"),
        ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n", 3, "do not nest"),
        ("def f():\n    x = 1  ### BEGIN SOLUTION\n    return x\n", 2, "alone on its line"),
    ],
)
def test_authoring_errors_name_notebook_cell_and_line(source, line, words):
    nb = master(new_markdown_cell("# L"), exercise_cell(source))
    with pytest.raises(AuthoringError, match=words) as error:
        build_notebook(nb, name="solutions/01_x.ipynb")
    assert f"solutions/01_x.ipynb, cell index 1, line {line}:" in str(error.value)


def test_markers_in_a_markdown_cell_are_refused_so_no_solution_leaks():
    nb = master(new_markdown_cell("Answer:\n### BEGIN SOLUTION\n42\n### END SOLUTION"))
    with pytest.raises(AuthoringError, match="code cells only"):
        build_notebook(nb)


# ---------------------------------------------------------------------------------------------
# Folders and the CLI
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def course(tmp_path: Path) -> Path:
    write(master(), tmp_path / "solutions" / "01_spaces.ipynb")
    write(master(new_markdown_cell("# Intro")), tmp_path / "solutions" / "00_welcome.ipynb")
    return tmp_path


def cli(course: Path, *words: str) -> int:
    dirs = ["--solutions", str(course / "solutions"), "--lessons", str(course / "lessons")]
    return main([*words, *dirs])


def test_build_then_check_passes(course, capsys):
    assert cli(course, "lessons", "build") == 0
    assert sorted(p.name for p in (course / "lessons").iterdir()) == [
        "00_welcome.ipynb",
        "01_spaces.ipynb",
    ]
    assert cli(course, "lessons", "check") == 0
    text = (course / "lessons" / "01_spaces.ipynb").read_text()
    assert text.endswith("}\n") and "NotImplementedError" in text and "2 * x" not in text


def test_building_twice_gives_the_same_bytes(course):
    paths = build(course / "solutions", course / "lessons")
    first = [p.read_bytes() for p in paths]
    assert [p.read_bytes() for p in build(course / "solutions", course / "lessons")] == first


def test_editing_a_master_without_rebuilding_fails_check_naming_the_lesson(course, capsys):
    build(course / "solutions", course / "lessons")
    path = course / "solutions" / "01_spaces.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "# Lesson, revised"
    write(nb, path)
    assert cli(course, "lessons", "check") == 1
    out = capsys.readouterr().out
    assert "01_spaces.ipynb" in out and "00_welcome.ipynb" not in out
    assert "nas-lab lessons build" in out


def test_missing_and_orphan_lessons_are_reported(course):
    build(course / "solutions", course / "lessons")
    (course / "lessons" / "00_welcome.ipynb").unlink()
    write(master(), course / "lessons" / "99_stray.ipynb")
    problems = stale(course / "solutions", course / "lessons")
    assert len(problems) == 2
    assert "00_welcome.ipynb is missing" in problems[0]
    assert "99_stray.ipynb has no master" in problems[1]


def test_re_executing_a_master_does_not_make_its_lesson_stale(course):
    build(course / "solutions", course / "lessons")
    path = course / "solutions" / "01_spaces.ipynb"
    write(simulate_execution(nbformat.read(path, as_version=4)), path)
    assert stale(course / "solutions", course / "lessons") == []


def test_a_broken_master_is_one_clear_line_and_nothing_is_written(course, capsys):
    source = "### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n"
    write(master(exercise_cell(source)), course / "solutions" / "02_bad.ipynb")
    assert cli(course, "lessons", "build") == 1
    err = capsys.readouterr().err
    assert "02_bad.ipynb, cell index 0, line 1" in err and "top level" in err
    assert not (course / "lessons").exists()  # the good masters were not half-built either


def test_missing_solutions_folder_names_the_fix(tmp_path, capsys):
    assert main(["lessons", "check", "--solutions", str(tmp_path / "nope")]) == 1
    assert "--solutions DIR" in capsys.readouterr().err


def test_help_and_version_do_not_import_torch():
    code = (
        "import sys\n"
        "from nas_lab.cli import main, version\n"
        "assert version()\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "assert 'torch' not in sys.modules, 'nas-lab --help imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "lessons" in result.stdout


def test_version_is_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"nas-lab {importlib.metadata.version('nas_lab')}"
