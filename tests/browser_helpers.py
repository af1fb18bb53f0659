"""JupyterLab in headless Chromium, as a student meets the notebooks: start a server, Run All.

Used by tests/test_browser.py and, as a script, to time the notebooks in the browser:

    python tests/browser_helpers.py --mode smoke --out /tmp/shots 00_tour 02_pc_darts \\
        --click-panel 02_pc_darts
    python tests/browser_helpers.py --mode quick --timeout 480 02_pc_darts

``jupyter_lab()`` starts JupyterLab on 127.0.0.1 (free port, random token, throw-away settings
and workspace folders), ``open_browser()`` launches Chromium through playwright, and
``run_notebook()`` opens one notebook, clicks Run > Run All Cells, waits until every cell ran and
the kernel is idle, and returns what it saw: error outputs, widgets that did not render,
figures that did not load or do not fit, the Run-All time and the screenshots.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# Flags for a headless Chromium in a container with no network, no GPU and no user namespace.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# JupyterLab user settings for a reproducible page: every cell attached to the DOM (the default
# "contentVisibility" windowing may leave off-screen outputs unrendered), no news/update requests.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

# Text/plain outputs that mean a widget or rich object fell back to its repr.
TEXT_REPR = re.compile(
    r"^\s*(?:[A-Z]\w*\((?:children|value|layout|description|options)=|SearchPanel\("
    r"|<[\w.<>]+ (?:object )?at 0x[0-9a-f]+>|interactive\(|<Figure size \d+x\d+ with)",
    re.M,
)
WIDGET_NOT_RENDERED = ("Loading widget...", "Error displaying widget", "Error rendering widget")
ERROR_LINE = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception)\b.*$", re.M)


def find_chromium() -> str | None:
    """Path of a Chromium binary: $NASVIZ_CHROMIUM, /usr/bin/chromium, or one on the PATH."""
    candidates = [os.environ.get("NASVIZ_CHROMIUM", ""), "/usr/bin/chromium"]
    candidates += [shutil.which(n) or "" for n in CHROMIUM_NAMES]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def missing_browser_reason() -> str | None:
    """Why the browser test cannot run here (no playwright, no Chromium), or None if it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the `playwright` Python package is not installed (pip install playwright)"
    if find_chromium() is None:
        return (
            "no Chromium binary (apt-get install chromium, or set NASVIZ_CHROMIUM to its path); "
            "`playwright install` is not used"
        )
    return None


# ------------------------------------------------------------------------------ the server


@dataclass
class LabServer:
    """A running JupyterLab: its base URL, token, root folder and process."""

    url: str
    token: str
    root: Path
    proc: subprocess.Popen
    log: Path

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API (JSON in and out)."""
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every kernel (one notebook's CPU and memory are freed before the next)."""
        for kernel in self.api("/api/kernels"):
            with contextlib.suppress(OSError):
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE")

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of the server log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(
    root_dir: Path, env: dict[str, str] | None = None, timeout: float = 120.0
) -> Iterator[LabServer]:
    """Run JupyterLab on 127.0.0.1 over ``root_dir`` (kernels inherit ``env``) while in the block."""
    work = Path(tempfile.mkdtemp(prefix="nasviz-lab-"))
    settings = work / "settings"
    for rel, values in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={work / 'ws'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    full_env = {**os.environ, **(env or {})}
    full_env["JUPYTER_RUNTIME_DIR"] = str(work / "runtime")
    log = work / "server.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(cmd, env=full_env, stdout=log_file, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", token, Path(root_dir), proc, log)
    try:
        _wait_for_server(server, timeout)
        yield server
    finally:
        with contextlib.suppress(OSError, ValueError):
            server.shutdown_kernels()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def _wait_for_server(server: LabServer, timeout: float) -> None:
    """Block until the server answers /api/status; RuntimeError with its log if it does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited ({server.proc.returncode}):\n{server.log_tail()}"
            )
        with contextlib.suppress(OSError):
            server.api("/api/status")
            return
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log_tail()}")


# ------------------------------------------------------------------------------ the browser


@contextlib.contextmanager
def open_browser(viewport: tuple[int, int] = (1280, 900)) -> Iterator[Any]:
    """A playwright page in headless Chromium (a laptop-sized window) while in the block."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError(missing_browser_reason())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            yield page
        finally:
            browser.close()


