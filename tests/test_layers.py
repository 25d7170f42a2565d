"""The library's layers (the package docstring of nas_lab): methods never import course machinery,
and importing the library does not load the exercise registry."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nas_lab"
METHODS = ("spaces", "bench", "hardware", "proxies", "strategies", "oneshot")
FOUNDATIONS = ("data", "train", "cost", "device", "pareto", "datafiles", "arguments", "curves")
MACHINERY = ("checks", "grading", "lessons", "widgets", "notebook", "cli")


def method_files() -> list[Path]:
    files = [p for folder in METHODS for p in sorted((PACKAGE / folder).rglob("*.py"))]
    return files + [PACKAGE / f"{name}.py" for name in FOUNDATIONS]


def imported(path: Path) -> set[str]:
    """Every nas_lab module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("nas_lab")}


def machinery(name: str) -> bool:
    parts = name.split(".")
    return len(parts) > 1 and parts[1] in MACHINERY


def test_the_layers_are_where_the_docstring_says():
    for folder in METHODS:
        assert (PACKAGE / folder / "__init__.py").exists(), folder
    for name in (*FOUNDATIONS, *MACHINERY):
        assert (PACKAGE / f"{name}.py").exists() or (PACKAGE / name).is_dir(), name


@pytest.mark.parametrize("path", method_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_method_imports_course_machinery(path):
    wrong = sorted(name for name in imported(path) if machinery(name))
    assert not wrong, f"{path.relative_to(PACKAGE)} imports course machinery: {wrong}"


def test_the_layer_check_catches_a_machinery_import(tmp_path):
    planted = tmp_path / "method.py"
    planted.write_text("def f():\n    from nas_lab.checks import lesson04\n")
    assert any(machinery(name) for name in imported(planted))
    planted.write_text("from nas_lab import widgets\n")
    assert any(machinery(name) for name in imported(planted))


def test_importing_the_library_does_not_load_the_checks():
    probe = (
        "import sys, nas_lab, nas_lab.bench, nas_lab.strategies.evolution;"
        "assert 'nas_lab.checks' not in sys.modules, 'checks loaded';"
        "from nas_lab import check; assert 'nas_lab.checks' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
