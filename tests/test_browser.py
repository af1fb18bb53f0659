"""The notebooks as a student meets them: JupyterLab in headless Chromium, Run All, smoke mode.

Every notebook in notebooks/ is opened in JupyterLab (127.0.0.1, a free port, a token, a copy of
the notebooks so autosave never writes outputs into the repo), run with Run > Run All Cells and
checked: no error output, no widget left as "Loading widget..." or a text repr, no figure that
fails to load or is cut off at the right edge. In 02_pc_darts the search panel's Run button is
clicked and its runs table must gain a row. One screenshot per screenful goes to
$NASVIZ_SCREENSHOTS (default: a pytest temporary folder, printed with ``-s``).

Needs the `playwright` package and a Chromium binary (``apt-get install chromium``; `.ci/run`
installs both); without them the test is skipped with the reason. Deselect it with
``-m "not browser"``. $NASVIZ_BROWSER_TIMEOUT sets the seconds per notebook (default 400).
"""

from __future__ import annotations

import os
from pathlib import Path

import browser_helpers as bh
import pytest

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted(p.name for p in bh.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
PANEL_NOTEBOOK = "02_pc_darts.ipynb"  # its SearchPanel's Run button is clicked
TIMEOUT = float(os.environ.get("NASVIZ_BROWSER_TIMEOUT", "400"))


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory) -> Path:
    folder = os.environ.get("NASVIZ_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {path}")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab over a copy of the notebooks, kernels in smoke mode (unless set otherwise)."""
    reason = bh.missing_browser_reason()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")
    root = bh.copy_notebooks(tmp_path_factory.mktemp("notebooks"), NOTEBOOKS)
    env = {"NASVIZ_SMOKE": os.environ.get("NASVIZ_SMOKE", "1")}
    with bh.jupyter_lab(root, env) as server, bh.open_browser() as page:
        yield server, page


def test_every_notebook_is_found() -> None:
    assert {"00_tour.ipynb", "01_darts.ipynb", "02_pc_darts.ipynb"} <= set(NOTEBOOKS)
    assert PANEL_NOTEBOOK in NOTEBOOKS


def test_checks_catch_what_a_student_would_see(lab, tmp_path: Path) -> None:
    """The checks themselves fail on an error, a text repr, a broken image and a wide figure."""
    import nbformat

    server, page = lab
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("1 / 0"),
        nbformat.v4.new_code_cell(
            "from IPython.display import SVG, display\n"
            "class W:\n    def __repr__(self):\n        return 'VBox(children=(HTML(value=1),))'\n"
            "display(W())\n"
            "display({'image/png': 'AAAA'}, raw=True)  # not a PNG: the image cannot load\n"
            'display(SVG(\'<svg xmlns="http://www.w3.org/2000/svg" width="3000" height="20"/>\'))'
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, server.root / "_broken.ipynb")
    try:
        report = bh.run_notebook(page, server, "_broken.ipynb", 60)
    finally:
        server.shutdown_kernels()
        (server.root / "_broken.ipynb").unlink()
    problems = "\n".join(report.problems)
    assert "ZeroDivisionError" in problems
    assert "did not run" in problems  # Run All stops at the error

    nb.cells = nb.cells[1:]  # the same displays without the error
    nbformat.write(nb, server.root / "_broken.ipynb")
    try:
        report = bh.run_notebook(page, server, "_broken.ipynb", 60)
    finally:
        server.shutdown_kernels()
        (server.root / "_broken.ipynb").unlink()
    problems = "\n".join(report.problems)
    assert "text repr" in problems
    assert "did not load" in problems
    assert "cut off" in problems


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_all_cells_in_jupyterlab(lab, screenshot_dir: Path, name: str) -> None:
    server, page = lab
    report = bh.run_notebook(
        page, server, name, TIMEOUT, screenshot_dir, click_panel=name == PANEL_NOTEBOOK
    )
    server.shutdown_kernels()
    print(
        f"\n{name}: Run All {report.run_all_s:.1f} s (kernel start {report.kernel_ready_s:.1f} s)"
        + (f", panel run {report.panel_s:.1f} s" if report.panel_s is not None else "")
        + f", screenshots {screenshot_dir}/{Path(name).stem}_*.png"
    )
    assert not report.problems, f"{name} in JupyterLab:\n" + "\n".join(report.problems)
    if name == PANEL_NOTEBOOK:
        assert report.panel_s is not None