@dataclass
class NotebookReport:
    """What one notebook showed after Run All."""

    name: str
    kernel_ready_s: float = 0.0  # page open -> kernel idle
    run_all_s: float = 0.0  # Run All Cells clicked -> every cell ran, kernel idle
    finished: bool = False  # False: the timeout hit first
    problems: list[str] = field(default_factory=list)  # what makes the test fail
    stderr: list[str] = field(default_factory=list)  # other stderr text (warnings, progress bars)
    screenshots: list[Path] = field(default_factory=list)
    panel_s: float | None = None  # Run click in a search panel -> its new table row


# Cell state, read in the page: the input prompts ("[ ]:", "[*]:", "[3]:") of the code cells.
_PROMPTS_JS = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt'))
    .map(e => e.textContent.trim())"""
_STATUS_JS = """() => { const e = document.querySelector(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
    return e ? e.getAttribute('data-status') : null; }"""

# Every output of the notebook: mime type, text, and for images whether they loaded and fit.
_OUTPUTS_JS = """() => {
  const cells = Array.from(document.querySelectorAll(
      '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell'));
  const found = [];
  cells.forEach((cell, index) => {
    const prompt = cell.querySelector('.jp-InputArea-prompt');
    cell.querySelectorAll('.jp-OutputArea-output').forEach(out => {
      const imgs = Array.from(out.querySelectorAll('img')).map(img => {
        const box = img.getBoundingClientRect(), area = out.getBoundingClientRect();
        return {complete: img.complete, naturalWidth: img.naturalWidth,
                naturalHeight: img.naturalHeight, width: box.width, height: box.height,
                overflow: box.right - area.right};
      });
      found.push({cell: index, prompt: prompt ? prompt.textContent.trim() : '', mime: out.getAttribute('data-mime-type'),
                  text: out.innerText.slice(0, 3000), imgs: imgs,
                  scrollWidth: out.scrollWidth, clientWidth: out.clientWidth,
                  widgets: out.querySelectorAll('.jupyter-widgets').length});
    });
  });
  return found;
}"""


def open_notebook(page: Any, server: LabServer, name: str, timeout: float = 120.0) -> float:
    """Open ``name`` (relative to the server root) and wait for its kernel; seconds it took."""
    start = time.monotonic()
    # ?reset: a clean workspace, so the notebook opened before is not reopened (and rerun)
    page.goto(f"{server.url}/lab/tree/{name}?reset&token={server.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)

    def kernel_idle() -> bool:  # the page says idle before the kernel has started: ask both
        sessions = [s for s in server.api("/api/sessions") if s["path"] == name]
        started = bool(sessions) and sessions[0]["kernel"]["execution_state"] == "idle"
        return started and page.evaluate(_STATUS_JS) == "idle"

    _wait_until(page, kernel_idle, timeout, "kernel idle")
    return time.monotonic() - start


def run_all_cells(page: Any, timeout: float, settle: float = 2.0) -> tuple[float, bool]:
    """Click Run > Run All Cells and wait until every cell ran; (seconds, finished in time)."""
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    start = time.monotonic()
    deadline = start + timeout
    page.wait_for_function(  # the run has started: a cell is queued or already has a number
        f"({_PROMPTS_JS})().some(p => /[*0-9]/.test(p))", timeout=30_000
    )
    done_since = None
    while time.monotonic() < deadline:
        prompts, status = page.evaluate(_PROMPTS_JS), page.evaluate(_STATUS_JS)
        if status == "idle" and not any("*" in p for p in prompts):
            done_since = done_since or time.monotonic()
            if time.monotonic() - done_since >= settle:  # idle between two cells is not the end
                return done_since - start, True
        else:
            done_since = None
        time.sleep(0.5)
    return time.monotonic() - start, False


def _wait_until(page: Any, condition: Any, timeout: float, what: str) -> None:
    """Poll ``condition()`` until it is true; TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout:.0f} s")
        page.wait_for_timeout(250)


