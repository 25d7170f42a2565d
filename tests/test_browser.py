"""The lessons as a learner sees them: JupyterLab in a headless Chromium, driven by Playwright.

For each lesson (unsolved, fast mode) the test opens it in JupyterLab, runs all cells, asserts that
no cell shows an error and that every figure is wide enough to read, moves the lesson's explorer
(a slider or a drop-down) and sees its output change, and keeps a screenshot under
``test-artifacts/browser/``. Chromium is Debian's (``apt-get install chromium``, which ``.ci/run``
does); where it cannot be had the test is skipped and says why.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT
from test_lab import free_port

ARTIFACTS = ROOT / "test-artifacts" / "browser"
LESSONS = sorted(p.name for p in (ROOT / "lessons").glob("*.ipynb"))
LESSON_TIMEOUT_S = 180  # a fast-mode lesson takes seconds; a loaded machine, more
BROKEN = "broken.ipynb"  # the harness must see its error, or a passing run proves nothing
MIN_FIGURE_PX = 300  # narrower than this, a projected figure cannot be read


@dataclass(frozen=True)
class Explorer:
    """How to move a lesson's widget: the control's CSS selector and what to do with it."""

    control: str  # a CSS selector inside the notebook
    action: str  # "select" (a drop-down: pick another option) or "slide" (press ArrowRight)
    watched: str  # the CSS selector of the output that must change


EXPLORERS = {
    "01_search_spaces.ipynb": Explorer(".widget-dropdown select", "select", ".widget-html"),
}


def chromium() -> str:
    path = os.environ.get("NAS_LAB_CHROMIUM") or shutil.which("chromium")
    if path is None:
        pytest.skip(
            "Chromium is not installed, so the browser test cannot run: "
            "`apt-get install chromium` (or set NAS_LAB_CHROMIUM to a Chromium binary)"
        )
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server of this environment over a copy of lessons/, in fast mode."""
    notebooks = tmp_path_factory.mktemp("lessons")
    for name in LESSONS:
        shutil.copy(ROOT / "lessons" / name, notebooks / name)
    broken = nbformat.v4.new_notebook(
        metadata=nbformat.read(ROOT / "lessons" / LESSONS[0], 4).metadata
    )
    broken.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")]
    nbformat.write(broken, notebooks / BROKEN)
    port, token = free_port(), "nas-lab-browser-test"
    home = tmp_path_factory.mktemp("jupyter")
    env = {
        **os.environ,
        "NAS_LAB_FAST": "1",
        "NAS_LAB_STRICT": "0",  # unsolved lessons report failing checks; they must not raise
        "JUPYTER_RUNTIME_DIR": str(home),
        "JUPYTER_CONFIG_DIR": str(home),
    }
    root_flag = ["--allow-root"] if os.geteuid() == 0 else []
    server = subprocess.Popen(
        [Path(sys.prefix, "bin", "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
         f"--notebook-dir={notebooks}", *root_flag],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                assert server.poll() is None, "JupyterLab exited while starting"
                time.sleep(0.5)
        yield base, token, notebooks
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_notebook(page, base: str, token: str, name: str) -> None:
    """Open ``name`` alone, in a fresh workspace of its own: JupyterLab would otherwise restore
    the tabs of the previous page, and Run All would run whichever tab is active."""
    url = f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={token}"
    page.goto(url, timeout=90_000)
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=90_000)


def dismiss_dialogs(page) -> None:
    """Accept a kernel-selection dialog, should JupyterLab show one."""
    select = page.locator(".jp-Dialog").get_by_role("button", name="Select")
    if select.count():
        select.click()


def run_all_cells(page, path: Path) -> nbformat.NotebookNode:
    """Run > Run All Cells; save every few seconds until the kernel is idle and the saved
    notebook has an execution count on every code cell, or an error. Returns the notebook as
    saved: its outputs are the model's, not the screen's (stderr and errors look alike there)."""
    dismiss_dialogs(page)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    deadline = time.monotonic() + LESSON_TIMEOUT_S
    while time.monotonic() < deadline:
        page.wait_for_timeout(2000)
        dismiss_dialogs(page)
        page.keyboard.press("Control+s")
        page.wait_for_timeout(500)
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        # Run All stops at the first error: the cells after it keep no execution count.
        if idle.count() and (all(c.execution_count for c in code) or errors(nb)):
            return nb
    raise AssertionError(f"{path.name}: still running after {LESSON_TIMEOUT_S} s")


def errors(nb: nbformat.NotebookNode) -> list[str]:
    return [
        f"{o.ename}: {o.evalue}"
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]


def move(page, explorer: Explorer) -> tuple[str, str]:
    """Move the explorer; return the watched output's text before and after."""
    watched = page.locator(explorer.watched).first
    before = watched.inner_text()
    control = page.locator(explorer.control).first
    control.scroll_into_view_if_needed()
    if explorer.action == "select":
        options = control.locator("option").all_inner_texts()
        current = control.input_value()
        control.select_option(next(o for o in options if o != current))
    else:
        control.focus()
        control.press("ArrowRight")
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).innerText !== old",
        arg=[explorer.watched, before],
        timeout=30_000,
    )
    return before, watched.inner_text()


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_runs_in_jupyterlab(lab, browser, name):
    base, token, notebooks = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_notebook(page, base, token, name)
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
            state="attached", timeout=90_000
        )
        executed = run_all_cells(page, notebooks / name)
        assert not errors(executed), f"{name}: {errors(executed)}"
        widths = page.locator(".jp-OutputArea-output img").evaluate_all(
            "imgs => imgs.map(i => i.naturalWidth)"
        )
        assert all(w >= MIN_FIGURE_PX for w in widths), f"{name}: figure widths {widths}"
        if name in EXPLORERS:
            before, after = move(page, EXPLORERS[name])
            assert before != after
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}.png"), full_page=True)
        page.close()


def test_the_harness_sees_an_error(lab, browser):
    base, token, notebooks = lab
    page = browser.new_page()
    try:
        open_notebook(page, base, token, BROKEN)
        assert errors(run_all_cells(page, notebooks / BROKEN)) == [
            "ZeroDivisionError: division by zero"
        ]
    finally:
        page.close()
