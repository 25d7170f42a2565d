"""Every notebook of lessons/ and solutions/ runs top to bottom in fast mode, in a fresh kernel.

Solutions run with NAS_LAB_STRICT=1, so a check that fails on the master solution is an error.
Lessons run with their exercises unsolved: they must still finish, and each check must report
the exercise as not implemented (later cells go on with the library's implementation).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import papermill
import pytest
from conftest import ROOT

NOTEBOOKS = sorted(ROOT.glob("solutions/*.ipynb")) + sorted(ROOT.glob("lessons/*.ipynb"))


def exercise_ids(nb: dict) -> list[str]:
    meta = (c.get("metadata", {}).get("nas_lab", {}) for c in nb["cells"])
    return [m["exercise"] for m in meta if "exercise" in m]


def printed_text(nb: dict) -> str:
    texts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            texts.append(text if isinstance(text, str) else "".join(text))
    return "".join(texts)


def run_fast(path: Path, out: Path, record=None) -> dict:
    start = time.perf_counter()
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters={"FAST": True},
        kernel_name="python3",
        cwd=str(path.parent),
        progress_bar=False,
        execution_timeout=600,
    )
    elapsed = time.perf_counter() - start
    if record is not None:
        record("notebook_seconds", round(elapsed, 1))
    print(f"{path.relative_to(ROOT)}: {elapsed:.1f} s")
    return json.loads(out.read_text())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_runs_in_fast_mode(path, tmp_path, monkeypatch, record_property):
    solved = path.parent.name == "solutions"
    monkeypatch.setenv("NAS_LAB_STRICT", "1" if solved else "0")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("NAS_LAB_FAST", raising=False)  # fast mode must come from the parameter
    nb = run_fast(path, tmp_path / path.name, record_property)
    printed = printed_text(nb)
    for ex_id in exercise_ids(nb):
        if solved:
            assert f"[PASS] {ex_id}" in printed, f"the solution's check {ex_id} did not pass"
        else:
            assert f"[FAIL] {ex_id}" in printed and "not implemented" in printed


def test_every_lesson_has_a_master_and_three_exercises():
    masters = sorted(p.name for p in ROOT.glob("solutions/*.ipynb"))
    assert masters == sorted(p.name for p in ROOT.glob("lessons/*.ipynb"))
    for name in masters:
        nb = json.loads((ROOT / "solutions" / name).read_text())
        assert len(exercise_ids(nb)) >= 3, f"{name} has fewer than 3 exercises"
        first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        assert "parameters" in first_code["metadata"].get("tags", []), name
        source = "".join(first_code["source"])
        assert "FAST = False" in source and "SEED = 0" in source, name
