"""Shared test set-up: notebooks run in a kernel of this very environment, and their execution
times are printed at the end of the run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_TIMES: dict[str, float] = {}

# A kernel spec may start `python` from PATH: make that the project's own interpreter.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")


def pytest_terminal_summary(terminalreporter):
    if not NOTEBOOK_TIMES:
        return
    terminalreporter.section("notebook execution times (fast mode)")
    for name, seconds in sorted(NOTEBOOK_TIMES.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
