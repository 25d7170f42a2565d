"""The set-up files agree: environment.yml lists what pyproject.toml lists, with the same bounds."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # where conda-forge names a package differently from PyPI


def split(requirement: str) -> tuple[str, str]:
    name, bound = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", requirement.strip()).groups()
    return name.lower().replace("_", "-"), bound.replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return dict(split(CONDA_NAMES.get(split(r)[0], split(r)[0]) + split(r)[1]) for r in reqs)


def conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    return dict(split(d) for d in deps if split(d)[0] not in ("python", "pip"))


def test_environment_yml_matches_pyproject():
    assert conda_requirements() == pyproject_requirements()


def test_python_floor_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert project["requires-python"] == ">=3.10"
    assert "python>=3.10" in env["dependencies"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    assert re.search(r"^make test\s*$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_a_plain_install_runs_without_the_source_tree(tmp_path):
    """`pip install .` (not editable) into a fresh venv: the package finds its shipped data, the
    benchmark loads, and lesson 00 runs in fast mode from a folder outside the repository. The
    venv borrows the project's installed dependencies and pip (a .pth line, `pip --python`) so
    that it needs no download."""
    import subprocess
    import sys
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ there
    for name in ("nas_lab", "data"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    install = [*pip, "--no-build-isolation", str(source)]
    subprocess.run(install, check=True, cwd=tmp_path)
    probe = (
        "import nas_lab, nas_lab.datafiles as d; from nas_lab import bench;"
        "print(nas_lab.__file__); print(d.data_dir()); print(len(bench.load()))"
    )
    hidden = ("PYTHONPATH", "NAS_LAB_DATA", "NAS_LAB_STRICT")  # strict: a stub's check would raise
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    out = subprocess.run(
        [python, "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path, env=env
    ).stdout.split("\n")
    assert out[0].startswith(site)  # the installed copy, not the checkout
    assert out[1] == str(Path(site) / "nas_lab" / "_data")
    assert int(out[2]) > 6000  # every unique cell of the shipped table
    lesson = tmp_path / "00_welcome.ipynb"
    lesson.write_bytes((ROOT / "lessons" / "00_welcome.ipynb").read_bytes())
    run = [
        python,
        "-m",
        "papermill",
        str(lesson),
        str(tmp_path / "out.ipynb"),
        "-p",
        "FAST",
        "True",
    ]
    done = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert sum(bool(c.get("outputs")) for c in executed.cells if c.cell_type == "code") >= 5


def test_the_package_list_names_every_package_of_the_tree():
    """pyproject.toml lists the packages (it must, to map data/ to nas_lab/_data): a new
    subpackage missing from the list would be left out of a plain install."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nas_lab").rglob("__init__.py")
    }
    assert listed == found | {"nas_lab._data"}