def check_outputs(page: Any, report: NotebookReport) -> None:
    """Add every error output, unrendered widget and broken or cut-off figure to ``report``."""
    prompts = page.evaluate(_PROMPTS_JS)
    not_run = [i + 1 for i, p in enumerate(prompts) if not re.search(r"\[\d+\]", p)]
    if not_run:
        report.problems.append(f"code cells {not_run} (1-based) did not run (prompts {prompts})")
    with contextlib.suppress(Exception):  # figures are data URIs; let the last ones decode
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output img'))"
            ".every(i => i.complete)",
            timeout=15_000,
        )
    with contextlib.suppress(Exception):  # a widget view may still be attaching: allow 10 s
        page.wait_for_function(
            "() => !Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
            ".some(o => o.innerText.includes('Loading widget...'))",
            timeout=10_000,
        )
    for out in page.evaluate(_OUTPUTS_JS):
        where = f"cell {out['cell'] + 1} {out['prompt']}".strip()  # 1-based, all cells
        text = out["text"]
        if out["mime"] == "application/vnd.jupyter.stderr":
            if "Traceback" in text or ERROR_LINE.search(text):
                report.problems.append(f"{where}: error output:\n{text[-1500:]}")
            else:
                report.stderr.append(f"{where}: {text[-300:]}")
        for marker in WIDGET_NOT_RENDERED:
            if marker in text:
                report.problems.append(f"{where}: widget not rendered ({marker!r})")
        if out["mime"] == "text/plain" and TEXT_REPR.search(text):
            report.problems.append(f"{where}: an object shown as its text repr: {text[:200]!r}")
        for img in out["imgs"]:
            if not img["complete"] or img["naturalWidth"] == 0:
                report.problems.append(f"{where}: a figure did not load ({img})")
            elif img["overflow"] > 1:
                report.problems.append(
                    f"{where}: a figure is cut off at the right edge by {img['overflow']:.0f} px"
                )
        if out["scrollWidth"] > out["clientWidth"] + 1 and out["imgs"]:
            report.problems.append(
                f"{where}: output wider than the notebook ({out['scrollWidth']} > "
                f"{out['clientWidth']} px), it scrolls sideways"
            )


def screenshots(page: Any, directory: Path, stem: str) -> list[Path]:
    """Screenshots of the whole notebook, one viewport-high page at a time, top to bottom."""
    directory.mkdir(parents=True, exist_ok=True)
    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    height = page.evaluate(f"() => document.querySelector('{scroller}').scrollHeight")
    view = page.evaluate(f"() => document.querySelector('{scroller}').clientHeight")
    last = max(height - view, 0)  # the final page ends at the bottom, no blank page after it
    tops = [*range(0, last, max(view - 40, 100)), last]
    paths = []
    for i, top in enumerate(tops):
        page.evaluate(f"() => document.querySelector('{scroller}').scrollTo(0, {top})")
        page.wait_for_timeout(300)
        path = directory / f"{stem}_{i + 1:02d}.png"
        page.screenshot(path=str(path))
        paths.append(path)
    return paths


def click_panel_run(page: Any, timeout: float = 180.0) -> float:
    """Click the Run button of the first search panel, wait for a new row in its runs table.

    Returns the seconds from the click to the new row; AssertionError with the panel's text if
    no row appears in ``timeout`` seconds.
    """
    run_button = page.locator(".jupyter-widgets button", has_text="Run")
    panel = page.locator(".jp-OutputArea-output").filter(has=run_button).first
    button = panel.locator(".jupyter-widgets button", has_text="Run").first
    try:
        button.wait_for(timeout=10_000)
    except Exception as exc:  # playwright's TimeoutError
        raise AssertionError(f"no search panel with a Run button in the notebook ({exc})") from exc
    rows = panel.locator("tbody tr")
    before = rows.count()
    button.scroll_into_view_if_needed()
    start = time.monotonic()
    button.click()
    deadline = start + timeout
    while rows.count() <= before:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no new row in the panel's runs table {timeout:.0f} s after Run "
                f"({before} rows before); the panel shows:\n{panel.inner_text()[-1500:]}"
            )
        page.wait_for_timeout(250)
    return time.monotonic() - start


