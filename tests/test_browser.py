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
PAGES = 3  # lessons run at once
KERNEL_START_S = 120  # a loaded machine starts a kernel slowly
SETTLE_MS = 2000  # after an explorer moves


@dataclass(frozen=True)
class Explorer:
    """How to move a lesson's widget: the control's CSS selector and what to do with it."""

    control: str  # a CSS selector inside the notebook
    action: str  # "select" (a drop-down: pick another option) or "slide" (press ArrowRight)
    watched: str  # the CSS selector of the output that must change


CELL_BUILDER = Explorer(".widget-dropdown select", "select", ".widget-html")
EXPLORERS = {
    "01_search_spaces.ipynb": CELL_BUILDER,
    "02_performance_estimation.ipynb": CELL_BUILDER,
    "08_compound_scaling.ipynb": Explorer(
        ".nas-lab-phi .noUi-handle", "slide", ".nas-lab-phi-summary"
    ),
    "09_hardware_aware.ipynb": Explorer(
        ".nas-lab-latency-limit .noUi-handle", "slide", ".nas-lab-latency-pick"
    ),
    "10_once_for_all.ipynb": Explorer(
        ".nas-lab-ofa-limit .noUi-handle", "slide", ".nas-lab-ofa-best"
    ),
    "11_zero_cost_proxies.ipynb": Explorer(
        ".nas-lab-proxy-picker select", "select", ".nas-lab-proxy-scatter"
    ),
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
    # No "get notified about Jupyter news?" pop-up over the screenshots, and no fetch attempt.
    settings = home / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
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
    """Open ``name`` alone, in a fresh workspace of its own (JupyterLab would otherwise restore
    the tabs of the previous page, and Run All would run whichever tab is active), and wait for
    its kernel: a Run All sent while the kernel still says "Initializing" can be lost."""
    url = f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={token}"
    page.goto(url, timeout=90_000)
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=90_000)
    kernel_idle = page.locator(".jp-StatusBar-Widget").filter(has_text=re.compile(r"\| Idle"))
    kernel_idle.first.wait_for(timeout=KERNEL_START_S * 1000)


def dismiss_dialogs(page) -> None:
    """Accept a kernel-selection dialog, should JupyterLab show one."""
    select = page.locator(".jp-Dialog").get_by_role("button", name="Select")
    if select.count():
        select.click()


def start_run_all(page) -> None:
    """Run > Run All Cells."""
    dismiss_dialogs(page)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()


def finished(page, path: Path) -> nbformat.NotebookNode | None:
    """Save, then read the saved notebook: it is finished when the kernel is idle and every code
    cell has an execution count, or an error (Run All stops at the first error, and the cells
    after it keep no count). Outputs are read from the saved model, not the screen (stderr and
    errors look alike there)."""
    dismiss_dialogs(page)
    page.keyboard.press("Control+s")
    page.wait_for_timeout(300)
    if not page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count():
        return None
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    return nb if all(c.execution_count for c in code) or errors(nb) else None


def run_all_cells(page, path: Path) -> nbformat.NotebookNode:
    """Run all cells of one open notebook and wait for the saved result."""
    start_run_all(page)
    deadline = time.monotonic() + LESSON_TIMEOUT_S
    while time.monotonic() < deadline:
        page.wait_for_timeout(2000)
        if (nb := finished(page, path)) is not None:
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
    """Move the explorer; return the watched output's HTML before and after (HTML, not text: a
    redrawn figure changes only its image)."""
    watched = page.locator(explorer.watched).first
    watched.scroll_into_view_if_needed()
    before = watched.inner_html()
    control = page.locator(explorer.control).first
    control.scroll_into_view_if_needed()
    if explorer.action == "select":
        count, current = control.evaluate("s => [s.options.length, s.selectedIndex]")
        control.select_option(index=(current + 1) % count)
    else:
        control.focus()
        for _ in range(5):  # a few steps, in case the first lands on the same pick
            control.press("ArrowRight")
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).innerHTML !== old",
        arg=[explorer.watched, before],
        timeout=30_000,
    )
    page.wait_for_timeout(SETTLE_MS)  # let the later steps land before the screenshot
    return before, watched.inner_html()


@dataclass
class Visit:
    """What the browser saw of one lesson."""

    errors: list[str]
    figure_widths: list[int]
    explorer: tuple[str, str] | None = None  # the watched output before and after moving
    failure: str = ""  # why the visit did not finish (a timeout, the page)


def open_and_start(browser, base: str, token: str, name: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    open_notebook(page, base, token, name)
    start_run_all(page)
    return page


def inspect(page, name: str, nb: nbformat.NotebookNode) -> Visit:
    widths = page.locator(".jp-OutputArea-output img").evaluate_all(
        "imgs => imgs.map(i => i.naturalWidth)"
    )
    visit = Visit(errors(nb), widths)
    if name in EXPLORERS and not visit.errors:
        visit.explorer = move(page, EXPLORERS[name])
    return visit


@pytest.fixture(scope="module")
def visits(request, lab, browser) -> dict[str, Visit]:
    """The selected lessons, PAGES at a time: while one kernel imports torch, another computes,
    so the whole course fits the 5-minute budget on 2 cores. Each page gets LESSON_TIMEOUT_S."""
    base, token, notebooks = lab
    selected = [
        item.callspec.params["name"]
        for item in request.session.items
        if item.originalname == "test_lesson_runs_in_jupyterlab"
    ]
    waiting, running, seen = selected, {}, {}
    while waiting or running:
        while waiting and len(running) < PAGES:
            name = waiting.pop(0)
            running[name] = (open_and_start(browser, base, token, name), time.monotonic())
        time.sleep(2)
        for name, (page, started) in list(running.items()):
            try:
                nb = finished(page, notebooks / name)
                if nb is None and time.monotonic() - started < LESSON_TIMEOUT_S:
                    continue
                seen[name] = (
                    inspect(page, name, nb)
                    if nb is not None
                    else Visit([], [], failure=f"still running after {LESSON_TIMEOUT_S} s")
                )
            except Exception as error:  # one lesson's failure must not hide the others
                seen[name] = Visit([], [], failure=f"{type(error).__name__}: {error}")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}.png"), full_page=True)
            page.close()
            del running[name]
    return seen


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_runs_in_jupyterlab(visits, name):
    visit = visits[name]
    assert not visit.failure, f"{name}: {visit.failure}"
    assert not visit.errors, f"{name}: {visit.errors}"
    assert all(w >= MIN_FIGURE_PX for w in visit.figure_widths), (
        f"{name}: figure widths {visit.figure_widths}"
    )
    if name in EXPLORERS:
        before, after = visit.explorer
        assert before != after, f"{name}: moving the explorer did not change its output"


def test_the_harness_sees_an_error(lab, browser):
    base, token, notebooks = lab
    page = browser.new_page()
    try:
        open_notebook(page, base, token, BROKEN)
        assert errors(run_all_cells(page, notebooks / BROKEN)) == [
            "ZeroDivisionError: division by zero"
        ]
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "broken.png"), full_page=True)
        page.close()
