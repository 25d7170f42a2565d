"""Shared test set-up: notebooks run in a kernel of this very environment, and their execution
times are printed at the end of the run (tests record them as the user property
``notebook_seconds``, which pytest-xdist carries back from its workers)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]

# A kernel spec may start `python` from PATH: make that the project's own interpreter.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")


def pytest_terminal_summary(terminalreporter):
    times = {
        report.nodeid: seconds
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, seconds in getattr(report, "user_properties", [])
        if name == "notebook_seconds"
    }
    if times:
        terminalreporter.section("notebook execution times (fast mode)")
        for nodeid, seconds in sorted(times.items()):
            terminalreporter.write_line(f"{seconds:7.1f} s  {nodeid.split('[')[-1].rstrip(']')}")