def run_notebook(
    page: Any,
    server: LabServer,
    name: str,
    timeout: float,
    shots: Path | None = None,
    click_panel: bool = False,
) -> NotebookReport:
    """Open ``name``, Run All, check every output, optionally click a panel's Run, screenshot."""
    report = NotebookReport(name)
    report.kernel_ready_s = open_notebook(page, server, name)
    report.run_all_s, report.finished = run_all_cells(page, timeout)
    if not report.finished:
        report.problems.append(f"Run All did not finish in {timeout:.0f} s")
    check_outputs(page, report)
    if click_panel and report.finished:
        try:
            report.panel_s = click_panel_run(page)
        except AssertionError as exc:
            report.problems.append(str(exc))
    if shots is not None:
        report.screenshots = screenshots(page, shots, Path(name).stem)
    return report


def copy_notebooks(target: Path, names: list[str]) -> Path:
    """Copy the ``names`` notebooks into ``target``/notebooks (JupyterLab autosaves outputs into
    them) and return that folder. One level down, so that the notebooks' run cache
    (``OUT = "../runs/..."``, read back on the next Run All) lands in ``target`` too: copied into
    ``target`` itself, a second timing would read the first one's finished runs from
    ``target``'s parent (e.g. /tmp/runs) and measure nothing."""
    folder = target / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(NOTEBOOKS / name, folder / name)
    return folder


# ------------------------------------------------------------------------------ script


def _mode_env(mode: str) -> dict[str, str]:
    """Kernel environment of a mode: smoke sets NASVIZ_SMOKE=1; quick removes it."""
    env = dict(os.environ)
    env.pop("NASVIZ_SMOKE", None)
    if mode == "smoke":
        env["NASVIZ_SMOKE"] = "1"
    return env


def main(argv: list[str] | None = None) -> int:
    """Time Run All of notebooks in JupyterLab in Chromium; print one line per notebook."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("notebooks", nargs="+", help="stems, e.g. 00_tour 01_darts")
    parser.add_argument("--mode", choices=["smoke", "quick"], default="smoke")
    parser.add_argument("--timeout", type=float, default=480.0, help="seconds per notebook")
    parser.add_argument("--out", type=Path, default=None, help="screenshot folder")
    parser.add_argument(
        "--click-panel", nargs="*", default=[], help="notebooks whose search panel's Run is clicked"
    )
    parser.add_argument("--json", type=Path, default=None, help="append results to this file")
    args = parser.parse_args(argv)
    reason = missing_browser_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    names = [f"{n.removesuffix('.ipynb')}.ipynb" for n in args.notebooks]
    env = _mode_env(args.mode)
    threads = env.get("OMP_NUM_THREADS", "default")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_notebooks(Path(tmp), names)
        with jupyter_lab(root, env) as server, open_browser() as page:
            for name in names:
                load = os.getloadavg()
                click = Path(name).stem in [Path(n).stem for n in args.click_panel]
                report = run_notebook(page, server, name, args.timeout, args.out, click)
                server.shutdown_kernels()
                failed += bool(report.problems)
                status = (
                    "finished" if report.finished else f"did not finish in {args.timeout:.0f} s"
                )
                line = {
                    "notebook": name, "mode": args.mode, "threads": threads,
                    "run_all_s": round(report.run_all_s, 1), "status": status,
                    "kernel_ready_s": round(report.kernel_ready_s, 1),
                    "panel_s": report.panel_s, "loadavg_before": [round(x, 2) for x in load],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                    "problems": report.problems, "stderr": report.stderr,
                    "screenshots": [str(p) for p in report.screenshots],
                }  # fmt: skip
                print(json.dumps(line, indent=1), flush=True)
                if args.json:
                    with args.json.open("a") as f:
                        f.write(json.dumps(line) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
